//go:build linux

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// runBound bounds a whole socketpipe run in these tests: every run here takes well under a
// second on an idle machine, so hitting it means a hang.
const runBound = 2 * time.Minute

// procBound is how long the processes of a finished run may take to disappear.
const procBound = 15 * time.Second

// remote is one sshd with socketpipe on its PATH and the run's marker in every session.
type remote struct {
	sshd   *harness.SSHD
	bin    string // the directory holding the socketpipe binary
	marker string
	host   *harness.Host // where the client runs, nil for the test's own namespace
}

// sp returns the path of the socketpipe binary built for the tests.
func (r *remote) sp() string { return filepath.Join(r.bin, "socketpipe") }

// newRemote starts an sshd on loopback whose sessions find the freshly built socketpipe.
func newRemote(t *testing.T, opts harness.SSHDOptions) *remote {
	t.Helper()
	bin := harness.BuildSocketpipe(t)
	marker := harness.NewMarker()
	opts.PathDirs = append([]string{bin}, opts.PathDirs...)
	if opts.Env == nil {
		opts.Env = map[string]string{}
	}
	opts.Env[harness.MarkerEnv] = marker
	s := harness.StartSSHD(t, opts)
	return &remote{sshd: s, bin: bin, marker: marker}
}

// execLogin is `-x -l { ssh -F config alias }`: the login through the ssh binary.
func (r *remote) execLogin() []string {
	return append(append([]string{"-x", "-l", "{"}, r.sshd.SSHArgs()...), "}")
}

// result is how one socketpipe run ended.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (res *result) String() string {
	return fmt.Sprintf("exit %d after %v\nstdout (%d bytes): %q\nstderr:\n%s", res.code, res.took.Round(time.Millisecond), len(res.stdout), trunc(res.stdout), res.stderr)
}

func trunc(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// runOpts are the circumstances of one run beyond its arguments.
type runOpts struct {
	stdin  io.Reader
	env    []string      // added to (and overriding) the test's environment
	host   *harness.Host // run inside this namespace; nil for r.host
	setsid bool          // no controlling terminal
}

// cleanEnv is the test's environment without what would let the user's own agent, askpass
// or display take part, with marker (if not "") added.
func cleanEnv(marker string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "SSH_AUTH_SOCK", "SSH_AGENT_PID", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY", "WAYLAND_DISPLAY":
			return true
		}
		return false
	})
	if marker != "" {
		env = append(env, harness.MarkerEnv+"="+marker)
	}
	return env
}

// spCmd prepares a socketpipe run with the marker in its clean environment, inside r.host if
// set.
func (r *remote) spCmd(ctx context.Context, args ...string) *exec.Cmd {
	return r.spCmdWith(ctx, runOpts{}, args...)
}

func (r *remote) spCmdWith(ctx context.Context, o runOpts, args ...string) *exec.Cmd {
	host := r.host
	if o.host != nil {
		host = o.host
	}
	var cmd *exec.Cmd
	if host != nil {
		cmd = host.Command(ctx, append([]string{r.sp()}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, r.sp(), args...)
	}
	cmd.Env = append(cleanEnv(r.marker), o.env...)
	cmd.Stdin = o.stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: o.setsid}
	// A hang must not outlive the bound: kill socketpipe, and ip netns exec's child with it.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs socketpipe with args and stdin, bounded by runBound.
func (r *remote) run(t *testing.T, stdin io.Reader, args ...string) *result {
	t.Helper()
	return r.runWith(t, runOpts{stdin: stdin}, args...)
}

// runWith is run in the circumstances o.
func (r *remote) runWith(t *testing.T, o runOpts, args ...string) *result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	defer cancel()
	cmd := r.spCmdWith(ctx, o, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := &result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("socketpipe %q did not end within %v\n%v", args, runBound, res)
	}
	res.code = exitCode(t, err)
	return res
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("running socketpipe: %v", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// noneLeft checks that nothing of the run is alive on either side.
func (r *remote) noneLeft(t *testing.T) {
	t.Helper()
	harness.WaitNoProcesses(t, r.marker, procBound)
}

// want fails the test unless the run ended with code.
func want(t *testing.T, res *result, code int) {
	t.Helper()
	if res.code != code {
		t.Fatalf("want exit %d, got %v", code, res)
	}
}

// randomFile writes n random bytes to a new file and returns its path and sha256.
func randomFile(t *testing.T, n int64) (string, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "random")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, n); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p, hex.EncodeToString(h.Sum(nil))
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// args builds a command line from words and word lists.
func args(parts ...any) []string {
	var out []string
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			out = append(out, v)
		case []string:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("args: %T", p))
		}
	}
	return out
}

// block is "-x { words... }".
func block(opt string, words ...string) []string {
	return append(append([]string{opt, "{"}, words...), "}")
}

var modeRE = regexp.MustCompile(`data connection: (back|reverse|ssh) \(`)

// chosenMode is the mode -v said was chosen, "" if none.
func chosenMode(stderr string) string {
	if m := modeRE.FindStringSubmatch(stderr); m != nil {
		return m[1]
	}
	return ""
}

var listenRE = regexp.MustCompile(`listening for connect-back on (\S+) `)

// mustContain fails unless s contains each of subs.
func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }

// addSSHD starts another sshd whose sessions carry the same marker and PATH.
func (r *remote) addSSHD(t *testing.T, opts harness.SSHDOptions) *harness.SSHD {
	t.Helper()
	opts.PathDirs = append([]string{r.bin}, opts.PathDirs...)
	if opts.Env == nil {
		opts.Env = map[string]string{}
	}
	opts.Env[harness.MarkerEnv] = r.marker
	return harness.StartSSHD(t, opts)
}

// oneError fails unless socketpipe printed exactly one error line.
func oneError(t *testing.T, res *result) {
	t.Helper()
	if n := strings.Count(res.stderr, "socketpipe: error:"); n != 1 {
		t.Errorf("%d error lines, want one:\n%s", n, res.stderr)
	}
}
