package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// BuildFlagsEnv names an environment variable whose words are added to every `go build` the
// harness runs, e.g. SOCKETPIPE_TEST_BUILDFLAGS=-race or =-cover.
const BuildFlagsEnv = "SOCKETPIPE_TEST_BUILDFLAGS"

var builds struct {
	mu   sync.Mutex
	root string            // process-wide output directory, removed by Main
	next int               // numbers the per-package subdirectories of root
	m    map[string]*build // by absolute package directory and added environment
}

type build struct {
	once sync.Once
	dir  string
	err  error
}

// buildDirPrefix starts the name of each process's build directory in os.TempDir(), followed by
// the owner's pid and start time, so that a later process can remove the directories of owners
// that ended without Main (no TestMain, or killed by go test -timeout).
const buildDirPrefix = "socketpipe-harness-build-"

// sweepBuilds removes the build directories whose owning process is gone.
func sweepBuilds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), buildDirPrefix+"*-*-*"))
	for _, d := range dirs {
		f := strings.SplitN(strings.TrimPrefix(filepath.Base(d), buildDirPrefix), "-", 3)
		pid, err := strconv.Atoi(f[0])
		if err != nil || len(f) != 3 || f[1] == "" {
			continue
		}
		if startTime(pid) != f[1] {
			os.RemoveAll(d)
		}
	}
}

// Main runs the tests and then removes what the harness kept for the whole process (built
// binaries; without Main they are removed by the next test binary that builds). Call it from
// TestMain:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	builds.mu.Lock()
	if builds.root != "" {
		os.RemoveAll(builds.root)
	}
	builds.mu.Unlock()
	os.Exit(code)
}

// ModuleRoot returns the directory holding the go.mod that governs the current directory,
// found by walking up from it.
func ModuleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("harness: %w", err)
	}
	return moduleRootOf(wd)
}

func moduleRootOf(dir string) (string, error) {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("harness: no go.mod in %s or any parent", dir)
		}
		d = parent
	}
}

// BuildSocketpipe builds ./cmd/socketpipe of this module once per test binary and returns the
// directory holding the `socketpipe` binary, ready to be put on PATH (see SSHDOptions.PathDirs).
func BuildSocketpipe(t testing.TB) string {
	t.Helper()
	return BuildMain(t, "./cmd/socketpipe")
}

// BuildSocketpipeFor is BuildSocketpipe for another system and architecture (GOOS, GOARCH),
// for deploying to a host of that target; Go's build cache keeps it between test runs.
func BuildSocketpipeFor(t testing.TB, goos, goarch string) string {
	t.Helper()
	return buildMainFor(t, "./cmd/socketpipe", "GOOS="+goos, "GOARCH="+goarch)
}

// BuildMain builds the main package pkg once per test binary and returns the directory that
// holds the binary, named after the package directory. pkg is a directory: relative paths are
// taken from the module root of the current directory; an absolute path may belong to any module
// (it is built from its own module root). A failed build fails every test that asks for it.
func BuildMain(t testing.TB, pkg string) string {
	t.Helper()
	return buildMainFor(t, pkg)
}

// buildMainFor is BuildMain with env (GOOS=..., GOARCH=...) added to the build's environment.
func buildMainFor(t testing.TB, pkg string, env ...string) string {
	t.Helper()
	Require(t, NeedGo)
	dir := pkg
	if !filepath.IsAbs(dir) {
		root, err := ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, dir)
	}
	dir = filepath.Clean(dir)

	builds.mu.Lock()
	if builds.m == nil {
		builds.m = make(map[string]*build)
	}
	key := strings.Join(append([]string{dir}, env...), "\x00")
	b := builds.m[key]
	if b == nil {
		b = new(build)
		builds.m[key] = b
	}
	builds.mu.Unlock()

	b.once.Do(func() { b.dir, b.err = buildMain(dir, env) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

func buildMain(pkgDir string, env []string) (string, error) {
	if _, err := moduleRootOf(pkgDir); err != nil {
		return "", err
	}
	goBin, err := goCommand()
	if err != nil {
		return "", err
	}
	builds.mu.Lock()
	if builds.root == "" {
		sweepBuilds()
		builds.root, err = os.MkdirTemp("", fmt.Sprintf("%s%d-%s-", buildDirPrefix, os.Getpid(), startTime(os.Getpid())))
	}
	root := builds.root
	n := builds.next
	builds.next++
	builds.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("harness: %w", err)
	}
	out := filepath.Join(root, strconv.Itoa(n))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("harness: %w", err)
	}
	// 0755 so the binary can be run by a non-root login user too.
	if err := os.Chmod(root, 0o755); err != nil {
		return "", fmt.Errorf("harness: %w", err)
	}
	// -buildvcs=false: a checkout copied without git, or a CI image without the git binary,
	// must not fail the build; tests do not need the VCS stamp.
	args := []string{"build", "-buildvcs=false", "-o", filepath.Join(out, filepath.Base(pkgDir))}
	args = append(args, strings.Fields(os.Getenv(BuildFlagsEnv))...)
	args = append(args, ".")
	cmd := exec.Command(goBin, args...)
	cmd.Dir = pkgDir
	// Static, as `make build` makes it: what users run, and what self-deploy uploads.
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("harness: go %s in %s: %v\n%s", strings.Join(args, " "), pkgDir, err, output)
	}
	return out, nil
}

// goCommand finds the go command: on PATH, else where .ci/run installs Go.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/local/go/bin/go"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("the go command is not on PATH nor at /usr/local/go/bin/go")
}
