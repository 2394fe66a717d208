package deploy

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/socketpipe/socketpipe/pkg/sshlogin"
)

func TestWatcher(t *testing.T) {
	const stop = "\x00prog-ctl\x00"
	big := strings.Repeat("motd line\n", 1000)
	for _, c := range []struct {
		name, in string
		want     *Missing
	}{
		{"marker", "\x00prog-missing Linux x86_64\t/usr/bin:/bin\n", &Missing{"Linux", "x86_64", "/usr/bin:/bin"}},
		{"after a banner", big + "\x00prog-missing FreeBSD arm64\t/bin\n", &Missing{"FreeBSD", "arm64", "/bin"}},
		{"no newline before the end", "hello\n\x00prog-missing Darwin arm64\t/bin", &Missing{"Darwin", "arm64", "/bin"}},
		{"system with a space", "\x00prog-missing Some OS m68k\t\n", &Missing{"Some OS", "m68k", ""}},
		// The remote host's words reach the terminal escaped, as ssh escapes a server's text.
		{"escape sequences", "\x00prog-missing Linux\x1b]0;x\x07 x86_64\x9b2J\t/bin\x1b[2J:\xff\n",
			&Missing{`Linux\033]0;x\007`, `x86_64\2332J`, `/bin\033[2J:\377`}},
		{"a long PATH", "\x00prog-missing Linux x86_64\t" + strings.Repeat("/x", 4000) + "\n",
			&Missing{"Linux", "x86_64", strings.Repeat("/x", 512) + "..."}},
		{"the program started", "banner\n" + stop + "J\x00\x00\x00\x02{}", nil},
		{"marker in the program's output", stop + "\x00prog-missing Linux x86_64\t/bin\n", nil},
		{"nothing", big, nil},
		{"another program's marker", "\x00other-missing Linux x86_64\t/bin\n", nil},
	} {
		for _, split := range []string{"whole", "bytes"} {
			t.Run(c.name+"/"+split, func(t *testing.T) {
				d := &Deployment{Name: "prog"}
				var r io.Reader = strings.NewReader(c.in)
				if split == "bytes" {
					r = iotest.OneByteReader(r)
				}
				w := d.Watch(r, stop)
				got, err := io.ReadAll(w)
				if err != nil || string(got) != c.in {
					t.Fatalf("the watcher changed the stream: %v", err)
				}
				m := w.Missing()
				if (m == nil) != (c.want == nil) || m != nil && *m != *c.want {
					t.Fatalf("Missing() = %+v, want %+v", m, c.want)
				}
			})
		}
	}
}

