//go:build linux

package integration

// Self-deploy to a remote host of another system or architecture: the client uploads the
// build for the host's target from a directory of cross-built binaries (--deploy-dir, by
// default ../lib/socketpipe beside the client), and says which build is missing and how to
// make it when there is none.

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
	"github.com/socketpipe/socketpipe/internal/testenv"
)

// fakeUname writes a uname into dir that reports system and machine for -s, -m and -sm (as
// the start command and the install script ask) and is the real one otherwise.
func fakeUname(t *testing.T, dir, system, machine string) {
	t.Helper()
	writeScript(t, dir, "uname", fmt.Sprintf(`case "$*" in -sm) echo %q;; -s) echo %q;; -m) echo %q;; *) exec /bin/uname "$@";; esac`+"\n",
		system+" "+machine, system, machine))
}

// A host that no build here serves: an error naming its target and how to build for it, and
// nothing written on the host.
func TestDeployOtherArchitecture(t *testing.T) {
	t.Parallel()
	fake := t.TempDir()
	os.Chmod(fake, 0o755)
	fakeUname(t, fake, "FreeBSD", "arm64")
	e := newDeployEnv(t, fake)
	empty := t.TempDir()
	defaultDir := filepath.Join(filepath.Dir(e.bin), "..", "lib", "socketpipe")
	for _, c := range []struct {
		name, system, machine string
		extra                 []string
		want                  []string // lines of stderr, or their starts
	}{
		{"FreeBSD/arm64 from the default directory", "FreeBSD", "arm64", nil, []string{
			"socketpipe: error: remote host is FreeBSD/arm64, and there is no build for freebsd/arm64 to deploy: " + filepath.Clean(defaultDir) + "/socketpipe-freebsd-arm64 does not exist\n",
			"socketpipe: hint: build it with `make build-all` in socketpipe's source tree and put bin/socketpipe-freebsd-arm64 in " + filepath.Clean(defaultDir) + " ",
			"--deploy-dir", "--remote-path",
		}},
		{"Linux/ppc64le from --deploy-dir", "Linux", "ppc64le", []string{"--deploy-dir", empty}, []string{
			"socketpipe: error: remote host is Linux/ppc64le, and there is no build for linux/ppc64le to deploy: " + empty + "/socketpipe-linux-ppc64le does not exist\n",
			"socketpipe: hint: build it with `GOOS=linux GOARCH=ppc64le make build` in socketpipe's source tree and copy bin/socketpipe to socketpipe-linux-ppc64le in " + empty + " ",
		}},
		{"Linux/mips, which no build serves", "Linux", "mips", nil, []string{
			"socketpipe: error: remote host is Linux/mips, a system or architecture that no build can be deployed to\n",
			"socketpipe: hint: install socketpipe built for Linux/mips on the remote host", "--remote-path",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fakeUname(t, fake, c.system, c.machine)
			r := e.run(c.extra...)
			t.Logf("%s/%s:\n%s", c.system, c.machine, r.stderr)
			if r.code != 2 {
				t.Fatalf("a %s/%s remote exited %d, want 2\nstderr:\n%s", c.system, c.machine, r.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if uploaded(r) {
				t.Fatal("uploaded to a host of another architecture")
			}
			if ents, _ := os.ReadDir(e.sshd.Home); len(ents) != 0 {
				t.Fatalf("the remote home holds %v after a refused deployment, want nothing", ents)
			}
		})
	}
}

// binfmt_misc, where Debian's qemu-user-static registers its emulators.
const binfmtDir = "/proc/sys/fs/binfmt_misc"

// needQemu makes Linux binaries of qemu's architecture cpu (aarch64, riscv64, arm) run here
// through qemu-user-static, as on a fresh Debian machine it takes root to: binfmt_misc
// mounted, qemu-<cpu> registered from the package's binfmt.d file and enabled. Each step is
// skipped when already done. It returns the emulator's path.
func needQemu(t *testing.T, cpu string) string {
	t.Helper()
	harness.Require(t, harness.NeedRoot)
	qemu, conf := "/usr/bin/qemu-"+cpu+"-static", "/usr/lib/binfmt.d/qemu-"+cpu+".conf"
	for _, f := range []string{qemu, conf} {
		if _, err := os.Stat(f); err != nil {
			testenv.Need(t, "qemu-user-static", fmt.Errorf("%w (install qemu-user-static)", err))
		}
	}
	if _, err := os.Stat(binfmtDir + "/register"); err != nil {
		out, err := exec.Command("mount", "-t", "binfmt_misc", "binfmt_misc", binfmtDir).CombinedOutput()
		// Another test may have mounted it meanwhile.
		if _, serr := os.Stat(binfmtDir + "/register"); serr != nil {
			testenv.Need(t, "binfmt_misc", fmt.Errorf("mount -t binfmt_misc: %v: %s", err, bytes.TrimSpace(out)))
		}
	}
	entry := filepath.Join(binfmtDir, "qemu-"+cpu)
	if _, err := os.Stat(entry); err != nil {
		b, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		var line []byte
		for _, l := range bytes.Split(b, []byte("\n")) {
			if l = bytes.TrimSpace(l); len(l) > 0 && l[0] != '#' && l[0] != ';' {
				line = l
				break
			}
		}
		werr := os.WriteFile(filepath.Join(binfmtDir, "register"), line, 0)
		if _, serr := os.Stat(entry); serr != nil {
			testenv.Need(t, "binfmt_misc", fmt.Errorf("registering qemu-%s from %s: %v", cpu, conf, werr))
		}
	}
	if b, err := os.ReadFile(entry); err != nil || !bytes.HasPrefix(b, []byte("enabled")) {
		if err := os.WriteFile(entry, []byte("1"), 0); err != nil {
			testenv.Need(t, "binfmt_misc", fmt.Errorf("enabling qemu-%s: %v", cpu, err))
		}
	}
	return qemu
}

// A host whose uname names another architecture and that has no socketpipe gets that
// target's build from --deploy-dir, which runs there (under qemu, or for 386 on the amd64
// kernel itself) and carries the data byte for byte; the next run starts the cached copy
// without uploading again.
func TestDeployForeignArchitecture(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		goarch, machine string
		cpu             string // qemu's name of the architecture; "" runs natively
		elf             elf.Machine
	}{
		{"arm64", "aarch64", "aarch64", elf.EM_AARCH64},
		{"arm", "armv7l", "arm", elf.EM_ARM},
		{"riscv64", "riscv64", "riscv64", elf.EM_RISCV},
		{"386", "i686", "", elf.EM_386},
	} {
		t.Run("linux/"+c.goarch, func(t *testing.T) {
			t.Parallel()
			qemu := ""
			if c.cpu != "" {
				qemu = needQemu(t, c.cpu)
			} else if runtime.GOARCH != "amd64" {
				testenv.Need(t, "an amd64 machine", fmt.Errorf("a linux/%s binary runs natively on amd64 only, not %s", c.goarch, runtime.GOARCH))
			}
			deployForeign(t, c.goarch, c.machine, qemu, c.elf)
		})
	}
}

// deployForeign deploys the linux/goarch build to a host whose uname -m says machine; qemu is
// the emulator it runs under there, "" for none.
func deployForeign(t *testing.T, goarch, machine, qemu string, em elf.Machine) {
	build := filepath.Join(harness.BuildSocketpipeFor(t, "linux", goarch), "socketpipe")
	if f, err := elf.Open(build); err != nil || f.Machine != em {
		t.Fatalf("the linux/%s build %s is not an ELF file for %v: %v", goarch, build, em, err)
	} else {
		f.Close()
	}
	// It runs here (through binfmt_misc for qemu), before the host needs it to.
	if out, err := exec.Command(build, "--version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "socketpipe ") {
		t.Fatalf("the linux/%s build does not run here: %v: %s", goarch, err, out)
	}
	builds := t.TempDir()
	name := "socketpipe-linux-" + goarch
	if err := os.Symlink(build, filepath.Join(builds, name)); err != nil {
		t.Fatal(err)
	}

	fake := t.TempDir()
	os.Chmod(fake, 0o755)
	fakeUname(t, fake, "Linux", machine)
	e := newDeployEnv(t, fake)
	cache := e.cacheOf(build)

	data := make([]byte, 8<<20)
	rand.Read(data)
	in := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := e.runArgv(ctx, append([]string{"-v", "--deploy-dir", builds, "-i", "{", "cat", in, "}"}, e.login("-r", "{", "cat", "}")...)...)
	t.Logf("first run, %v:\n%s", r.took, r.stderr)
	if r.code != 0 || !uploaded(r) || !strings.Contains(r.stderr, "the linux/"+goarch+" build "+filepath.Join(builds, name)) {
		t.Fatalf("socketpipe exited %d; want 0, having uploaded the linux/%s build\nstderr:\n%s", r.code, goarch, r.stderr)
	}
	if !bytes.Equal([]byte(r.stdout), data) {
		t.Fatalf("the remote cat returned %d bytes, not the %d sent byte for byte", len(r.stdout), len(data))
	}
	want, _ := os.ReadFile(build)
	if got, err := os.ReadFile(filepath.Join(cache, "socketpipe")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the cache %s does not hold the linux/%s build byte for byte (%d bytes, %v)", cache, goarch, len(got), err)
	}
	if _, err := os.Stat(e.cache); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the client's own binary is cached too: %v", err)
	}

	// The remote command is the remote half's child: its parent runs in qemu (or is the copy).
	r = e.runArgv(ctx, append([]string{"-v", "--deploy-dir", builds, "-o", "{", "cat", "}"},
		e.login("-r", "{", "sh", "-c", `readlink /proc/$PPID/exe; tr '\0' ' ' </proc/$PPID/cmdline`, "}")...)...)
	t.Logf("second run, %v:\n%s", r.took, r.stderr)
	if r.code != 0 || uploaded(r) {
		t.Fatalf("the second run exited %d, uploaded %v; want 0 and the cached copy run\nstderr:\n%s", r.code, uploaded(r), r.stderr)
	}
	exe, cmdline, _ := strings.Cut(r.stdout, "\n")
	copyPath := filepath.Join(cache, "socketpipe")
	wantExe := qemu
	if qemu == "" {
		wantExe = copyPath
	}
	if exe != wantExe || !strings.Contains(cmdline, copyPath+" --serve") {
		t.Fatalf("the remote half is %q running %q; want %s running the cached copy", exe, cmdline, wantExe)
	}
}
