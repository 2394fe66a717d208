package socketpipe

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/plumb"
)

// serveEnv makes this test binary the remote half: "test-binary --serve", started by the
// tests' local login, runs plumb.Server as socketpipe --serve does.
const serveEnv = "SOCKETPIPE_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" && len(os.Args) == 2 && os.Args[1] == "--serve" {
		s := &plumb.Server{Control: os.Stdin, Reply: os.Stdout, Stderr: os.Stderr}
		if err := s.Run(context.Background()); err != nil {
			os.Exit(ExitFailure)
		}
		os.Exit(0)
	}
	os.Setenv(serveEnv, "1")
	os.Exit(m.Run())
}

// localPipe is a Pipe whose login starts the remote half (this test binary) on this host,
// with SSH_CONNECTION saying both ends are on loopback, as sshd would.
func localPipe(t *testing.T, remote ...string) *Pipe {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdout.Close() })
	return &Pipe{
		Login:      []string{"env", "SSH_CONNECTION=127.0.0.1 50000 127.0.0.1 22", "sh", "-c", `eval "$0"`},
		RemotePath: self,
		Remote:     remote,
		Mode:       "back",
		Stdout:     stdout,
		Stderr:     os.Stderr,
	}
}

func runPipe(t *testing.T, p *Pipe) (*plumb.Stats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := p.Run(ctx)
	if st == nil {
		t.Fatalf("Run returned no stats (error %v)", err)
	}
	return st, err
}

// A run moves the input command's stream to the remote command and the remote command's
// output to Stdout, and says so in its stats.
func TestPipeRun(t *testing.T) {
	p := localPipe(t, "sh", "-c", "wc -c")
	p.Input = []string{"head", "-c", "100000", "/dev/zero"}
	st, err := runPipe(t, p)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	out, _ := os.ReadFile(p.Stdout.Name())
	if strings.TrimSpace(string(out)) != "100000" {
		t.Errorf("the remote command counted %q bytes, want 100000", out)
	}
	if st.Exit != 0 || st.Error != nil || st.Login != "exec" || st.Mode != "back" || st.Bytes.ToRemote != 100000 {
		t.Errorf("stats %+v", st)
	}
}

// A failed stage is an *Error with the stage's status and the message socketpipe prints.
func TestPipeStageError(t *testing.T) {
	p := localPipe(t, "sh", "-c", "cat >/dev/null; exit 3")
	p.Input = []string{"echo", "hi"}
	st, err := runPipe(t, p)
	var e *Error
	if !errors.As(err, &e) || e.Status != 3 || e.Error() != `remote command "sh" exited with status 3` || e.Silent {
		t.Fatalf("Run: %#v", err)
	}
	if st.Exit != 3 || st.Error == nil || *st.Error != e.Error() {
		t.Errorf("stats exit %d, error %v", st.Exit, st.Error)
	}
}

// In ssh mode a remote command's status is the exit status, and not socketpipe's to report.
func TestPipeSSHModeStatus(t *testing.T) {
	p := localPipe(t, "exit 5")
	p.SSHMode = true
	_, err := runPipe(t, p)
	var e *Error
	if !errors.As(err, &e) || e.Status != 5 || !e.Silent {
		t.Fatalf("Run: %#v", err)
	}
}

// socketpipe's own failure carries its status, hints and cause.
func TestPipeOwnError(t *testing.T) {
	p := localPipe(t, "cat")
	p.Input = []string{"true"}
	p.RemotePath = "/no/such/socketpipe"
	st, err := runPipe(t, p)
	var e *Error
	if !errors.As(err, &e) || e.Status != ExitFailure {
		t.Fatalf("Run: %#v", err)
	}
	if want := "the remote half did not start: /no/such/socketpipe is not installed on the remote host"; !strings.HasPrefix(e.Error(), want) {
		t.Errorf("message %q, want %q", e.Error(), want)
	}
	if len(e.Hints) == 0 || !errors.As(err, new(*wire.BannerError)) {
		t.Errorf("hints %q, cause %v", e.Hints, e.Err)
	}
	if st.Exit != ExitFailure || st.Login != "exec" || st.Stages[0].Exit != nil {
		t.Errorf("stats %+v", st)
	}

	p = localPipe(t, "cat")
	p.Encrypt, p.Cipher = true, "rot13"
	if _, err := runPipe(t, p); !errors.As(err, &e) || e.Status != ExitUsage || !strings.Contains(e.Error(), `unknown cipher "rot13"`) {
		t.Errorf("an unknown cipher: %#v", err)
	}
}

// Streams left nil are the null device, as with os/exec: the remote command's output is
// dropped and the run succeeds; a Pipe without a login or a remote command is refused.
func TestPipeNilStreams(t *testing.T) {
	p := localPipe(t, "cat")
	p.Input = []string{"echo", "dropped"}
	p.Stdout, p.Stderr = nil, nil
	if st, err := runPipe(t, p); err != nil || st.Bytes.FromRemote != int64(len("dropped\n")) {
		t.Fatalf("Run: %v, stats %+v", err, st)
	}
	var e *Error
	if _, err := (&Pipe{Remote: []string{"cat"}}).Run(context.Background()); !errors.As(err, &e) || e.Status != ExitUsage {
		t.Errorf("a Pipe without a login: %#v", err)
	}
}
