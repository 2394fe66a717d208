//go:build linux

package integration

// End-to-end tests of the basic run through an executed ssh login (-x): the compat
// path, where the login command is the ssh binary and the remote half is found on the PATH that
// the test sshd's SetEnv gives every session.

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// writeTree writes a small directory tree with binary and text files and returns its root.
func writeTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "src")
	files := map[string][]byte{
		"a.txt":             []byte("hello, tape\n"),
		"dir/b.bin":         randomBytes(t, 300<<10),
		"dir/sub/c with sp": []byte("spaces in names\n"),
		"empty":             nil,
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	p, _ := randomFile(t, int64(n))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameTree fails unless every regular file under want has the same contents under got, and got
// has no other files.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	seen := map[string]bool{}
	filepath.Walk(want, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		if fileSum(t, p) != fileSum(t, filepath.Join(got, rel)) {
			t.Errorf("%s differs after the round trip", rel)
		}
		return nil
	})
	filepath.Walk(got, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(got, p)
		if !seen[rel] {
			t.Errorf("unexpected file %s after the round trip", rel)
		}
		return nil
	})
}

// TestManualExamples runs the three examples of the original manual, with files standing in for
// the tape drives (and gzip for bzip2, which a minimal Debian lacks).
func TestManualExamples(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	src := writeTree(t)
	remoteTape := filepath.Join(t.TempDir(), "remote-st0")
	localTape := filepath.Join(t.TempDir(), "local-st0")

	// Backup the local host on a tape drive located on the remote host.
	res := r.run(t, nil, args("-b", block("-i", "tar", "cf", "-", "-C", src, "."), r.execLogin(),
		block("-r", "dd", "of="+remoteTape, "bs=32k"))...)
	want(t, res, 0)
	out, err := exec.Command("tar", "tf", remoteTape).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dir/sub/c with sp") {
		t.Fatalf("tar tf of the remote tape: %v\n%s", err, out)
	}

	// Restore a directory using the tape drive on the remote host.
	restored := filepath.Join(t.TempDir(), "restored")
	if err := os.Mkdir(restored, 0o755); err != nil {
		t.Fatal(err)
	}
	res = r.run(t, nil, args("-b", r.execLogin(), block("-r", "dd", "if="+remoteTape, "bs=32k"),
		block("-o", "tar", "xpf", "-", "-C", restored))...)
	want(t, res, 0)
	sameTree(t, src, restored)

	// Backup the local disk on a local tape, compressing the data on the remote host.
	res = r.run(t, nil, args("-b", block("-i", "tar", "cf", "-", "-C", src, "."), r.execLogin(),
		block("-r", "gzip", "-c"), block("-o", "dd", "of="+localTape, "bs=32k"))...)
	want(t, res, 0)
	unpacked := filepath.Join(t.TempDir(), "unpacked")
	if err := os.Mkdir(unpacked, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "xzf", localTape, "-C", unpacked).CombinedOutput(); err != nil {
		t.Fatalf("the local tape is not a gzipped tar: %v\n%s", err, out)
	}
	sameTree(t, src, unpacked)
	r.noneLeft(t)
}

// TestInputOutputCombinations runs each combination of a local input command or none with a
// local output command or socketpipe's standard output.
func TestInputOutputCombinations(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	data := randomBytes(t, 1<<20)
	in := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()

	t.Run("input-to-output", func(t *testing.T) {
		out := filepath.Join(outDir, "1")
		res := r.run(t, nil, args(block("-i", "cat", in), r.execLogin(), block("-r", "cat"), block("-o", "dd", "of="+out, "bs=64k"))...)
		want(t, res, 0)
		if fileSum(t, out) != sum(data) {
			t.Fatal("the output file differs from the input")
		}
		if res.stdout != "" {
			t.Errorf("with -o, socketpipe's own stdout got %q", trunc(res.stdout))
		}
	})
	t.Run("input-to-stdout", func(t *testing.T) {
		res := r.run(t, nil, args(block("-i", "cat", in), r.execLogin(), block("-r", "cat"))...)
		want(t, res, 0)
		if sum([]byte(res.stdout)) != sum(data) {
			t.Fatalf("stdout has %d bytes, not the %d input bytes", len(res.stdout), len(data))
		}
	})
	t.Run("stdin-to-input-command", func(t *testing.T) {
		// The input command is a command like any other in a pipeline: it reads socketpipe's
		// standard input, as in the original.
		res := r.run(t, bytes.NewReader(data), args(block("-i", "cat"), r.execLogin(), block("-r", "sha256sum"))...)
		want(t, res, 0)
		if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sum(data) {
			t.Fatalf("the remote sha256sum of what -i { cat } read from stdin: %q, want %s", res.stdout, sum(data))
		}
	})
	t.Run("no-input-to-output", func(t *testing.T) {
		// Without -i the remote command reads end of file at once, even while socketpipe's
		// own stdin stays open and silent.
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pw.Close()
		res := r.run(t, pr, args(r.execLogin(), block("-r", "sh", "-c", "wc -c; cat "+in), block("-o", "sha256sum"))...)
		pr.Close()
		want(t, res, 0)
		var wantOut bytes.Buffer
		wantOut.WriteString("0\n")
		wantOut.Write(data)
		if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sum(wantOut.Bytes()) {
			t.Fatalf("the output command saw %q, want the sum of \"0\\n\" and the file", res.stdout)
		}
	})
	t.Run("remote-stderr", func(t *testing.T) {
		res := r.run(t, nil, args(r.execLogin(), block("-r", "sh", "-c", "echo to-stderr >&2; echo to-stdout"), block("-o", "cat"))...)
		want(t, res, 0)
		if res.stdout != "to-stdout\n" {
			t.Errorf("stdout = %q", res.stdout)
		}
		mustContain(t, "stderr", res.stderr, "to-stderr\n")
	})
	r.noneLeft(t)
}

