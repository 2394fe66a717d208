package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/socketpipe/socketpipe/pkg/plumb"
)

// The test binary is socketpipe too when this is set: the remote half, started by a local
// "login", and the client in tests that signal it.
const asMain = "SOCKETPIPE_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Setenv(asMain, "1") // for the remote halves the tests start
	// The scripts run main as `socketpipe` on their PATH (script_test.go).
	testscript.Main(m, map[string]func(){"socketpipe": main})
}

// localLogin is a login to this host that starts the remote half (this test binary) with
// SSH_CONNECTION saying both ends are on loopback, as sshd would.
func localLogin(t *testing.T) []string {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		"--remote-path", self,
		"-l", "{", "env", "SSH_CONNECTION=127.0.0.1 50000 127.0.0.1 22", "sh", "-c", `eval "$0"`, "}",
	}
}

// failingLogin is a login that fails before the remote half starts. It takes in what it is
// sent (in the background), as ssh does, so that the request always finds a reader: a login that
// exits at once can make socketpipe fail writing the request instead.
var failingLogin = []string{"-l", "{", "sh", "-c", "cat >/dev/null & exit 1", "}"}

// runCLI runs socketpipe in-process and returns its exit status and standard error.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	stdout, _ := os.Create(filepath.Join(dir, "stdout"))
	stderr, _ := os.Create(filepath.Join(dir, "stderr"))
	defer stdout.Close()
	defer stderr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	status := run(ctx, append([]string{"socketpipe"}, args...), nil, stdout, stderr)
	b, _ := os.ReadFile(stderr.Name())
	return status, string(b)
}

// readStats decodes a stats file into the documented struct, refusing fields it does not
// document.
func readStats(t *testing.T, b []byte) *plumb.Stats {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s plumb.Stats
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("stats %q: %v", b, err)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value in %q", b)
	}
	if s.Version != plumb.StatsVersion {
		t.Errorf("version %d", s.Version)
	}
	return &s
}

func readStatsFile(t *testing.T, path string) *plumb.Stats {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no stats file: %v", err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("stats file mode %v, want -rw------- (it holds the command lines)", fi.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	return readStats(t, b)
}

func TestStatsFile(t *testing.T) {
	for _, mode := range []string{"back", "reverse", "ssh"} {
		for _, enc := range []bool{false, true} {
			name := mode
			if enc {
				name += "-e"
			}
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "stats.json")
				os.WriteFile(path, []byte("an older run's"), 0o600)
				args := append(localLogin(t), "-m", mode, "--stats", path,
					"-i", "{", "head", "-c", "3000000", "/dev/zero", "}",
					"-r", "{", "sh", "-c", "cat >/dev/null; head -c 1234567 /dev/zero", "}",
					"-o", "{", "wc", "-c", "}")
				if enc {
					args = append(args, "-e")
				}
				if mode == "reverse" {
					// A login command other than ssh: the client dials only an address
					// the user named.
					args = append(args, "-h", "127.0.0.1")
				}
				status, stderr := runCLI(t, args...)
				if status != 0 {
					t.Fatalf("status %d: %s", status, stderr)
				}
				s := readStatsFile(t, path)
				if s.Login != "exec" || s.Mode != mode || s.Exit != 0 || s.Error != nil {
					t.Errorf("stats: %+v", s)
				}
				if s.Encrypted != (enc && mode != "ssh") {
					t.Errorf("encrypted: %v", s.Encrypted)
				}
				if s.Bytes != (plumb.StatsBytes{ToRemote: 3000000, FromRemote: 1234567}) {
					t.Errorf("bytes: %+v", s.Bytes)
				}
				if (s.TCP != nil) != (mode != "ssh" && !enc) {
					t.Errorf("tcp: %+v", s.TCP)
				}
				sec := s.Seconds
				if sec.Setup <= 0 || sec.Transfer <= 0 || sec.Total < sec.Setup+sec.Transfer {
					t.Errorf("seconds: %+v", sec)
				}
				if len(s.Stages) != 3 {
					t.Fatalf("stages: %+v", s.Stages)
				}
				for _, st := range s.Stages {
					if st.Exit == nil || *st.Exit != 0 || st.Signal != nil || st.Error != nil {
						t.Errorf("stage %+v", st)
					}
				}
				if strings.Contains(stderr, "socketpipe:") {
					t.Errorf("without -v, socketpipe said: %s", stderr)
				}
			})
		}
	}
}

