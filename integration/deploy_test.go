//go:build linux

package integration

// Self-deploy: a remote host without socketpipe gets this binary over the native SSH
// connection, once, into ~/.cache/socketpipe/<version>-<sha256 prefix>/socketpipe.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
	"github.com/socketpipe/socketpipe/internal/wire"
)

// deployEnv is an sshd whose sessions have no socketpipe on PATH, and the local binary.
type deployEnv struct {
	t       testing.TB
	sshd    *harness.SSHD
	bin     string // the local socketpipe
	marker  string
	version string // what bin --version says
	cache   string // the cache directory the remote side should use for bin
}

func newDeployEnv(t testing.TB, pathDirs ...string) *deployEnv {
	t.Helper()
	bin := filepath.Join(harness.BuildSocketpipe(t), "socketpipe")
	marker := harness.NewMarker()
	sshd := harness.StartSSHD(t, harness.SSHDOptions{
		PathDirs: pathDirs,
		Env:      map[string]string{harness.MarkerEnv: marker},
	})
	e := &deployEnv{t: t, sshd: sshd, bin: bin, marker: marker}
	installed := false
	for _, d := range pathDirs {
		if _, err := os.Stat(filepath.Join(d, "socketpipe")); err == nil {
			installed = true
		}
	}
	if out, err := sshd.Command(context.Background(), "command", "-v", "socketpipe").CombinedOutput(); err == nil && !installed {
		t.Fatalf("the remote sessions must not find socketpipe on PATH, but: %s", out)
	}
	// The cache's name starts with the version the binary reports: stamped by make, else the
	// module's or "devel".
	vout, err := exec.Command(bin, "--version").Output()
	if err != nil || len(strings.Fields(string(vout))) < 2 {
		t.Fatalf("socketpipe --version: %q, %v", vout, err)
	}
	e.version = strings.Fields(string(vout))[1]
	e.cache = e.cacheOf(bin)
	t.Cleanup(func() { harness.WaitNoProcesses(t, marker, 10*time.Second) })
	return e
}

// cacheOf is the cache directory of a copy of bin deployed by this client: named by the
// client's version and the cache key, the SHA-256 of bin's Go build ID (DESIGN.md, Deployment).
func (e *deployEnv) cacheOf(bin string) string {
	e.t.Helper()
	id, err := exec.Command(goCmd(e.t), "tool", "buildid", bin).Output()
	if err != nil {
		e.t.Fatalf("go tool buildid: %v", err)
	}
	key := sha256.Sum256([]byte("go build ID " + strings.TrimSpace(string(id))))
	return filepath.Join(e.sshd.Home, ".cache", "socketpipe", e.version+"-"+hex.EncodeToString(key[:8]))
}

type deployResult struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// run runs socketpipe -v with extra options, logging in natively and echoing a word remotely.
func (e *deployEnv) run(extra ...string) deployResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return e.runArgv(ctx, append(append([]string{"-v"}, extra...), e.login("-r", "{", "echo", "deployed-ok", "}", "-o", "{", "cat", "}")...)...)
}

// login is the -l option logging in natively, then rest.
func (e *deployEnv) login(rest ...string) []string {
	argv := append([]string{"-l", "{"}, e.sshd.SSHArgs()...)
	return append(append(argv, "}"), rest...)
}

// runArgv runs socketpipe with the words given.
func (e *deployEnv) runArgv(ctx context.Context, argv ...string) deployResult {
	e.t.Helper()
	cmd := exec.CommandContext(ctx, e.bin, argv...)
	cmd.Env = append(os.Environ(), harness.MarkerEnv+"="+e.marker)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err := cmd.Run()
	r := deployResult{stdout: out.String(), stderr: errb.String(), took: time.Since(t0)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("socketpipe: %v", err)
	}
	return r
}