// TestLargeRandom moves 64 MiB of random data through the remote command and compares checksums,
// once into an output command and once onto socketpipe's standard output.
func TestLargeRandom(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	in, inSum := randomFile(t, 64<<20)
	t.Run("output-command", func(t *testing.T) {
		res := r.run(t, nil, args(block("-i", "cat", in), r.execLogin(), block("-r", "cat"), block("-o", "sha256sum"))...)
		want(t, res, 0)
		if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != inSum {
			t.Fatalf("sha256 at the output: %q, want %s", res.stdout, inSum)
		}
	})
	t.Run("stdout", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), runBound)
		defer cancel()
		cmd := r.spCmd(ctx, args(block("-i", "cat", in), r.execLogin(), block("-r", "cat"))...)
		cmd.Stdout = f
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = cmd.Run()
		f.Close()
		if err != nil {
			t.Fatalf("socketpipe: %v\n%s", err, stderr.Bytes())
		}
		if got := fileSum(t, out); got != inSum {
			t.Fatalf("sha256 of socketpipe's stdout %s, want %s", got, inSum)
		}
	})
	r.noneLeft(t)
}

// TestArgumentsVerbatim sends words full of shell syntax; printf on the remote host must print
// each exactly: no remote shell parses them.
func TestArgumentsVerbatim(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	words := []string{
		"two words", "  leading and trailing  ", "", "*", "$HOME", "${PATH}", "$(id)", "`id`",
		"'single'", `"double"`, `back\slash`, ";", "&&", "|", ">", "<", "a\tb", "line\nbreak",
		"#", "~", "!", "{", "}", "{ nested }", "ünïcödé", "-v", "--serve",
	}
	res := r.run(t, nil, args(r.execLogin(), block("-r", append([]string{"printf", "%s\\n"}, words...)...), block("-o", "cat"))...)
	want(t, res, 0)
	if wantOut := strings.Join(words, "\n") + "\n"; res.stdout != wantOut {
		t.Fatalf("printf printed\n%q\nwant\n%q", res.stdout, wantOut)
	}
	r.noneLeft(t)
}

// TestLoginFailsFast logs in to a port where nothing listens: ssh's own message is shown and
// socketpipe exits 2 at once, not after the data connection timeout.
func TestLoginFailsFast(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	login := append(append([]string{"-x", "-l", "{"}, "ssh", "-F", r.sshd.ClientConfig, "-p", itoa(closed), r.sshd.Alias), "}")
	res := r.run(t, nil, args(login, block("-r", "cat"), block("-o", "cat"))...)
	want(t, res, 2)
	mustContain(t, "stderr", res.stderr, "Connection refused", "socketpipe: error: ")
	oneError(t, res)
	// The default -t is 30 s; a login failure must not wait for it.
	if res.took > 15*time.Second {
		t.Errorf("a refused login took %v", res.took)
	}
	r.noneLeft(t)
}

