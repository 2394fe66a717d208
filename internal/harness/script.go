package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// ScriptCmds returns the commands socketpipe's scripts have beside testscript's own:
// status ([ScriptStatus]).
func ScriptCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"status": ScriptStatus,
	}
}

// ScriptStatus is the testscript command `status N program [args...]`: it runs program as
// exec does (a process of its own, its standard output and error kept for the commands that
// follow) and fails unless it exits with status N. exec itself only tells success from
// failure.
func ScriptStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil || want < 0 {
		ts.Fatalf("usage: status N program [args...]: %q is not an exit status", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() < 0 {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = exit.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// ScriptSSHD is a testscript Setup step for scripts that run socketpipe against a real sshd.
// It builds socketpipe, starts an sshd (StartSSHD with opts) whose sessions find it on PATH,
// and gives the script:
//
//	PATH         the directory holding socketpipe first
//	SOCKETPIPE   the socketpipe binary
//	HOST, PORT   where sshd listens
//	ALIAS        the Host alias of SSH_CONFIG
//	SSH_CONFIG   an ssh_config that logs in to ALIAS as root (ssh -F $SSH_CONFIG $ALIAS)
//	KNOWN_HOSTS  known_hosts with sshd's host key
//	IDENTITY     the user's private key
//	HOME         $WORK/home, an empty directory
//
// Every process the script starts carries a marker ([MarkerEnv]), and when the script ends the
// test fails if any process with it is still alive, on either side.
func ScriptSSHD(env *testscript.Env, opts SSHDOptions) (*SSHD, error) {
	t, ok := env.T().(testing.TB)
	if !ok {
		return nil, fmt.Errorf("harness: testscript's T (%T) is not a testing.TB", env.T())
	}
	bin := BuildSocketpipe(t)
	marker := NewMarker()
	opts.PathDirs = append([]string{bin}, opts.PathDirs...)
	if opts.Env == nil {
		opts.Env = map[string]string{}
	}
	opts.Env[MarkerEnv] = marker
	s := StartSSHD(t, opts)
	t.Cleanup(func() { WaitNoProcesses(t, marker, 15*time.Second) })

	home := filepath.Join(env.WorkDir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		return nil, err
	}
	for k, v := range map[string]string{
		"PATH":        bin + string(filepath.ListSeparator) + env.Getenv("PATH"),
		"SOCKETPIPE":  filepath.Join(bin, "socketpipe"),
		"HOST":        s.Host,
		"PORT":        strconv.Itoa(s.Port),
		"ALIAS":       s.Alias,
		"SSH_CONFIG":  s.ClientConfig,
		"KNOWN_HOSTS": s.KnownHosts,
		"IDENTITY":    s.UserKey,
		"HOME":        home,
		MarkerEnv:     marker,
	} {
		env.Setenv(k, v)
	}
	return s, nil
}