// The start marker is removed from the stream when it comes before the program's first bytes,
// and tells the start command ran; output before it is stray.
func TestWatcherStartMarker(t *testing.T) {
	const stop, start = "\x00prog-ctl\x00", "\x00prog-start\n"
	big := strings.Repeat("motd line\n", 200000) // more than the watcher scans
	for _, c := range []struct {
		name, in, out   string
		started, strays bool
	}{
		{"alone", start + stop + "J", stop + "J", true, false},
		{"after a banner", "motd\n" + start + stop + "J", "motd\n" + stop + "J", true, true},
		{"before the missing line", start + "\x00prog-missing Linux x86_64\t/bin\n", "\x00prog-missing Linux x86_64\t/bin\n", true, false},
		{"only once", start + start + stop, start + stop, true, false},
		{"after the program's bytes", stop + start, stop + start, true, false},
		{"a forced command's output", "fatal: unrecognized command\n", "fatal: unrecognized command\n", false, true},
		{"nothing", "", "", false, false},
		{"a prefix of it at the end", "abc\x00prog-sta", "abc\x00prog-sta", false, true},
		{"too far", big + start, big + start, true, true},
	} {
		for _, split := range []string{"whole", "bytes"} {
			t.Run(c.name+"/"+split, func(t *testing.T) {
				d := &Deployment{Name: "prog"}
				var r io.Reader = strings.NewReader(c.in)
				if split == "bytes" {
					r = iotest.OneByteReader(r)
				}
				w := d.Watch(r, stop)
				got, err := io.ReadAll(w)
				if err != nil || string(got) != c.out {
					t.Fatalf("read %q (%v), want %q", trunc(got), err, trunc([]byte(c.out)))
				}
				if isClosed(w.Started()) != c.started || isClosed(w.Stray()) != c.strays || !isClosed(w.Ended()) {
					t.Fatalf("started %v, stray %v, ended %v; want %v, %v, true",
						isClosed(w.Started()), isClosed(w.Stray()), isClosed(w.Ended()), c.started, c.strays)
				}
			})
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func trunc(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// A consumer that stopped reading early: Drain finds the line.
func TestWatcherDrain(t *testing.T) {
	d := &Deployment{Name: "prog"}
	w := d.Watch(strings.NewReader("motd\n\x00prog-missing Linux aarch64\t/bin\n"), "\x00prog-ctl\x00")
	if m := w.Drain(5 * time.Second); m == nil || m.Machine != "aarch64" {
		t.Fatalf("Drain = %+v", m)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	w = d.Watch(pr, "x")
	t0 := time.Now()
	if m := w.Drain(50 * time.Millisecond); m != nil || time.Since(t0) > 5*time.Second {
		t.Fatalf("Drain of a silent stream = %+v after %v", m, time.Since(t0))
	}
}

func FuzzWatcher(f *testing.F) {
	f.Add([]byte("motd\n\x00p-missing Linux x86_64\t/bin\n"), uint8(3))
	f.Add([]byte("\x00p-ctl\x00\x00p-missing A B\t\n"), uint8(1))
	f.Add([]byte("motd\n\x00p-start\n\x00p-ctl\x00J"), uint8(2))
	f.Add([]byte("\x00p-c\x00p-start\ntl\x00"), uint8(4))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		d := &Deployment{Name: "p"}
		whole := d.Watch(bytes.NewReader(in), "\x00p-ctl\x00")
		io.ReadAll(whole)
		parts := d.Watch(&chunkReader{b: in, n: int(chunk%16) + 1}, "\x00p-ctl\x00")
		got, _ := io.ReadAll(parts)
		// The stream is unchanged but for a start marker before the first stop string.
		want, started := in, false
		if i, j := bytes.Index(in, []byte("\x00p-start\n")), bytes.Index(in, []byte("\x00p-ctl\x00")); i >= 0 && (j < 0 || i < j) {
			want, started = append(slices.Clip(in[:i]), in[i+len("\x00p-start\n"):]...), true
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read %q, want %q", got, want)
		}
		if started && !isClosed(parts.Started()) || isClosed(parts.Started()) != isClosed(whole.Started()) {
			t.Fatalf("start marker: want %v, whole %v, in chunks of %d %v", started, isClosed(whole.Started()), chunk%16+1, isClosed(parts.Started()))
		}
		a, b := whole.Missing(), parts.Missing()
		if (a == nil) != (b == nil) || a != nil && *a != *b {
			t.Fatalf("whole %+v, in chunks of %d %+v", a, chunk%16+1, b)
		}
	})
}

type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[n:]
	return n, nil
}

// fakeRemote is a home and a PATH for running the remote scripts with the local sh.
type fakeRemote struct {
	t    *testing.T
	home string
	bin  string // a directory on PATH
	d    *Deployment
}

// newFakeRemote deploys prog, a shell script that says where it ran from.
func newFakeRemote(t *testing.T) *fakeRemote {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Fatal("the remote scripts need sh:", err)
	}
	dir := t.TempDir()
	r := &fakeRemote{t: t, home: filepath.Join(dir, "home"), bin: filepath.Join(dir, "bin")}
	os.Mkdir(r.home, 0o755)
	os.Mkdir(r.bin, 0o755)
	local := filepath.Join(dir, "prog")
	os.WriteFile(local, []byte("#!/bin/sh\necho \"cached copy ran: $*\"\n"), 0o755)
	r.d = &Deployment{Name: "prog", Args: "--serve", Version: "1.0", Binary: local}
	if err := r.d.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := r.d.hash(); err != nil {
		t.Fatal(err)
	}
	if _, from := r.d.Key(); from != "its SHA-256" {
		t.Fatalf("a shell script's cache key comes from %s", from)
	}
	return r
}

// sh runs a remote command line as sshd would, through the login shell.
func (r *fakeRemote) sh(command string, stdin io.Reader) (string, string, error) {
	cmd := exec.Command("sh", "-c", command)
	cmd.Env = []string{"HOME=" + r.home, "PATH=" + r.bin + ":/usr/bin:/bin"}
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (r *fakeRemote) start() string {
	r.t.Helper()
	cmd, err := r.d.StartCommand()
	if err != nil {
		r.t.Fatal(err)
	}
	out, stderr, err := r.sh(cmd, nil)
	if err != nil {
		r.t.Fatalf("start command: %v: %s", err, stderr)
	}
	// The start marker comes first, whatever the start command then finds.
	rest, ok := strings.CutPrefix(out, "\x00prog-start\n")
	if !ok {
		r.t.Fatalf("start command printed %q, not first its start marker", out)
	}
	return rest
}

func (r *fakeRemote) install(stdin io.Reader) (string, string, error) {
	return r.sh(r.d.installScript("tok"), stdin)
}

func (r *fakeRemote) cached() string {
	return filepath.Join(r.home, ".cache", "prog", "1.0-"+hex.EncodeToString(r.d.sum[:8]), "prog")
}

func TestStartAndInstallScripts(t *testing.T) {
	r := newFakeRemote(t)
	if runtime.GOOS != "linux" && runtime.GOOS != "freebsd" && runtime.GOOS != "darwin" {
		t.Fatalf("no uname mapping for %s", runtime.GOOS)
	}

	out := r.start()
	if !strings.HasPrefix(out, "\x00prog-missing ") || !strings.Contains(out, "\t"+r.bin+":") {
		t.Fatalf("start command without the program printed %q", out)
	}

	bin, _ := os.ReadFile(r.d.Binary)
	if _, stderr, err := r.install(bytes.NewReader(bin[:len(bin)-1])); err == nil || !strings.Contains(stderr, "does not have the SHA-256") {
		t.Fatalf("installing a short copy: %v, %q", err, stderr)
	}
	if ents, _ := os.ReadDir(filepath.Dir(r.cached())); len(ents) != 0 {
		t.Fatalf("a failed install left %v", ents)
	}

	out, stderr, err := r.install(bytes.NewReader(bin))
	if err != nil || strings.TrimSpace(out) != r.cached() {
		t.Fatalf("install: %q, %v, %s", out, err, stderr)
	}
	fi, _ := os.Stat(r.cached())
	if fi.Mode().Perm() != 0o700 || fi.ModTime().Year() != 2000 {
		t.Fatalf("installed copy: mode %v, mtime %v", fi.Mode(), fi.ModTime())
	}
	if got := r.start(); got != "cached copy ran: --serve\n" {
		t.Fatalf("start command with a cached copy printed %q", got)
	}
	run, _, err := r.sh(r.d.RunCommand(), nil)
	if err != nil || run != "cached copy ran: --serve\n" {
		t.Fatalf("run command: %q, %v", run, err)
	}
	cacheCmd, err := r.d.CacheCommand()
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := r.sh(cacheCmd, nil); err != nil || got != "cached copy ran: --serve\n" {
		t.Fatalf("cache command: %q, %v", got, err)
	}

	// An installed program on PATH is second to the cached copy of this exact binary.
	os.WriteFile(filepath.Join(r.bin, "prog"), []byte("#!/bin/sh\necho \"installed ran: $*\"\n"), 0o755)
	if got := r.start(); got != "cached copy ran: --serve\n" {
		t.Fatalf("start command with both printed %q", got)
	}

	// Any write to the copy makes it newer than its stamp: it is not run.
	os.WriteFile(r.cached(), []byte("#!/bin/sh\necho corrupt\n"), 0o700)
	if got := r.start(); got != "installed ran: --serve\n" {
		t.Fatalf("start command with a changed copy printed %q", got)
	}
	os.Remove(filepath.Join(r.bin, "prog"))
	if got := r.start(); !strings.HasPrefix(got, "\x00prog-missing ") {
		t.Fatalf("start command with only a changed copy printed %q", got)
	}
	if got, _, _ := r.sh(cacheCmd, nil); !strings.HasPrefix(got, "\x00prog-missing ") {
		t.Fatalf("cache command with a changed copy printed %q", got)
	}

	// An empty copy (a crash before its data reached the disk) is not run either.
	if _, _, err := r.install(bytes.NewReader(bin)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(r.cached(), 0); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.Local)
	os.Chtimes(r.cached(), old, old)
	if got := r.start(); !strings.HasPrefix(got, "\x00prog-missing ") {
		t.Fatalf("start command with an empty copy printed %q", got)
	}

	// --remote-path comes first; NoCache ignores the cache.
	other := filepath.Join(r.home, "other prog")
	os.WriteFile(other, []byte("#!/bin/sh\necho \"other ran: $*\"\n"), 0o755)
	r.d.Path = other
	if got := r.start(); got != "other ran: --serve\n" {
		t.Fatalf("start command with Path printed %q", got)
	}
	r.d.Path = ""
	if _, _, err := r.install(bytes.NewReader(bin)); err != nil {
		t.Fatal(err)
	}
	r.d.NoCache = true
	if got := r.start(); !strings.HasPrefix(got, "\x00prog-missing ") {
		t.Fatalf("start command with NoCache printed %q", got)
	}
}

func TestInstallRefusesOtherPlatform(t *testing.T) {
	r := newFakeRemote(t)
	r.d.GOOS, r.d.GOARCH = "plan9", "amd64"
	out, _, err := r.install(strings.NewReader("data"))
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("install for another platform: %v", err)
	}
	if m := parseMissing([]byte(out), r.d.marker()); m == nil || m.System == "" {
		t.Fatalf("no Missing line: %q", out)
	}
	if _, err := os.Stat(filepath.Join(r.home, ".cache")); err == nil {
		t.Fatal("a refused install created the cache")
	}
}

func TestDirName(t *testing.T) {
	d := &Deployment{Name: "socketpipe", Version: "v1.2.3-4-gabc/dirty x"}
	d.key = "2d711642b726b044"
	want := "${XDG_CACHE_HOME:-$HOME/.cache}/socketpipe/v1.2.3-4-gabc_dirty_x-2d711642b726b044"
	if got := d.Dir(); got != want {
		t.Fatalf("Dir() = %q, want %q", got, want)
	}
}

// The cache key of a Go binary comes from its build ID, as go tool buildid reads it.
func TestGoBuildID(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "buildid", exe).Output()
	if err != nil {
		t.Fatalf("go tool buildid: %v", err)
	}
	if got, want := goBuildID(exe), strings.TrimSpace(string(out)); got != want {
		t.Fatalf("goBuildID = %q, want %q", got, want)
	}
	d := &Deployment{Name: "x", Binary: exe}
	if err := d.Prepare(); err != nil {
		t.Fatal(err)
	}
	if key, from := d.Key(); len(key) != 16 || from != "its Go build ID" {
		t.Fatalf("Key() = %q from %s", key, from)
	}
	if d.size != 0 {
		t.Fatal("Prepare read the whole binary")
	}
}