// TestTimeoutNothingConnects asks the remote half to connect back to an address where nothing
// answers: the client's listener waits for -t and gives up with the firewall hint.
func TestTimeoutNothingConnects(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	const timeout = 3 * time.Second
	// 192.0.2.1 (TEST-NET-1) is not an address of this host: the client listens on the login's
	// local address, and the remote half dials one that never answers.
	res := r.run(t, nil, args("-m", "back", "-h", "192.0.2.1", "-t", "3", r.execLogin(), block("-r", "cat"), block("-o", "cat"))...)
	want(t, res, 2)
	mustContain(t, "stderr", res.stderr, "socketpipe: error: no data connection within 3s", "socketpipe: hint: ", "firewall", "-h")
	oneError(t, res)
	if res.took < timeout || res.took > timeout+20*time.Second {
		t.Errorf("the run took %v, want about -t %v (plus the login)", res.took, timeout)
	}
	r.noneLeft(t)
}

// TestRemoteHalfMissing names a remote binary that does not exist.
func TestRemoteHalfMissing(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	res := r.run(t, nil, args("--remote-path", "/nonexistent/socketpipe", r.execLogin(), block("-r", "cat"), block("-o", "cat"))...)
	want(t, res, 2)
	mustContain(t, "stderr", res.stderr,
		"socketpipe: error: the remote half did not start: /nonexistent/socketpipe is not installed on the remote host",
		"socketpipe: hint: ")
	oneError(t, res)
	if res.took > 20*time.Second {
		t.Errorf("took %v", res.took)
	}
	r.noneLeft(t)
}

// TestLoginBanner gives the remote user a .bashrc that prints a banner, on stdout and stderr,
// before the remote half starts: the client skips it.
func TestLoginBanner(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	rc := "echo 'Welcome to the test host'\nprintf 'no newline at the end'\necho 'to stderr' >&2\nprintf '\\001\\002\\377binary\\n'\n"
	if err := os.WriteFile(filepath.Join(r.sshd.Home, ".bashrc"), []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 256<<10)
	res := r.run(t, bytes.NewReader(data), args("-v", block("-i", "cat"), r.execLogin(), block("-r", "cat"), block("-o", "sha256sum"))...)
	want(t, res, 0)
	if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sum(data) {
		t.Fatalf("sha256 at the output %q, want %s", res.stdout, sum(data))
	}
	mustContain(t, "stderr", res.stderr, "login printed", "(skipped)")
	r.noneLeft(t)
}

// TestSIGTERMDuringTransfer signals socketpipe while data flows: it exits 128+15 and nothing of
// the run survives on either side.
func TestSIGTERMDuringTransfer(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	r.sigtermDuringTransfer(t, r.execLogin())
}

// sigtermDuringTransfer signals socketpipe, logging in with login, while data flows: it must
// exit 128+15 promptly and leave nothing of the run behind.
func (r *remote) sigtermDuringTransfer(t *testing.T, login []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	defer cancel()
	// sha256sum only on the remote side, so its process shows the transfer is under way.
	cmd := r.spCmd(ctx, args(block("-i", "cat", "/dev/zero"), login, block("-r", "sha256sum"), block("-o", "cat"))...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitForProcess(r.marker, "sha256sum", 60*time.Second) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the remote command never started\n%s", stderr.Bytes())
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("socketpipe did not end after SIGTERM\n%s", stderr.Bytes())
	}
	if code := exitCode(t, err); code != 128+15 {
		t.Fatalf("exit %d after SIGTERM, want 143\n%s", code, stderr.Bytes())
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("socketpipe took %v to end after SIGTERM", took)
	}
	r.noneLeft(t)
}

// waitForProcess waits up to within for a process carrying marker whose command is name.
func waitForProcess(marker, name string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, p := range harness.FindProcesses(marker) {
			if len(p.Cmdline) > 0 && filepath.Base(p.Cmdline[0]) == name {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond) // polling the condition itself, bounded by the deadline
	}
	return false
}

// TestNestedBraces runs a second socketpipe as the remote command: its own brace blocks must
// arrive as words, and the data must cross both hops.
func TestNestedBraces(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	second := r.addSSHD(t, harness.SSHDOptions{Alias: "sp-second"})
	data := randomBytes(t, 2<<20)
	inner := args("socketpipe", "-x", block("-i", "cat"), "-l", "{", second.SSHArgs(), "}", block("-r", "cat"), block("-o", "cat"))
	res := r.run(t, bytes.NewReader(data), args(block("-i", "cat"), r.execLogin(), block("-r", inner...), block("-o", "sha256sum"))...)
	want(t, res, 0)
	if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sum(data) {
		t.Fatalf("sha256 after two hops %q, want %s\n%v", res.stdout, sum(data), res)
	}
	if second.AuthCount() != 1 {
		t.Errorf("the second sshd saw %d logins, want 1", second.AuthCount())
	}
	r.noneLeft(t)
}
