// Package integration holds socketpipe's end-to-end tests: the built binary against a real
// OpenSSH sshd started by the harness (see integration/harness).
package integration

import (
	"testing"

	"github.com/socketpipe/socketpipe/integration/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