func TestELFGoNote(t *testing.T) {
	note := func(name string, typ uint32, desc string) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(name)+1))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
		b = binary.LittleEndian.AppendUint32(b, typ)
		b = append(b, name...)
		for len(b)%4 != 0 || len(b) < 12+len(name)+1 {
			b = append(b, 0)
		}
		b = append(b, desc...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	notes := append(note("GNU", 3, "0123456789abcdef0123"), note("Go", 4, "abc/def")...)
	if got := elfGoNote(notes, binary.LittleEndian); got != "abc/def" {
		t.Fatalf("elfGoNote = %q", got)
	}
	if got := elfGoNote(notes[:len(notes)-6], binary.LittleEndian); got != "" {
		t.Fatalf("elfGoNote of a cut note = %q", got)
	}
}

// What the install script and its session say reaches the terminal escaped and cut short:
// the remote error, the installed path, the uname of a host of another platform.
func TestInstalledPrintable(t *testing.T) {
	d := &Deployment{Name: "prog", Version: "1.0"}
	hostile := "\x1b]0;owned\x07\x1b[2J\u009b31m\xff" + strings.Repeat("A", 4000)
	raw := func(what, s string) {
		t.Helper()
		if strings.ContainsAny(s, "\x1b\x07\n") || strings.Contains(s, "\u009b") || !utf8.ValidString(s) || len(s) > 1200 {
			t.Errorf("%s reaches the terminal raw or too long (%d bytes): %q", what, len(s), s)
		}
	}
	_, err := d.installed(nil, "mkdir: "+hostile+"\nsecond line\n", errors.New("exit status 1"), 0)
	var ie *InstallError
	if !errors.As(err, &ie) {
		t.Fatalf("installed = %v, want an InstallError", err)
	}
	raw("the install error", ie.Msg)
	raw("the install error", ie.Error())
	inst, err := d.installed([]byte("noise\n/home/u/.cache/prog/"+hostile+"\n"), "", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw("the installed path", inst.Path)
	if !strings.HasPrefix(inst.Path, `/home/u/.cache/prog/\033]0;owned\007`) {
		t.Errorf("installed path = %q", inst.Path)
	}
	_, err = d.installed([]byte("\x00prog-missing Plan\x1b[2J9 "+hostile+"\t/bin\n"), "", errors.New("exit status 3"), 0)
	var pe *PlatformError
	if !errors.As(err, &pe) {
		t.Fatalf("installed = %v, want a PlatformError", err)
	}
	raw("the platform error", pe.Error())
}

// An install the script refused for an untrusted cache is told apart from one that failed
// otherwise (a full disk, a read-only file system), by the script's own exit status.
func TestInstalledUntrusted(t *testing.T) {
	d := &Deployment{Name: "socketpipe"}
	for _, c := range []struct {
		status    int
		untrusted bool
	}{{exitUntrusted, true}, {1, false}} {
		_, err := d.installed(nil, "/home/u/.cache is writable by other users: not using the cache", &sshlogin.ExitError{Status: c.status}, 0)
		var ie *InstallError
		if !errors.As(err, &ie) || ie.Untrusted != c.untrusted {
			t.Errorf("status %d: %#v, want an InstallError with Untrusted %v", c.status, err, c.untrusted)
		}
	}
}
