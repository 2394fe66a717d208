package deploy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Every uname -sm that socketpipe deploys to names one Go target, and a binary built for that
// target serves the host; any other is an error naming the host.
func TestTargetOf(t *testing.T) {
	for _, c := range []struct {
		system, machine string
		want            Target
		goarm           string // the GOARM a linux/arm binary needs to serve it
	}{
		{"Linux", "x86_64", Target{"linux", "amd64"}, ""},
		{"Linux", "aarch64", Target{"linux", "arm64"}, ""},
		{"Linux", "armv7l", Target{"linux", "arm"}, ""},
		{"Linux", "armv8l", Target{"linux", "arm"}, ""},
		{"Linux", "armv6l", Target{"linux", "arm"}, "6"},
		{"Linux", "armv5tel", Target{"linux", "arm"}, "5"},
		{"Linux", "i686", Target{"linux", "386"}, ""},
		{"Linux", "i586", Target{"linux", "386"}, ""},
		{"Linux", "i386", Target{"linux", "386"}, ""},
		{"Linux", "riscv64", Target{"linux", "riscv64"}, ""},
		{"Linux", "ppc64le", Target{"linux", "ppc64le"}, ""},
		{"Linux", "s390x", Target{"linux", "s390x"}, ""},
		{"FreeBSD", "amd64", Target{"freebsd", "amd64"}, ""},
		{"FreeBSD", "arm64", Target{"freebsd", "arm64"}, ""},
		{"FreeBSD", "i386", Target{"freebsd", "386"}, ""},
		{"FreeBSD", "armv7", Target{"freebsd", "arm"}, ""},
		{"Darwin", "x86_64", Target{"darwin", "amd64"}, ""},
		{"Darwin", "arm64", Target{"darwin", "arm64"}, ""},
		{"OpenBSD", "amd64", Target{"openbsd", "amd64"}, ""},
		{"OpenBSD", "arm64", Target{"openbsd", "arm64"}, ""},
		{"NetBSD", "amd64", Target{"netbsd", "amd64"}, ""},
		{"DragonFly", "x86_64", Target{"dragonfly", "amd64"}, ""},
	} {
		got, err := TargetOf(c.system, c.machine)
		if err != nil || got != c.want {
			t.Errorf("TargetOf(%s, %s) = %v, %v; want %v", c.system, c.machine, got, err, c.want)
			continue
		}
		d := &Deployment{GOOS: got.GOOS, GOARCH: got.GOARCH, goarm: c.goarm}
		if !d.Serves(c.system, c.machine) {
			t.Errorf("a %v binary (GOARM %q) does not serve %s %s", got, c.goarm, c.system, c.machine)
		}
		if c.goarm != "" {
			d.goarm = "7"
			if d.Serves(c.system, c.machine) {
				t.Errorf("a %v binary built for ARMv7 serves %s %s", got, c.system, c.machine)
			}
		}
	}
	for _, c := range []struct{ system, machine string }{
		{"Linux", "mips"},      // uname -m does not tell the byte order
		{"Linux", "sparc64"},   // no Go port
		{"SunOS", "i86pc"},     // illumos or Solaris, and no architecture
		{"Windows", "x86_64"},  // no POSIX shell
		{"FreeBSD", ""},        // a uname line without a machine
		{"Plan 9", "x86_64"},   // a system with a space
		{"Haiku", "x86_64"},    // no Go port
		{"NetBSD", "evbarm"},   // NetBSD's arm64 and arm both say evbarm
		{"Linux", "loongarch"}, // a near miss
		{"linux", "x86_64"},    // uname -s is capitalized
	} {
		got, err := TargetOf(c.system, c.machine)
		var pe *PlatformError
		if !errors.As(err, &pe) {
			t.Errorf("TargetOf(%s, %s) = %v, %v; want a *PlatformError", c.system, c.machine, got, err)
			continue
		}
		if want := "remote host is " + c.system + "/" + c.machine + ", "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("TargetOf(%s, %s): %q does not start with %q", c.system, c.machine, err, want)
		}
	}
}

