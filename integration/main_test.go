//go:build linux

// Package integration holds socketpipe's end-to-end tests: the built binary against a real
// OpenSSH sshd started by the harness (see internal/harness).
package integration

import (
	"testing"

	"github.com/socketpipe/socketpipe/internal/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