// TestStatsFailedRun: failed runs write the file too, with the error as printed and the stage
// that failed.
func TestStatsFailedRun(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		exit   int
		err    string
		stage  string // the stage that failed, with its exit status
		status int
	}{
		{
			name: "login fails",
			args: append([]string{"-i", "{", "true", "}", "-r", "{", "cat", "}"}, failingLogin...),
			exit: 2, err: `login failed: sh exited with status 1 before the remote half started`,
		},
		{
			name: "remote fails",
			args: append(localLogin(t), "-i", "{", "echo", "hi", "}", "-r", "{", "sh", "-c", "cat >/dev/null; exit 3", "}", "-o", "{", "cat", "}"),
			exit: 3, err: `remote command "sh" exited with status 3`, stage: "remote", status: 3,
		},
		{
			name: "input not found",
			args: append(localLogin(t), "-i", "{", "no-such-command-here", "}", "-r", "{", "cat", "}"),
			exit: 127, err: `input command "no-such-command-here": not found`, stage: "input", status: 127,
		},
		{
			name: "remote half missing",
			args: []string{"--remote-path", "/no/such/socketpipe", "-l", "{", "sh", "-c", `eval "$0"`, "}", "-i", "{", "true", "}", "-r", "{", "cat", "}"},
			exit: 2, err: "the remote half did not start: /no/such/socketpipe is not installed on the remote host",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "stats.json")
			status, stderr := runCLI(t, append(tt.args, "--stats", path)...)
			if status != tt.exit {
				t.Fatalf("status %d, want %d: %s", status, tt.exit, stderr)
			}
			s := readStatsFile(t, path)
			if s.Exit != tt.exit || s.Error == nil || !strings.HasPrefix(*s.Error, tt.err) {
				t.Fatalf("exit %d, error %v; want %d, %q", s.Exit, s.Error, tt.exit, tt.err)
			}
			if !strings.Contains(stderr, "socketpipe: error: "+*s.Error+"\n") {
				t.Errorf("the error is not as printed: %q vs %q", *s.Error, stderr)
			}
			for _, st := range s.Stages {
				switch {
				case st.Name == tt.stage:
					if st.Exit == nil || *st.Exit != tt.status {
						t.Errorf("failed stage %+v, want exit %d", st, tt.status)
					}
				case tt.stage == "" && st.Exit != nil:
					t.Errorf("stage %s has an exit status though it never ran", st.Name)
				}
			}
		})
	}
}

// TestStatsStderr: "--stats -" writes the summary on standard error, after the error.
func TestStatsStderr(t *testing.T) {
	status, stderr := runCLI(t, append(failingLogin, "-i", "{", "true", "}", "-r", "{", "cat", "}", "--stats", "-")...)
	if status != 2 {
		t.Fatalf("status %d", status)
	}
	i := strings.Index(stderr, "{")
	if i < 0 || !strings.HasPrefix(stderr, "socketpipe: error: login failed") {
		t.Fatalf("stderr %q", stderr)
	}
	s := readStats(t, []byte(stderr[i:]))
	if s.Exit != 2 || s.Login != "exec" || s.Mode != "" || s.TCP != nil {
		t.Errorf("stats %+v", s)
	}
}

