package integration

import (
	"testing"

	"github.com/socketpipe/socketpipe/integration/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
