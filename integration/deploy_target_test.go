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

// The binfmt_misc entry of Debian's qemu-user-static for arm64 Linux binaries.
const (
	binfmtDir   = "/proc/sys/fs/binfmt_misc"
	qemuAarch64 = "/usr/bin/qemu-aarch64-static"
	qemuBinfmt  = "/usr/lib/binfmt.d/qemu-aarch64.conf"
)

// needQemuAarch64 makes arm64 Linux binaries run here through qemu-user-static, as on a
// fresh Debian machine it takes root to: binfmt_misc mounted, qemu-aarch64 registered from
// the package's binfmt.d file and enabled. Each step is skipped when already done.
func needQemuAarch64(t *testing.T) {
	t.Helper()
	harness.Require(t, harness.NeedRoot)
	for _, f := range []string{qemuAarch64, qemuBinfmt} {
		if _, err := os.Stat(f); err != nil {
			testenv.Need(t, "qemu-user-static", fmt.Errorf("%w (install qemu-user-static)", err))
		}
	}
	if _, err := os.Stat(binfmtDir + "/register"); err != nil {
		out, err := exec.Command("mount", "-t", "binfmt_misc", "binfmt_misc", binfmtDir).CombinedOutput()
		// Another test process may have mounted it meanwhile.
		if _, serr := os.Stat(binfmtDir + "/register"); serr != nil {
			testenv.Need(t, "binfmt_misc", fmt.Errorf("mount -t binfmt_misc: %v: %s", err, bytes.TrimSpace(out)))
		}
	}
	entry := filepath.Join(binfmtDir, "qemu-aarch64")
	if _, err := os.Stat(entry); err != nil {
		conf, err := os.ReadFile(qemuBinfmt)
		if err != nil {
			t.Fatal(err)
		}
		var line []byte
		for _, l := range bytes.Split(conf, []byte("\n")) {
			if l = bytes.TrimSpace(l); len(l) > 0 && l[0] != '#' && l[0] != ';' {
				line = l
				break
			}
		}
		werr := os.WriteFile(filepath.Join(binfmtDir, "register"), line, 0)
		if _, serr := os.Stat(entry); serr != nil {
			testenv.Need(t, "binfmt_misc", fmt.Errorf("registering qemu-aarch64 from %s: %v", qemuBinfmt, werr))
		}
	}
	if b, err := os.ReadFile(entry); err != nil || !bytes.HasPrefix(b, []byte("enabled")) {
		if err := os.WriteFile(entry, []byte("1"), 0); err != nil {
			testenv.Need(t, "binfmt_misc", fmt.Errorf("enabling qemu-aarch64: %v", err))
		}
	}
}

// A host whose uname says Linux aarch64 and that has no socketpipe gets the arm64 build from
// --deploy-dir, which runs there under qemu and carries the data byte for byte; the next run
// starts the cached arm64 copy without uploading again.
func TestDeployForeignArchitectureUnderQemu(t *testing.T) {
	t.Parallel()
	needQemuAarch64(t)
	arm64 := filepath.Join(harness.BuildSocketpipeFor(t, "linux", "arm64"), "socketpipe")
	if f, err := elf.Open(arm64); err != nil || f.Machine != elf.EM_AARCH64 {
		t.Fatalf("the linux/arm64 build %s is not an arm64 ELF file: %v", arm64, err)
	} else {
		f.Close()
	}
	// binfmt_misc runs it here: proof that qemu does, before the host needs it to.
	if out, err := exec.Command(arm64, "--version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "socketpipe ") {
		t.Fatalf("the arm64 build does not run here under qemu: %v: %s", err, out)
	}
	builds := t.TempDir()
	if err := os.Symlink(arm64, filepath.Join(builds, "socketpipe-linux-arm64")); err != nil {
		t.Fatal(err)
	}

	fake := t.TempDir()
	os.Chmod(fake, 0o755)
	fakeUname(t, fake, "Linux", "aarch64")
	e := newDeployEnv(t, fake)
	cache := e.cacheOf(arm64)

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
	if r.code != 0 || !uploaded(r) || !strings.Contains(r.stderr, "the linux/arm64 build "+filepath.Join(builds, "socketpipe-linux-arm64")) {
		t.Fatalf("socketpipe exited %d; want 0, having uploaded the linux/arm64 build\nstderr:\n%s", r.code, r.stderr)
	}
	if !bytes.Equal([]byte(r.stdout), data) {
		t.Fatalf("the remote cat under qemu returned %d bytes, not the %d sent byte for byte", len(r.stdout), len(data))
	}
	want, _ := os.ReadFile(arm64)
	if got, err := os.ReadFile(filepath.Join(cache, "socketpipe")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the cache %s does not hold the arm64 build byte for byte (%d bytes, %v)", cache, len(got), err)
	}
	if _, err := os.Stat(e.cache); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the client's own amd64 binary is cached too: %v", err)
	}

	// The remote command is the remote half's child: its parent runs in qemu.
	r = e.runArgv(ctx, append([]string{"-v", "--deploy-dir", builds, "-o", "{", "cat", "}"},
		e.login("-r", "{", "sh", "-c", `readlink /proc/$PPID/exe; tr '\0' ' ' </proc/$PPID/cmdline`, "}")...)...)
	t.Logf("second run, %v:\n%s", r.took, r.stderr)
	if r.code != 0 || uploaded(r) {
		t.Fatalf("the second run exited %d, uploaded %v; want 0 and the cached copy run\nstderr:\n%s", r.code, uploaded(r), r.stderr)
	}
	exe, cmdline, _ := strings.Cut(r.stdout, "\n")
	if filepath.Base(exe) != filepath.Base(qemuAarch64) || !strings.Contains(cmdline, filepath.Join(cache, "socketpipe")+" --serve") {
		t.Fatalf("the remote half is %q running %q; want %s running the cached arm64 copy", exe, cmdline, qemuAarch64)
	}
}
