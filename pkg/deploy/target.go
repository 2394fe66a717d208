package deploy

import (
	debugbuildinfo "debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	buildinfo "runtime/debug"
	"slices"
)

// A Target is what a Go binary is built for: "linux/arm64".
type Target struct {
	GOOS, GOARCH string
}

func (t Target) String() string { return t.GOOS + "/" + t.GOARCH }

// unameSystems is uname -s for each GOOS that has a POSIX shell to deploy through.
var unameSystems = map[string]string{
	"linux": "Linux", "darwin": "Darwin", "freebsd": "FreeBSD", "openbsd": "OpenBSD",
	"netbsd": "NetBSD", "dragonfly": "DragonFly", "illumos": "SunOS", "solaris": "SunOS",
}

// unameMachines is uname -m for each GOARCH (Linux and the BSDs name some differently).
// mips is left out: uname -m does not tell its byte order.
var unameMachines = map[string][]string{
	"amd64":   {"x86_64", "amd64"},
	"386":     {"i686", "i586", "i486", "i386"},
	"arm64":   {"aarch64", "arm64"},
	"arm":     {"armv7l", "armv8l", "armv7"},
	"riscv64": {"riscv64"},
	"ppc64le": {"ppc64le"},
	"ppc64":   {"ppc64"},
	"s390x":   {"s390x"},
	"loong64": {"loongarch64"},
}

// Older ARM cores: a binary built with GOARM=6 (or 5) runs on them too.
var (
	armv6 = []string{"armv6l", "armv6"}
	armv5 = []string{"armv5tel", "armv5tejl"}
)

// TargetOf returns the target whose binaries run on a host whose uname -s and uname -m are
// system and machine, or a *PlatformError when there is none to deploy: a system without a
// POSIX shell, or an architecture uname does not name unambiguously. An ARMv6 or ARMv5 host
// is linux/arm, whose binary must be built with GOARM=6 or 5 to run there (Serves tells).
func TargetOf(system, machine string) (Target, error) {
	var t Target
	for goos, sys := range unameSystems {
		// SunOS is illumos or Solaris, which uname -sm does not tell apart.
		if sys == system && system != "SunOS" {
			t.GOOS = goos
		}
	}
	for goarch, ms := range unameMachines {
		if slices.Contains(ms, machine) {
			t.GOARCH = goarch
		}
	}
	if slices.Contains(armv6, machine) || slices.Contains(armv5, machine) {
		t.GOARCH = "arm"
	}
	if t.GOOS == "" || t.GOARCH == "" {
		return Target{}, &PlatformError{System: system, Machine: machine}
	}
	return t, nil
}

// PlatformError reports a remote host whose system or architecture the binary cannot serve;
// GOOS and GOARCH are empty when no Go target runs there (TargetOf).
type PlatformError struct {
	System, Machine string // the remote host's uname -s and -m
	GOOS, GOARCH    string // what the binary runs on
}

func (e *PlatformError) Error() string {
	if e.GOOS == "" {
		return fmt.Sprintf("remote host is %s/%s, a system or architecture that no build can be deployed to", e.System, e.Machine)
	}
	return fmt.Sprintf("remote host is %s/%s, this binary is %s/%s", e.System, e.Machine, e.GOOS, e.GOARCH)
}

// NoBuildError reports a target for which the directory of cross-built binaries holds none.
type NoBuildError struct {
	System, Machine string // the remote host's uname -s and -m
	Target          Target // what it needs
	Path            string // the file looked for
	Err             error  // why it cannot be used
}

func (e *NoBuildError) Error() string {
	return fmt.Sprintf("remote host is %s/%s, and there is no build for %s to deploy: %v", e.System, e.Machine, e.Target, e.Err)
}

func (e *NoBuildError) Unwrap() error { return e.Err }

// BuildName is the file name of Name's binary for t in a directory of cross-built binaries:
// "socketpipe-linux-arm64".
func (d *Deployment) BuildName(t Target) string { return d.Name + "-" + t.GOOS + "-" + t.GOARCH }

// DefaultBuildDir is where the cross-built binaries of the program named name are by default:
// ../lib/<name> beside the running executable, with symbolic links resolved, as `make install`
// puts them (PREFIX/bin/name and PREFIX/lib/name/name-goos-goarch).
func DefaultBuildDir(name string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the running binary: %w", err)
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	return filepath.Join(filepath.Dir(exe), "..", "lib", name), nil
}