// mustRun runs and requires success.
func (e *deployEnv) mustRun(extra ...string) deployResult {
	e.t.Helper()
	r := e.run(extra...)
	if r.code != 0 || r.stdout != "deployed-ok\n" {
		e.t.Fatalf("socketpipe exited %d, stdout %q, want 0 and the remote output\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

func uploaded(r deployResult) bool { return strings.Contains(r.stderr, "uploaded socketpipe") }

type fileID struct {
	ino   uint64
	mtime time.Time
}

// checkCopy checks the cache holds exactly one good copy of the binary, and no temporary file.
func (e *deployEnv) checkCopy() fileID {
	e.t.Helper()
	want, err := os.ReadFile(e.bin)
	if err != nil {
		e.t.Fatal(err)
	}
	copyPath := filepath.Join(e.cache, "socketpipe")
	got, err := os.ReadFile(copyPath)
	if err != nil {
		e.t.Fatalf("no copy in the cache: %v", err)
	}
	if !bytes.Equal(got, want) {
		e.t.Fatalf("the cached copy (%d bytes) differs from the binary (%d bytes)", len(got), len(want))
	}
	fi, err := os.Stat(copyPath)
	if err != nil {
		e.t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		e.t.Errorf("the copy's mode is %v, want 0700", fi.Mode())
	}
	di, err := os.Stat(e.cache)
	if err != nil {
		e.t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		e.t.Errorf("the cache directory's mode is %v, want 0700", di.Mode())
	}
	ents, err := os.ReadDir(e.cache)
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, de := range ents {
		names = append(names, de.Name())
	}
	if strings.Join(names, " ") != "socketpipe socketpipe.ok" {
		e.t.Errorf("the cache directory holds %q, want the copy and its stamp only", names)
	}
	all, _ := filepath.Glob(filepath.Join(e.sshd.Home, ".cache", "socketpipe", "*"))
	if len(all) != 1 {
		e.t.Errorf("cache directories: %q, want one", all)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fileID{ino: st.Ino, mtime: fi.ModTime()}
}

func TestDeployFirstRunThenCached(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t)
	r := e.mustRun()
	if !uploaded(r) {
		t.Fatalf("the first run did not say it uploaded the binary:\n%s", r.stderr)
	}
	id := e.checkCopy()
	t.Logf("first run, %v:\n%s", r.took, r.stderr)

	r = e.mustRun()
	t.Logf("cached run, %v:\n%s", r.took, r.stderr)
	if uploaded(r) {
		t.Fatalf("the second run uploaded again:\n%s", r.stderr)
	}
	if id2 := e.checkCopy(); id2 != id {
		t.Fatalf("the cached copy changed: inode %d mtime %v, then inode %d mtime %v", id.ino, id.mtime, id2.ino, id2.mtime)
	}
}

// corruptions damage the cached copy so that running it would leave a trace (the file
// "executed" in the cache directory), or would fail.
var corruptions = []struct {
	name string
	do   func(t *testing.T, path string)
}{
	{"overwritten by a script", func(t *testing.T, path string) {
		script := "#!/bin/sh\ntouch \"$(dirname \"$0\")/executed\"\nexit 0\n"
		if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
	}},
	{"truncated", func(t *testing.T, path string) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	}},
	{"bytes flipped in place", func(t *testing.T, path string) {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xcc}, 4096), 1<<20); err != nil {
			t.Fatal(err)
		}
	}},
}

func TestDeployCorruptCopyReplaced(t *testing.T) {
	t.Parallel()
	for _, c := range corruptions {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newDeployEnv(t)
			e.mustRun()
			e.checkCopy()
			c.do(t, filepath.Join(e.cache, "socketpipe"))

			r := e.mustRun()
			if !uploaded(r) {
				t.Fatalf("the run after the corruption did not upload a new copy:\n%s", r.stderr)
			}
			if _, err := os.Stat(filepath.Join(e.cache, "executed")); err == nil {
				t.Fatal("the corrupted copy was executed")
			}
			e.checkCopy()
			if r := e.mustRun(); uploaded(r) {
				t.Fatalf("the run after the repair uploaded again:\n%s", r.stderr)
			}
		})
	}
}

func TestDeployConcurrentFirstRuns(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t)
	const n = 8
	results := make([]deployResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.run()
		}()
	}
	wg.Wait()
	ups := 0
	for i, r := range results {
		if r.code != 0 || r.stdout != "deployed-ok\n" {
			t.Errorf("run %d exited %d, stdout %q\nstderr:\n%s", i, r.code, r.stdout, r.stderr)
		}
		if uploaded(r) {
			ups++
		}
	}
	t.Logf("%d of %d concurrent first runs uploaded", ups, n)
	e.checkCopy()
	if r := e.mustRun(); uploaded(r) {
		t.Fatalf("a run after the concurrent ones uploaded again:\n%s", r.stderr)
	}
}

func TestNoDeploy(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t)
	r := e.run("--no-deploy")
	t.Logf("--no-deploy:\n%s", r.stderr)
	if r.code != 2 {
		t.Fatalf("--no-deploy without a remote socketpipe exited %d, want 2\nstderr:\n%s", r.code, r.stderr)
	}
	want := "socketpipe: error: the remote half did not start: socketpipe is not installed on the remote host (its PATH is /usr/local/sbin:"
	if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "socketpipe: hint: ") || !strings.Contains(r.stderr, "drop --no-deploy") {
		t.Fatalf("stderr does not say socketpipe is missing and name the remote PATH (%q...):\n%s", want, r.stderr)
	}
	if uploaded(r) {
		t.Fatal("--no-deploy uploaded")
	}
	if _, err := os.Stat(filepath.Join(e.sshd.Home, ".cache")); err == nil {
		t.Fatal("--no-deploy created a cache directory")
	}

	r = e.run("--no-deploy", "--remote-path", "/opt/nothing/socketpipe")
	if r.code != 2 || !strings.Contains(r.stderr, "socketpipe: error: the remote half did not start: /opt/nothing/socketpipe is not installed on the remote host") {
		t.Fatalf("--no-deploy --remote-path to nothing: exit %d\nstderr:\n%s", r.code, r.stderr)
	}
}