// TestStatsFileMode: a new stats file is the user's alone, whatever the umask, since it holds
// every stage's command line and the error; a file it replaces keeps the mode it had, 0600
// included; and the replacement stays atomic.
func TestStatsFileMode(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	s := &plumb.Stats{Version: plumb.StatsVersion}
	for _, c := range []struct {
		name string
		had  os.FileMode // 0: no file before
		want os.FileMode
	}{
		{"new", 0, 0o600},
		{"replacing 0600", 0o600, 0o600},
		{"replacing 0640", 0o640, 0o640},
		{"replacing 0644", 0o644, 0o644},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".json")
		if c.had != 0 {
			if err := os.WriteFile(path, []byte("an older run's"), c.had); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, c.had)
		}
		if err := writeStats(path, s, io.Discard); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.want {
			t.Errorf("%s: stats file mode %v, want %v", c.name, fi.Mode().Perm(), c.want)
		}
		if b, _ := os.ReadFile(path); readStats(t, b).Version != plumb.StatsVersion {
			t.Errorf("%s: the file holds %q", c.name, b)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestStatsUnwritable: a stats file that cannot be written fails a run that otherwise worked.
func TestStatsUnwritable(t *testing.T) {
	args := append(localLogin(t), "-i", "{", "true", "}", "-r", "{", "true", "}", "--stats", "/no/such/dir/stats.json")
	status, stderr := runCLI(t, args...)
	if status != exitFailure || !strings.Contains(stderr, "socketpipe: error: --stats:") {
		t.Fatalf("status %d: %q", status, stderr)
	}
}

// TestStatsSignal: socketpipe killed by a signal mid-transfer still writes the summary.
func TestStatsSignal(t *testing.T) {
	self, _ := os.Executable()
	path := filepath.Join(t.TempDir(), "stats.json")
	args := append(localLogin(t), "-v", "--stats", path, "-i", "{", "true", "}", "-r", "{", "sleep", "30", "}")
	cmd := exec.Command(self, args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var said strings.Builder
	connected := regexp.MustCompile(`data connection: (back|reverse|ssh) \(`)
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		said.WriteString(sc.Text() + "\n")
		if connected.MatchString(sc.Text()) {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	go io.Copy(io.Discard, stderr)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Fatalf("socketpipe ended with %v; it said:\n%s", err, said.String())
	}
	s := readStatsFile(t, path)
	if s.Exit != 143 || s.Error == nil || *s.Error != "interrupted by SIGTERM" || s.Mode == "" {
		t.Fatalf("stats: exit %d, error %q, mode %q; it said:\n%s", s.Exit, *s.Error, s.Mode, said.String())
	}
}

// TestProgressTerminal runs socketpipe -v with its standard error on a pseudo-terminal: the
// progress line is rewritten in place, and the totals end it on a line of their own.
func TestProgressTerminal(t *testing.T) {
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("pseudo-terminal: %v", err)
	}
	defer ptm.Close()
	var mu sync.Mutex
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptm.Read(b)
			mu.Lock()
			screen.Write(b[:n])
			mu.Unlock()
			if err != nil {
				close(copied)
				return
			}
		}
	}()
	stdout, _ := os.Create(filepath.Join(t.TempDir(), "stdout"))
	defer stdout.Close()
	// Ten pieces a tenth of a second apart: a second of transfer, four refreshes a second.
	args := append(localLogin(t), "-v", "-m", "back",
		"-i", "{", "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do head -c 100000 /dev/zero; sleep 0.1; done", "}",
		"-r", "{", "cat", "}")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	status := run(ctx, append([]string{"socketpipe"}, args...), nil, stdout, tty)
	tty.Close()
	<-copied
	if status != 0 {
		t.Fatalf("status %d: %q", status, screen.String())
	}
	out := screen.String()
	done := strings.Index(out, "socketpipe: done: to remote 1000000 bytes (976.6 KiB, ")
	if done < 0 {
		t.Fatalf("no final totals in %q", out)
	}
	if !strings.HasSuffix(out[:done], "\r\x1b[K") || !strings.Contains(out[done:], "from remote 1000000 bytes") {
		t.Errorf("final totals not on a line of their own: %q", out[done:])
	}
	if !strings.HasSuffix(out, "\r\n") || strings.Count(out[done:], "\n") != 1 {
		t.Errorf("the totals do not end the output: %q", out[done:])
	}
	refreshes := regexp.MustCompile(`\rsocketpipe: 0:00:\d\d\.\d  to remote ([0-9.]+ K?i?B) `).FindAllStringSubmatch(out[:done], -1)
	counts := map[string]bool{}
	for _, r := range refreshes {
		counts[r[1]] = true
	}
	if len(refreshes) < 3 || len(counts) < 2 {
		t.Errorf("%d refreshes with %d different counts: %q", len(refreshes), len(counts), out)
	}
}
