//go:build linux

package integration

// End-to-end tests of ssh mode: `socketpipe --ssh` and socketpipe linked as ssh,
// against a real OpenSSH sshd, with rsync and tar as the tools that drive it.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
	"github.com/socketpipe/socketpipe/internal/testenv"
)

// sshModeEnv is one sshd whose sessions find socketpipe on PATH, and the socketpipe to run.
type sshModeEnv struct {
	t      *testing.T
	binDir string // holds socketpipe
	sp     string // the socketpipe binary
	sshd   *harness.SSHD
	marker string
}

func newSSHModeEnv(t *testing.T) *sshModeEnv {
	return newSSHModeEnvWith(t, harness.SSHDOptions{})
}

// newSSHModeEnvWith is newSSHModeEnv with more sshd options.
func newSSHModeEnvWith(t *testing.T, opts harness.SSHDOptions) *sshModeEnv {
	t.Helper()
	dir := harness.BuildSocketpipe(t)
	marker := harness.NewMarker()
	opts.PathDirs = append([]string{dir}, opts.PathDirs...)
	if opts.Env == nil {
		opts.Env = map[string]string{}
	}
	opts.Env[harness.MarkerEnv] = marker
	sshd := harness.StartSSHD(t, opts)
	e := &sshModeEnv{t: t, binDir: dir, sp: filepath.Join(dir, "socketpipe"), sshd: sshd, marker: marker}
	t.Cleanup(func() { harness.WaitNoProcesses(t, marker, 10*time.Second) })
	return e
}

// requireTool stops the test when a tool it drives is missing: a failure under CI=true.
func requireTool(t *testing.T, name string) {
	t.Helper()
	_, err := exec.LookPath(name)
	testenv.Need(t, name, err)
}

// rsh is the value of rsync -e / BORG_RSH for this sshd: socketpipe --ssh and the options that
// reach it; the host alias comes from the tool.
func (e *sshModeEnv) rsh() string {
	return e.sp + " --ssh -F " + e.sshd.ClientConfig
}

// sshResult is how a command ended.
type sshResult struct {
	stdout, stderr string
	code           int
}

// run runs argv with stdin, in env (added to the test's environment), and waits at most 2 min.
func (e *sshModeEnv) run(stdin string, env []string, argv ...string) sshResult {
	e.t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	return runCmd(e.t, cmd, stdin)
}

// runCmd runs cmd with stdin, at most 2 min, and returns how it ended.
func runCmd(t *testing.T, cmd *exec.Cmd, stdin string) sshResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Dir, c.Env = cmd.Dir, cmd.Env
	c.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	c.WaitDelay = 5 * time.Second
	err := c.Run()
	r := sshResult{stdout: out.String(), stderr: errb.String()}
	if ctx.Err() != nil {
		t.Fatalf("%q did not end within 2 minutes; stderr:\n%s", cmd.Args, r.stderr)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%q: %v", cmd.Args, err)
	}
	return r
}

// spSSH runs `socketpipe [own...] --ssh -F config alias remote...`.
func (e *sshModeEnv) spSSH(stdin string, own []string, remote ...string) sshResult {
	argv := append([]string{e.sp}, own...)
	argv = append(argv, "--ssh", "-F", e.sshd.ClientConfig, e.sshd.Alias)
	return e.run(stdin, nil, append(argv, remote...)...)
}