// An executed login (-x) never deploys, and says so.
func TestExecLoginDoesNotDeploy(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t)
	r := e.run("-x")
	t.Logf("-x:\n%s", r.stderr)
	if r.code != 2 {
		t.Fatalf("-x without a remote socketpipe exited %d, want 2\nstderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "socketpipe is not installed on the remote host") || !strings.Contains(r.stderr, "native ssh login") {
		t.Fatalf("stderr does not say socketpipe must be installed or that native login deploys it:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(e.sshd.Home, ".cache")); err == nil {
		t.Fatal("an executed login created a cache directory")
	}
}

// writeScript writes an executable script into dir.
func writeScript(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// goCmd finds the go command as the harness does: on PATH, else where .ci/run installs it.
func goCmd(t testing.TB) string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/local/go/bin/go"); err != nil {
		t.Fatal("no go command to read the binary's build ID with")
	}
	return "/usr/local/go/bin/go"
}

// mountCache mounts a tmpfs with opts on the remote home's .cache.
func mountCache(t *testing.T, e *deployEnv, opts string) string {
	t.Helper()
	dir := filepath.Join(e.sshd.Home, ".cache")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// mode=0700: a tmpfs's root is 1777 by default, a cache others could write to, which is
	// refused before any write is tried.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts+",mode=0700", "socketpipe-test", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs on %s: %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func TestDeployUnwritableCache(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, opts, says string }{
		{"read-only", "ro,size=16m", "Read-only file system"},
		{"full", "size=256k", "No space left on device"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newDeployEnv(t)
			dir := mountCache(t, e, c.opts)
			r := e.run()
			t.Logf("%s cache:\n%s", c.name, r.stderr)
			if r.code != 2 {
				t.Fatalf("exit %d with a %s cache, want 2\nstderr:\n%s", r.code, c.name, r.stderr)
			}
			if !strings.Contains(r.stderr, "socketpipe: error: cannot deploy socketpipe into ${XDG_CACHE_HOME:-$HOME/.cache}/socketpipe/") ||
				!strings.Contains(r.stderr, c.says) || !strings.Contains(r.stderr, "socketpipe: hint: ") {
				t.Fatalf("stderr does not say the cache could not be written (%s):\n%s", c.says, r.stderr)
			}
			var left []string
			filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() {
					left = append(left, p)
				}
				return nil
			})
			if len(left) > 0 {
				t.Fatalf("files left in the cache: %q", left)
			}
		})
	}
}

