//go:build linux

package integration

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/internal/harness"
	"github.com/socketpipe/socketpipe/internal/testenv"
)

// TestHandOverTwoCopies: two copies of the socketpipe binary named ssh on PATH, before
// OpenSSH's ssh, hand what ssh mode cannot serve (ssh -N host) to OpenSSH's ssh, once,
// instead of executing each other until killed.
func TestHandOverTwoCopies(t *testing.T) {
	t.Parallel()
	realSSH, err := exec.LookPath("ssh")
	testenv.Need(t, "OpenSSH's ssh", err)
	sp := filepath.Join(harness.BuildSocketpipe(t), "socketpipe")
	a, b := t.TempDir(), t.TempDir()
	first := testenv.CopyExecutable(t, sp, a, "ssh")
	testenv.CopyExecutable(t, sp, b, "ssh")
	sep := string(filepath.ListSeparator)
	env := []string{"PATH=" + a + sep + b + sep + filepath.Dir(realSSH), "SOCKETPIPE_SSH_OPTIONS=-v"}

	cmd := exec.Command(first, "-N", "-o", "BatchMode=yes", "no-such-host.invalid")
	cmd.Args[0] = "ssh"
	cmd.Env = append(cleanEnv(""), env...)
	r := runCmd(t, cmd, "")
	if r.code != 255 || !strings.Contains(r.stderr, "no-such-host.invalid") || strings.Count(r.stderr, "handing over to ") != 1 ||
		!strings.Contains(r.stderr, "handing over to "+realSSH) {
		t.Errorf("ssh -N: status %d, one hand-over to %s wanted; stderr:\n%s", r.code, realSSH, r.stderr)
	}
}