// For returns the deployment for a remote host whose uname -s and -m are system and machine:
// d itself when its binary serves that host, else a deployment of d's program (same Name,
// Args, Path, Version and NoCache) whose Binary is BuildName(target) in dir, "" meaning
// DefaultBuildDir. That file must be a Go binary built for the target (for an ARMv6 host,
// with GOARM=6). The errors are a *PlatformError for a host no build serves, a *NoBuildError
// for a target without a usable file in dir.
func (d *Deployment) For(system, machine, dir string) (*Deployment, error) {
	if d.Serves(system, machine) {
		return d, nil
	}
	t, err := TargetOf(system, machine)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		if dir, err = DefaultBuildDir(d.Name); err != nil {
			return nil, &NoBuildError{System: system, Machine: machine, Target: t, Err: err}
		}
	}
	path := filepath.Join(dir, d.BuildName(t))
	noBuild := func(err error) error {
		return &NoBuildError{System: system, Machine: machine, Target: t, Path: path, Err: err}
	}
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%s does not exist", path)
		}
		return nil, noBuild(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, noBuild(fmt.Errorf("%s is not a regular file", path))
	}
	bi, err := debugbuildinfo.ReadFile(path)
	if err != nil {
		return nil, noBuild(fmt.Errorf("%s is not a Go binary: %w", path, err))
	}
	if got := buildTarget(bi.Settings); got != t {
		return nil, noBuild(fmt.Errorf("%s is built for %s", path, got))
	}
	nd := &Deployment{Name: d.Name, Args: d.Args, Path: d.Path, Version: d.Version, NoCache: d.NoCache,
		Binary: path, GOOS: t.GOOS, GOARCH: t.GOARCH, goarm: setting(bi.Settings, "GOARM")}
	if !nd.Serves(system, machine) {
		// An ARMv6 host and a build for ARMv7: the only target that serves some of its hosts.
		return nil, noBuild(fmt.Errorf("%s is built with GOARM=%s, which does not run on %s", path, nd.goarm, machine))
	}
	return nd, nil
}

// buildTarget is the GOOS and GOARCH a binary's build settings name.
func buildTarget(s []buildinfo.BuildSetting) Target {
	return Target{GOOS: setting(s, "GOOS"), GOARCH: setting(s, "GOARCH")}
}

func setting(s []buildinfo.BuildSetting, key string) string {
	for _, kv := range s {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

func (d *Deployment) goos() string {
	if d.GOOS != "" {
		return d.GOOS
	}
	return runtime.GOOS
}

func (d *Deployment) goarch() string {
	if d.GOARCH != "" {
		return d.GOARCH
	}
	return runtime.GOARCH
}

// machines is the uname -m values the binary runs on; for arm, what its GOARM allows (that of
// the running program, or of the file For chose).
func (d *Deployment) machines() []string {
	ms := unameMachines[d.goarch()]
	if d.goarch() != "arm" {
		return ms
	}
	goarm := d.goarm
	if d.GOARCH == "" {
		if bi, ok := buildinfo.ReadBuildInfo(); ok {
			goarm = setting(bi.Settings, "GOARM")
		}
	}
	// GOARM is "7", or with a floating-point suffix, "6,softfloat".
	if goarm != "" && goarm[0] <= '6' {
		ms = append(slices.Clone(ms), armv6...)
		if goarm[0] == '5' {
			ms = append(ms, armv5...)
		}
	}
	return ms
}

// Serves reports whether the binary runs on a host whose uname -s and -m are system and machine.
func (d *Deployment) Serves(system, machine string) bool {
	return unameSystems[d.goos()] == system && slices.Contains(d.machines(), machine)
}

// PlatformError returns the error for a remote host the binary does not serve.
func (d *Deployment) PlatformError(m *Missing) *PlatformError {
	return &PlatformError{System: m.System, Machine: m.Machine, GOOS: d.goos(), GOARCH: d.goarch()}
}

// Target is what the binary runs on.
func (d *Deployment) Target() Target { return Target{GOOS: d.goos(), GOARCH: d.goarch()} }

// BuildCommand is how a checkout of the program builds its binary for t: `make build-all`
// for the targets it makes, GOOS=... GOARCH=... make build for the others (bin/<Name>).
func BuildCommand(t Target, machine string) string {
	if slices.Contains(BuildAll, t) && !slices.Contains(armv6, machine) && !slices.Contains(armv5, machine) {
		return "make build-all"
	}
	env := "GOOS=" + t.GOOS + " GOARCH=" + t.GOARCH
	switch {
	case slices.Contains(armv6, machine):
		env += " GOARM=6"
	case slices.Contains(armv5, machine):
		env += " GOARM=5"
	}
	return env + " make build"
}

// BuildAll is the targets `make build-all` builds, each into bin/<name>-<goos>-<goarch>.
var BuildAll = []Target{
	{"linux", "amd64"}, {"linux", "arm64"}, {"linux", "arm"}, {"linux", "386"}, {"linux", "riscv64"},
	{"freebsd", "amd64"}, {"freebsd", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"openbsd", "amd64"},
	{"netbsd", "amd64"},
}