// makeTree fills dir with what rsync and tar must carry: nested directories, empty files and
// directories, odd modes, a symlink, and files large enough to need many round trips.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	write := func(name string, n int, mode os.FileMode) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		rand.Read(b)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	write("empty", 0, 0o644)
	write("one", 1, 0o600)
	write("page", 4096, 0o644)
	write("bin/tool", 100_000, 0o755)
	write("a/b/c/deep", 1<<20+7, 0o640)
	write("a/big", 6<<20+3, 0o644)
	for i := 0; i < 50; i++ {
		write(fmt.Sprintf("many/f%02d", i), i*113, 0o644)
	}
	if err := os.MkdirAll(filepath.Join(dir, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a/big", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
}

// compareTrees fails the test unless a and b hold the same names, types, permissions, contents
// and link targets.
func compareTrees(t *testing.T, a, b string) {
	t.Helper()
	list := func(root string) map[string]string {
		m := map[string]string{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if rel == "." {
				return nil
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			desc := fi.Mode().String()
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				desc += " -> " + target
			case fi.Mode().IsRegular():
				c, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				desc += fmt.Sprintf(" %d %x", len(c), c[:min(len(c), 16)])
				if !bytes.Equal(c, mustRead(t, filepath.Join(a, rel))) {
					desc += " (differs)"
				}
			}
			m[rel] = desc
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ma, mb := list(a), list(b)
	for k, va := range ma {
		if vb, ok := mb[k]; !ok {
			t.Errorf("%s: in %s, missing in %s", k, a, b)
		} else if va != vb {
			t.Errorf("%s: %s in %s, %s in %s", k, va, a, vb, b)
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			t.Errorf("%s: in %s, not in %s", k, b, a)
		}
	}
	if len(ma) < 10 {
		t.Fatalf("tree %s has only %d entries", a, len(ma))
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	return b
}

// A direct data connection, not the ssh relay, must carry the bytes: -v tells which.
func requireDirect(t *testing.T, stderr string) {
	t.Helper()
	if !strings.Contains(stderr, "data connection: back") && !strings.Contains(stderr, "data connection: reverse") {
		t.Fatalf("no direct data connection in the -v story:\n%s", stderr)
	}
}

// rsync pushes and pulls a tree through socketpipe --ssh; the rsync protocol talks both ways and
// ends with half-closes, and a second run must find nothing to send.
func TestSSHModeRsync(t *testing.T) {
	requireTool(t, "rsync")
	e := newSSHModeEnv(t)
	base := t.TempDir()
	src := filepath.Join(base, "src")
	makeTree(t, src)
	verbose := []string{"SOCKETPIPE_SSH_OPTIONS=-v"}

	pushed := filepath.Join(base, "pushed")
	r := e.run("", verbose, "rsync", "-a", "-e", e.rsh(), src+"/", e.sshd.Alias+":"+pushed+"/")
	if r.code != 0 {
		t.Fatalf("rsync push: status %d\n%s", r.code, r.stderr)
	}
	requireDirect(t, r.stderr)
	compareTrees(t, src, pushed)

	r = e.run("", nil, "rsync", "-a", "-i", "-e", e.rsh(), src+"/", e.sshd.Alias+":"+pushed+"/")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("second rsync push: status %d, itemized changes %q (want none)\n%s", r.code, r.stdout, r.stderr)
	}

	pulled := filepath.Join(base, "pulled")
	r = e.run("", verbose, "rsync", "-a", "-e", e.rsh(), e.sshd.Alias+":"+src+"/", pulled+"/")
	if r.code != 0 {
		t.Fatalf("rsync pull: status %d\n%s", r.code, r.stderr)
	}
	requireDirect(t, r.stderr)
	compareTrees(t, src, pulled)

	r = e.run("", nil, "rsync", "-a", "-i", "-e", e.rsh(), e.sshd.Alias+":"+src+"/", pulled+"/")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("second rsync pull: status %d, itemized changes %q (want none)\n%s", r.code, r.stdout, r.stderr)
	}

	// A change on one side is found and carried: the delta algorithm's round trips work.
	if err := os.WriteFile(filepath.Join(src, "one"), []byte("changed"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run("", nil, "rsync", "-a", "-i", "-e", e.rsh(), src+"/", e.sshd.Alias+":"+pushed+"/")
	if r.code != 0 || !strings.Contains(r.stdout, "one") {
		t.Fatalf("rsync of a change: status %d, itemized %q\n%s", r.code, r.stdout, r.stderr)
	}
	compareTrees(t, src, pushed)
}

// tar streams one way in each direction, as `tar cf - | ssh host tar xf -` does.
func TestSSHModeTar(t *testing.T) {
	requireTool(t, "tar")
	e := newSSHModeEnv(t)
	base := t.TempDir()
	src := filepath.Join(base, "src")
	makeTree(t, src)

	up := filepath.Join(base, "up")
	script := fmt.Sprintf("tar cf - -C %s . | %s %s 'mkdir -p %s && tar xf - -C %s'", src, e.rsh(), e.sshd.Alias, up, up)
	r := e.run("", []string{"SOCKETPIPE_SSH_OPTIONS=-v"}, "/bin/sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("tar up: status %d\n%s", r.code, r.stderr)
	}
	requireDirect(t, r.stderr)
	compareTrees(t, src, up)

	down := filepath.Join(base, "down")
	if err := os.Mkdir(down, 0o755); err != nil {
		t.Fatal(err)
	}
	script = fmt.Sprintf("%s %s tar cf - -C %s . | tar xf - -C %s", e.rsh(), e.sshd.Alias, src, down)
	r = e.run("", nil, "/bin/sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("tar down: status %d\n%s", r.code, r.stderr)
	}
	compareTrees(t, src, down)
}

// Words are joined by spaces and the remote shell parses them, as with ssh; stdin reaches the
// remote command, its end is seen, and output after it still arrives (half-close both ways).
func TestSSHModeShellAndHalfClose(t *testing.T) {
	e := newSSHModeEnv(t)
	r := e.spSSH("", nil, "echo", "a   b", "'c   d'", "$((6*7))")
	if r.code != 0 || r.stdout != "a b c   d 42\n" {
		t.Fatalf("shell semantics: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = e.spSSH("hello\nworld\n", nil, "wc -l; echo after-eof")
	if r.code != 0 || strings.Join(strings.Fields(r.stdout), " ") != "2 after-eof" {
		t.Fatalf("half-close: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// -n: the remote command reads end of file, not our stdin.
	r = e.spSSH("not for you\n", nil, "-n", "cat")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("-n: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// Every rendezvous mode carries the same bytes.
	for _, mode := range []string{"back", "reverse", "ssh"} {
		r = e.spSSH("ping\n", []string{"-m", mode}, "cat; echo pong")
		if r.code != 0 || r.stdout != "ping\npong\n" {
			t.Errorf("-m %s: status %d, stdout %q, stderr %q", mode, r.code, r.stdout, r.stderr)
		}
	}
	r = e.spSSH("sealed\n", []string{"-e"}, "cat")
	if r.code != 0 || r.stdout != "sealed\n" {
		t.Errorf("-e: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// A stdin that never ends must not keep socketpipe once the remote command is done: ssh does
// not wait for it either.
func TestSSHModeOpenStdin(t *testing.T) {
	e := newSSHModeEnv(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.sp, "--ssh", "-F", e.sshd.ClientConfig, e.sshd.Alias, "echo", "done")
	cmd.Stdin = pr
	out, err := cmd.Output()
	pr.Close()
	if err != nil || string(out) != "done\n" {
		t.Fatalf("with an open stdin: %v, stdout %q (ctx: %v)", err, out, ctx.Err())
	}
}

// Linked as ssh, socketpipe serves `ssh host cmd` from PATH; what it cannot serve goes to the
// real ssh, with the same arguments.
func TestSSHModeSymlink(t *testing.T) {
	e := newSSHModeEnv(t)
	realSSH, err := exec.LookPath("ssh")
	if err != nil {
		t.Fatal(err)
	}
	linkDir := t.TempDir()
	if err := os.Symlink(e.sp, filepath.Join(linkDir, "ssh")); err != nil {
		t.Fatal(err)
	}
	// A stand-in for the real ssh, after the link on PATH: it records its arguments and runs
	// the real one.
	fakeDir := t.TempDir()
	record := filepath.Join(fakeDir, "args")
	fake := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\nexec %s \"$@\"\n", record, realSSH)
	if err := os.WriteFile(filepath.Join(fakeDir, "ssh"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "script")
	os.WriteFile(script, []byte("#!/bin/sh\nssh \"$@\"\n"), 0o755)

	// 1. No real ssh on PATH at all: only the link. The script's ssh is socketpipe, which
	// logs in natively.
	r := e.run("in\n", []string{"PATH=" + linkDir, "SOCKETPIPE_SSH_OPTIONS=-v"},
		"/bin/sh", script, "-F", e.sshd.ClientConfig, e.sshd.Alias, "cat; echo out")
	if r.code != 0 || r.stdout != "in\nout\n" {
		t.Fatalf("ssh link without a real ssh: status %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "socketpipe: [") || !strings.Contains(r.stderr, "native login") {
		t.Errorf("the -v story does not show socketpipe logging in natively:\n%s", r.stderr)
	}
	requireDirect(t, r.stderr)

	// 2. With the real ssh after the link: a command is still socketpipe's (the stand-in is
	// never run)...
	path := "PATH=" + linkDir + ":" + fakeDir + ":/usr/bin:/bin"
	r = e.run("", []string{path, "SOCKETPIPE_SSH_OPTIONS=-v"},
		"/bin/sh", script, "-F", e.sshd.ClientConfig, e.sshd.Alias, "echo", "hi")
	if r.code != 0 || r.stdout != "hi\n" || !strings.Contains(r.stderr, "socketpipe: [") {
		t.Fatalf("ssh link with a command: status %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(record); err == nil {
		t.Fatalf("the real ssh was run for a command socketpipe serves")
	}

	// ...and no command reaches the real ssh, with the same arguments: an interactive login
	// whose shell reads our stdin.
	r = e.run("echo from-the-shell; exit 3\n", []string{path},
		"/bin/sh", script, "-F", e.sshd.ClientConfig, e.sshd.Alias)
	if r.code != 3 || !strings.Contains(r.stdout, "from-the-shell") {
		t.Fatalf("ssh link without a command: status %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	got, err := os.ReadFile(record)
	if want := "-F\n" + e.sshd.ClientConfig + "\n" + e.sshd.Alias + "\n"; err != nil || string(got) != want {
		t.Fatalf("the real ssh got %q (%v), want %q", got, err, want)
	}

	// Port forwarding, -N and a terminal are the real ssh's too.
	for _, args := range [][]string{
		{"-N", "-L", "1234:localhost:22"},
		{"-t"},
		{"-W", "localhost:22"},
	} {
		os.Remove(record)
		argv := append([]string{"/bin/sh", script}, args...)
		argv = append(argv, "-F", "/dev/null", "-o", "ConnectTimeout=1", "-p", "1", "127.0.0.1", "true")
		e.run("", []string{path}, argv...)
		got, err := os.ReadFile(record)
		if err != nil || !strings.HasPrefix(string(got), strings.Join(args, "\n")+"\n") {
			t.Errorf("ssh %q: the real ssh got %q (%v)", args, got, err)
		}
	}

	// Without a real ssh, what needs one is a clear error and 255.
	r = e.run("", []string{"PATH=" + linkDir}, "/bin/sh", script, "-F", e.sshd.ClientConfig, e.sshd.Alias)
	if r.code != 255 || !strings.Contains(r.stderr, "no ssh binary on PATH besides socketpipe") {
		t.Errorf("no command and no real ssh: status %d, stderr %q", r.code, r.stderr)
	}
}

// rsync run as plain `rsync -e ssh` from a PATH whose ssh is socketpipe uses it too.
func TestSSHModeSymlinkRsync(t *testing.T) {
	requireTool(t, "rsync")
	e := newSSHModeEnv(t)
	linkDir := t.TempDir()
	if err := os.Symlink(e.sp, filepath.Join(linkDir, "ssh")); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	src := filepath.Join(base, "src")
	makeTree(t, src)
	dst := filepath.Join(base, "dst")
	r := e.run("", []string{"PATH=" + linkDir + ":/usr/bin:/bin", "SOCKETPIPE_SSH_OPTIONS=-v"},
		"rsync", "-a", "-e", "ssh -F "+e.sshd.ClientConfig, src+"/", e.sshd.Alias+":"+dst+"/")
	if r.code != 0 {
		t.Fatalf("rsync through the ssh link: status %d\n%s", r.code, r.stderr)
	}
	requireDirect(t, r.stderr)
	compareTrees(t, src, dst)
}

// A configuration socketpipe cannot honour in-process (ProxyCommand) makes it execute the real
// ssh as its login; that ssh's own `ssh -W` from PATH reaches socketpipe's link, which must
// hand it straight to the real ssh rather than call socketpipe again.
func TestSSHModeSymlinkProxyCommand(t *testing.T) {
	e := newSSHModeEnv(t)
	linkDir := t.TempDir()
	if err := os.Symlink(e.sp, filepath.Join(linkDir, "ssh")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	conf := fmt.Sprintf(`Host viaproxy
	HostName %s
	Port %d
	User root
	IdentityFile %s
	IdentitiesOnly yes
	IdentityAgent none
	UserKnownHostsFile %s
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	BatchMode yes
	LogLevel ERROR
	ProxyCommand ssh -F %s -W %%h:%%p %s
`, e.sshd.Host, e.sshd.Port, e.sshd.UserKey, e.sshd.KnownHosts, e.sshd.ClientConfig, e.sshd.Alias)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "script")
	os.WriteFile(script, []byte("#!/bin/sh\nssh \"$@\"\n"), 0o755)

	r := e.run("in\n", []string{"PATH=" + linkDir + ":/usr/bin:/bin", "SOCKETPIPE_SSH_OPTIONS=-v"},
		"/bin/sh", script, "-F", cfg, "viaproxy", "cat; echo out")
	if r.code != 0 || r.stdout != "in\nout\n" {
		t.Fatalf("ProxyCommand through the ssh link: status %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "executing the login command") {
		t.Errorf("the -v story does not show the executed login:\n%s", r.stderr)
	}

	// Without a real ssh the same configuration is a clear error, not a loop.
	r = e.run("", []string{"PATH=" + linkDir}, "/bin/sh", script, "-F", cfg, "viaproxy", "true")
	if r.code != 255 || !strings.Contains(r.stderr, "the ssh binary is needed") {
		t.Errorf("ProxyCommand without a real ssh: status %d, stderr %q", r.code, r.stderr)
	}
}

// --stats, before --ssh, records an ssh-mode run as it does a brace-mode one.
func TestSSHModeStats(t *testing.T) {
	e := newSSHModeEnv(t)
	file := filepath.Join(t.TempDir(), "stats.json")
	r := e.spSSH("12345", []string{"--stats", file}, "cat; echo", "-n", "678; exit 5")
	if r.code != 5 || r.stdout != "12345678" {
		t.Fatalf("status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Login string `json:"login"`
		Mode  string `json:"mode"`
		Bytes struct {
			ToRemote   int64 `json:"to_remote"`
			FromRemote int64 `json:"from_remote"`
		} `json:"bytes"`
		Exit int `json:"exit"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if s.Login != "native" || s.Mode == "" || s.Mode == "ssh" || s.Bytes.ToRemote != 5 || s.Bytes.FromRemote != 8 || s.Exit != 5 {
		t.Errorf("stats %+v from %s", s, b)
	}
}