// A cache on a noexec file system takes the copy, which then cannot run.
func TestDeployNoexecCache(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t)
	mountCache(t, e, "noexec,size=64m")
	r := e.run()
	t.Logf("noexec cache:\n%s", r.stderr)
	if r.code != 2 || !uploaded(r) {
		t.Fatalf("exit %d with a noexec cache, want 2 after an upload\nstderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "socketpipe: error: the copy of socketpipe deployed to "+filepath.Join(e.cache, "socketpipe")+" did not start") ||
		!strings.Contains(r.stderr, "socketpipe: hint: the remote cache directory may be on a noexec file system") {
		t.Fatalf("stderr does not say the copy could not run, and why:\n%s", r.stderr)
	}
}

// oldSocketpipe is a fake remote socketpipe that answers with the hello of another protocol.
func oldSocketpipe(t *testing.T, protocol int) string {
	hello, err := json.Marshal(&wire.Message{Type: wire.MsgHello, Version: "0.0.1", Protocol: protocol, PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	var frame bytes.Buffer
	frame.WriteString(wire.Magic)
	frame.WriteByte(wire.FrameJSON)
	binary.Write(&frame, binary.BigEndian, uint32(len(hello)))
	frame.Write(hello)
	var esc strings.Builder
	for _, c := range frame.Bytes() {
		fmt.Fprintf(&esc, "\\%03o", c)
	}
	return "printf '" + esc.String() + "'\n"
}

// A remote socketpipe of another protocol, newer or the one before this (whose proof of the
// data connection did not bind its direction), gets this binary deployed; with --no-deploy
// the run fails with an error that names both protocols.
func TestDeployOnVersionMismatch(t *testing.T) {
	t.Parallel()
	for _, protocol := range []int{99, wire.Protocol - 1} {
		t.Run(fmt.Sprint("protocol-", protocol), func(t *testing.T) {
			t.Parallel()
			old := t.TempDir()
			os.Chmod(old, 0o755)
			writeScript(t, old, "socketpipe", oldSocketpipe(t, protocol))
			e := newDeployEnv(t, old)
			if out, err := e.sshd.Command(context.Background(), "command", "-v", "socketpipe").Output(); err != nil {
				t.Fatalf("the fake old socketpipe is not on the remote PATH: %v %s", err, out)
			}
			theirs := fmt.Sprintf("protocol %d", protocol)
			r := e.mustRun()
			t.Logf("%s on the remote PATH:\n%s", theirs, r.stderr)
			if !uploaded(r) || !strings.Contains(r.stderr, theirs) {
				t.Fatalf("a remote socketpipe of %s did not lead to a deployment:\n%s", theirs, r.stderr)
			}
			e.checkCopy()
			if r := e.mustRun(); uploaded(r) || strings.Contains(r.stderr, theirs) {
				t.Fatalf("the next run did not use the cached copy first:\n%s", r.stderr)
			}
			r = e.run("--no-deploy")
			both := fmt.Sprintf("speaks protocol %d, remote socketpipe 0.0.1 speaks protocol %d", wire.Protocol, protocol)
			if r.code != 2 || !strings.Contains(r.stderr, "version mismatch") || !strings.Contains(r.stderr, both) {
				t.Fatalf("--no-deploy with an old remote socketpipe: exit %d, want 2 and %q\n%s", r.code, both, r.stderr)
			}
		})
	}
}

// BenchmarkDeployStartup measures the start-up cost of a remote half that is installed on the
// remote PATH, cached from an earlier deployment, or deployed by this very run (the cache is
// emptied before each of those runs), with a one-word transfer. The baseline is OpenSSH
// streaming the binary into `cat >/dev/null`, the floor for an upload. Run the cases
// interleaved for comparable numbers: go test -run '^$' -bench DeployStartup -count 5.
func BenchmarkDeployStartup(b *testing.B) {
	installed := newDeployEnv(b, filepath.Dir(filepath.Join(harness.BuildSocketpipe(b), "socketpipe")))
	e := newDeployEnv(b)
	b.Run("installed", func(b *testing.B) {
		for b.Loop() {
			installed.mustRunB(b)
		}
	})
	b.Run("cached", func(b *testing.B) {
		e.mustRunB(b)
		for b.Loop() {
			if uploaded(e.mustRunB(b)) {
				b.Fatal("a cached run uploaded")
			}
		}
	})
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			if err := os.RemoveAll(filepath.Join(e.sshd.Home, ".cache")); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if !uploaded(e.mustRunB(b)) {
				b.Fatal("a first run did not upload")
			}
		}
	})
	b.Run("openssh-cat-binary", func(b *testing.B) {
		for b.Loop() {
			f, err := os.Open(e.bin)
			if err != nil {
				b.Fatal(err)
			}
			cmd := e.sshd.Command(context.Background(), "cat >/dev/null")
			cmd.Stdin = f
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, out)
			}
			f.Close()
		}
	})
}

func (e *deployEnv) mustRunB(b *testing.B) deployResult {
	b.Helper()
	saved := e.t
	e.t = b
	defer func() { e.t = saved }()
	return e.mustRun()
}

// A --remote-path of another protocol is tried first on every run; the cached copy is then
// used rather than uploaded again.
func TestDeployOnVersionMismatchRemotePath(t *testing.T) {
	t.Parallel()
	old := t.TempDir()
	os.Chmod(old, 0o755)
	writeScript(t, old, "socketpipe", oldSocketpipe(t, 99))
	e := newDeployEnv(t)
	path := filepath.Join(old, "socketpipe")
	r := e.mustRun("--remote-path", path)
	if !uploaded(r) || !strings.Contains(r.stderr, "protocol 99") {
		t.Fatalf("--remote-path to a socketpipe of protocol 99 did not lead to a deployment:\n%s", r.stderr)
	}
	id := e.checkCopy()
	r = e.mustRun("--remote-path", path)
	t.Logf("second run:\n%s", r.stderr)
	if uploaded(r) || !strings.Contains(r.stderr, "ran the cached copy of this binary instead") {
		t.Fatalf("the second run did not use the cached copy:\n%s", r.stderr)
	}
	if e.checkCopy() != id {
		t.Fatal("the cached copy changed")
	}
}