func TestServes(t *testing.T) {
	for _, c := range []struct {
		goos, goarch, system, machine string
		ok                            bool
	}{
		{"linux", "amd64", "Linux", "x86_64", true},
		{"linux", "arm64", "Linux", "aarch64", true},
		{"linux", "arm", "Linux", "armv7l", true},
		{"linux", "386", "Linux", "i686", true},
		{"linux", "amd64", "Linux", "aarch64", false},
		{"linux", "amd64", "FreeBSD", "amd64", false},
		{"freebsd", "amd64", "FreeBSD", "amd64", true},
		{"freebsd", "arm64", "FreeBSD", "arm64", true},
		{"darwin", "arm64", "Darwin", "arm64", true},
		{"darwin", "amd64", "Darwin", "arm64", false},
		{"linux", "mips", "Linux", "mips", false},
		{"windows", "amd64", "Windows", "x86_64", false},
	} {
		d := &Deployment{GOOS: c.goos, GOARCH: c.goarch}
		if got := d.Serves(c.system, c.machine); got != c.ok {
			t.Errorf("%s/%s serves %s %s: %v, want %v", c.goos, c.goarch, c.system, c.machine, got, c.ok)
		}
	}
}

// hostUname is uname -s and -m of a host of the running program's own target.
func hostUname(t *testing.T) (system, machine string) {
	t.Helper()
	system, ms := unameSystems[runtime.GOOS], unameMachines[runtime.GOARCH]
	if system == "" || len(ms) == 0 {
		t.Fatalf("no uname for %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	return system, ms[0]
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// For picks the running binary when it serves the host, else the file named for the host's
// target in the directory of cross-built binaries, which must be a Go binary of that target.
func TestFor(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	system, machine := hostUname(t)
	host := Target{runtime.GOOS, runtime.GOARCH}
	dir := t.TempDir()

	self := &Deployment{Name: "prog", Args: "--serve", Version: "1.0"}
	if d, err := self.For(system, machine, dir); err != nil || d != self {
		t.Fatalf("For its own target = %p, %v; want the deployment itself", d, err)
	}

	// A binary of another target (as the test sees it: it runs on this one) takes the build
	// from the directory.
	other := &Deployment{Name: "prog", Args: "--serve", Path: "/opt/prog", Version: "1.0", NoCache: true, GOOS: "plan9", GOARCH: "386"}
	var nb *NoBuildError
	_, err = other.For(system, machine, dir)
	want := filepath.Join(dir, "prog-"+runtime.GOOS+"-"+runtime.GOARCH)
	if !errors.As(err, &nb) || nb.Target != host || nb.Path != want || !strings.Contains(err.Error(), want+" does not exist") ||
		!strings.Contains(err.Error(), "no build for "+host.String()) {
		t.Fatalf("For without the build: %v", err)
	}

	os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755)
	if _, err := other.For(system, machine, dir); !errors.As(err, &nb) || !strings.Contains(err.Error(), "is not a Go binary") {
		t.Fatalf("For with a script in the build's place: %v", err)
	}
	os.Remove(want)
	os.Mkdir(want, 0o755)
	if _, err := other.For(system, machine, dir); !errors.As(err, &nb) || !strings.Contains(err.Error(), "is not a regular file") {
		t.Fatalf("For with a directory in the build's place: %v", err)
	}
	os.Remove(want)

	copyFile(t, exe, want)
	d, err := other.For(system, machine, dir)
	if err != nil {
		t.Fatal(err)
	}
	if d == other || d.Binary != want || d.Target() != host || d.Name != "prog" || d.Args != "--serve" ||
		d.Path != "/opt/prog" || d.Version != "1.0" || !d.NoCache {
		t.Fatalf("For chose %+v", d)
	}
	if err := d.Prepare(); err != nil {
		t.Fatal(err)
	}
	if _, from := d.Key(); from != "its Go build ID" {
		t.Fatalf("the chosen build's cache key comes from %s", from)
	}

	// A build under another target's name is refused.
	wrong := Target{"linux", "arm64"}
	if host == wrong {
		wrong = Target{"linux", "amd64"}
	}
	misnamed := filepath.Join(dir, "prog-"+wrong.GOOS+"-"+wrong.GOARCH)
	copyFile(t, exe, misnamed)
	_, err = other.For("Linux", unameMachines[wrong.GOARCH][0], dir)
	if !errors.As(err, &nb) || nb.Target != wrong || !strings.Contains(err.Error(), misnamed+" is built for "+host.String()) {
		t.Fatalf("For with a misnamed build: %v", err)
	}

	var pe *PlatformError
	if _, err := other.For("Windows", "x86_64", dir); !errors.As(err, &pe) || !strings.Contains(err.Error(), "Windows/x86_64") {
		t.Fatalf("For a host no build serves: %v", err)
	}
}

// A linux/arm build serves the ARM hosts its GOARM allows, read from the file.
func TestForARM(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.22\n"), 0o644)
	build := filepath.Join(dir, "prog-linux-arm")
	cmd := exec.Command("go", "build", "-o", build, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm", "GOARM=7", "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for linux/arm: %v\n%s", err, out)
	}
	d := &Deployment{Name: "prog", GOOS: "plan9", GOARCH: "386"}
	got, err := d.For("Linux", "armv7l", dir)
	if err != nil || got.Binary != build || got.goarm != "7" {
		t.Fatalf("For an ARMv7 host: %+v, %v", got, err)
	}
	var nb *NoBuildError
	_, err = d.For("Linux", "armv6l", dir)
	if !errors.As(err, &nb) || nb.Target != (Target{"linux", "arm"}) || !strings.Contains(err.Error(), build+" is built with GOARM=7, which does not run on armv6l") {
		t.Fatalf("For an ARMv6 host with an ARMv7 build: %v", err)
	}
}

// The default directory of builds is ../lib/<name> beside the executable itself, not beside a
// symbolic link to it (PREFIX/bin/socketpipe may link into a package's own tree).
func TestDefaultBuildDir(t *testing.T) {
	if os.Getenv("DEPLOY_TEST_PRINT_BUILD_DIR") == "1" {
		dir, err := DefaultBuildDir("prog")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(dir)
		os.Exit(0)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real, link := filepath.Join(tmp, "pkg", "bin"), filepath.Join(tmp, "usr", "bin")
	os.MkdirAll(real, 0o755)
	os.MkdirAll(link, 0o755)
	copyFile(t, exe, filepath.Join(real, "prog"))
	if err := os.Symlink(filepath.Join(real, "prog"), filepath.Join(link, "prog")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(link, "prog"), "-test.run=^TestDefaultBuildDir$")
	cmd.Env = append(os.Environ(), "DEPLOY_TEST_PRINT_BUILD_DIR=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), filepath.Join(tmp, "pkg", "lib", "prog"); got != want {
		t.Fatalf("DefaultBuildDir = %q, want %q", got, want)
	}
}

// The hint for a missing build names the make command that builds it.
func TestBuildCommand(t *testing.T) {
	for _, c := range []struct {
		t       Target
		machine string
		want    string
	}{
		{Target{"linux", "arm64"}, "aarch64", "make build-all"},
		{Target{"darwin", "arm64"}, "arm64", "make build-all"},
		{Target{"netbsd", "amd64"}, "amd64", "make build-all"},
		{Target{"linux", "arm"}, "armv7l", "make build-all"},
		{Target{"linux", "arm"}, "armv6l", "GOOS=linux GOARCH=arm GOARM=6 make build"},
		{Target{"linux", "arm"}, "armv5tel", "GOOS=linux GOARCH=arm GOARM=5 make build"},
		{Target{"linux", "ppc64le"}, "ppc64le", "GOOS=linux GOARCH=ppc64le make build"},
		{Target{"openbsd", "arm64"}, "arm64", "GOOS=openbsd GOARCH=arm64 make build"},
	} {
		if got := BuildCommand(c.t, c.machine); got != c.want {
			t.Errorf("BuildCommand(%v, %s) = %q, want %q", c.t, c.machine, got, c.want)
		}
	}
}

// BuildAll, which the hint for a missing build relies on, is the set make build-all builds
// and make install and make dist ship.
func TestBuildAllIsTheMakefiles(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\nTARGETS := ")
	if !ok {
		t.Fatal("the Makefile sets no TARGETS")
	}
	var words []string
	for _, line := range strings.Split(rest, "\n") {
		words = append(words, strings.Fields(strings.TrimSuffix(line, "\\"))...)
		if !strings.HasSuffix(line, "\\") {
			break
		}
	}
	var want []string
	for _, tg := range BuildAll {
		want = append(want, tg.String())
	}
	if strings.Join(words, " ") != strings.Join(want, " ") {
		t.Fatalf("the Makefile's TARGETS are %q, BuildAll %q", words, want)
	}
}
