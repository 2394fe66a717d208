package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/pkg/sshlogin"
)

// A Deployment is a program that the remote host runs from its PATH when it has it, and
// otherwise from a per-user cache of copies uploaded over the native SSH connection:
//
//	${XDG_CACHE_HOME:-$HOME/.cache}/<Name>/<Version>-<key>/<Name>
//
// The key is 16 hex digits of a SHA-256: of the binary's Go build ID, a hash of the binary's
// content that the Go toolchain computed and that is read from the first few KiB of the file,
// or of the whole binary when it has no build ID. The start command needs the key on every
// run, where hashing a 9 MiB binary would cost 5 to 60 ms and read it all.
//
// Use StartCommand as the Cmd's NativeCommand and read the session's output through Watch.
// When the start command finds nothing to run it prints one line (Missing) instead of
// starting the program; then Install uploads Binary over a new session on the same
// connection, and a Session running RunCommand starts the copy:
//
//	d := &deploy.Deployment{Name: "socketpipe", Args: "--serve", Version: "1.2.0"}
//	go d.Prepare() // find the cache key while logging in
//	cmd := sshlogin.Command(login, "socketpipe --serve")
//	cmd.NativeCommand = d.StartCommand
//	out, _ := cmd.StdoutPipe()
//	w := d.Watch(out, hello)
//	... read w; at its end:
//	if m := w.Drain(time.Second); m != nil && d.Serves(m.System, m.Machine) {
//		_, err := d.Install(ctx, cmd)
//		half, _ := cmd.Session(d.RunCommand())
//		...
//	}
//
// A copy enters the cache only after the remote side has checked its SHA-256: it is written
// to a temporary name in the directory (mode 0700), checked, made executable and renamed into
// place, so a killed upload or a full disk leaves at most a temporary file (removed by a
// later install once it is a day old). After the rename a stamp file <Name>.ok is touched,
// and the copy's modification time is set back to 2000-01-01: the start command runs the copy
// only when it is owned by the user, not empty, and the stamp is newer than it, and only while
// no other user can write to the cache or a directory above it (the install refuses such a
// cache, naming the directory, and the run of the copy just installed checks again). Any later write to the
// copy (truncation, a partial overwrite) makes the copy newer than its stamp, so it is never
// run again and the next run replaces it. Checking the stamp costs a few stat calls, where
// hashing the copy on every start would cost tens of milliseconds.
type Deployment struct {
	Name    string // the program's name on the remote PATH and in the cache: "socketpipe"
	Args    string // its arguments, a shell command line tail: "--serve"
	Path    string // the remote program to try before the cache, instead of Name on the PATH
	Version string // the program's version, part of the cache directory's name

	// Binary is the local file to upload; "" is the running executable.
	Binary string
	// GOOS and GOARCH are what Binary runs on; "" is the running program's.
	GOOS, GOARCH string

	// NoCache runs only an installed program: the start command does not look in the cache.
	NoCache bool

	goarm string // Binary's GOARM, when For chose it

	once    sync.Once
	key     string // the cache key, 16 hex digits
	keyFrom string // what it was computed from
	err     error

	sumOnce sync.Once
	sum     [sha256.Size]byte // of the whole binary, for Install
	size    int64
	sumErr  error
}

// Missing is what the start command reports when it finds nothing to run.
type Missing struct {
	System  string // uname -s: Linux, FreeBSD, Darwin
	Machine string // uname -m: x86_64, aarch64, arm64
	PATH    string // the remote PATH that was searched
}

// Platform is "System/Machine", as the messages show it.
func (m *Missing) Platform() string { return m.System + "/" + m.Machine }

// Installed describes an upload.
type Installed struct {
	Path string        // where the copy is on the remote host
	Size int64         // bytes uploaded
	Took time.Duration // from opening the session to its end
}

// InstallError reports an upload that did not end with a checked copy in the cache.
type InstallError struct {
	Dir string // the cache directory, as the remote shell spells it
	Msg string // what the remote side said
	Err error  // the session's end
	// Untrusted is a cache refused because another user could replace what it holds: a
	// directory of it or above it writable by others, owned by another user, or a link.
	Untrusted bool
}

// exitUntrusted is the install script's status for a cache it refuses to trust.
const exitUntrusted = 4

func (e *InstallError) Error() string {
	msg := e.Msg
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("installing in %s on the remote host failed: %s", e.Dir, msg)
}

func (e *InstallError) Unwrap() error { return e.Err }

var safeName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._+-]*$`)

// Prepare finds the cache key, once; StartCommand and Install call it. Call it early in a
// goroutine to overlap it with the login.
func (d *Deployment) Prepare() error {
	d.once.Do(func() {
		if !safeName.MatchString(d.Name) {
			d.err = fmt.Errorf("deployment name %q is not a plain program name", d.Name)
			return
		}
		path, err := d.binary()
		if err != nil {
			d.err = err
			return
		}
		if id := goBuildID(path); id != "" {
			k := sha256.Sum256([]byte("go build ID " + id))
			d.key, d.keyFrom = hex.EncodeToString(k[:8]), "its Go build ID"
			return
		}
		if d.err = d.hash(); d.err == nil {
			d.key, d.keyFrom = hex.EncodeToString(d.sum[:8]), "its SHA-256"
		}
	})
	return d.err
}

// Key is the cache key after Prepare, and what it was computed from.
func (d *Deployment) Key() (key, from string) { return d.key, d.keyFrom }

// hash reads the whole binary for its SHA-256 and size, once.
func (d *Deployment) hash() error {
	d.sumOnce.Do(func() {
		path, err := d.binary()
		if err != nil {
			d.sumErr = err
			return
		}
		f, err := os.Open(path)
		if err != nil {
			d.sumErr = fmt.Errorf("reading the binary to deploy: %w", err)
			return
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			d.sumErr = fmt.Errorf("reading the binary to deploy: %w", err)
			return
		}
		h.Sum(d.sum[:0])
		d.size = n
	})
	return d.sumErr
}

// goBuildID returns the Go build ID of the executable at path, "" if it has none: from the
// ELF note the Go linker writes, or, in other formats, from the marked string at the start of
// the text. Either is within the first pages of the file.
func goBuildID(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if ef, err := elf.NewFile(f); err == nil {
		for _, p := range ef.Progs {
			if p.Type != elf.PT_NOTE || p.Filesz > 64<<10 {
				continue
			}
			b, err := io.ReadAll(p.Open())
			if err != nil {
				continue
			}
			if id := elfGoNote(b, ef.ByteOrder); id != "" {
				return id
			}
		}
		return ""
	}
	b := make([]byte, 32<<10)
	n, _ := io.ReadFull(f, b)
	const start, end = "\xff Go build ID: \"", "\"\n \xff"
	i := bytes.Index(b[:n], []byte(start))
	if i < 0 {
		return ""
	}
	rest := b[i+len(start) : n]
	j := bytes.Index(rest, []byte(end))
	if j <= 0 {
		return ""
	}
	return string(rest[:j])
}

// elfGoNote finds the Go build ID note (name "Go", type 4) among ELF notes.
func elfGoNote(b []byte, bo binary.ByteOrder) string {
	align := func(n uint32) int { return int((n + 3) &^ 3) }
	for len(b) >= 12 {
		namesz, descsz, typ := bo.Uint32(b), bo.Uint32(b[4:]), bo.Uint32(b[8:])
		b = b[12:]
		if align(namesz) > len(b) || align(namesz)+int(descsz) > len(b) {
			return ""
		}
		name := string(bytes.TrimRight(b[:namesz], "\x00"))
		desc := b[align(namesz) : align(namesz)+int(descsz)]
		if name == "Go" && typ == 4 {
			return string(desc)
		}
		if align(namesz)+align(descsz) > len(b) {
			return ""
		}
		b = b[align(namesz)+align(descsz):]
	}
	return ""
}

func (d *Deployment) binary() (string, error) {
	if d.Binary != "" {
		return d.Binary, nil
	}
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the running binary to deploy: %w", err)
	}
	return p, nil
}

// Dir is the cache directory for this binary, as a remote shell expression (after Prepare).
func (d *Deployment) Dir() string {
	v := strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '.' || r == '-' || r == '+' || r == '_' ||
			'0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return r
		}
		return '_'
	}, d.Version)
	if v == "" {
		v = "unknown"
	}
	return fmt.Sprintf("${XDG_CACHE_HOME:-$HOME/.cache}/%s/%s-%s", d.Name, v, d.key)
}

// startMarker is the line the start command prints first, before it looks for the program:
// output without it comes from something else (see Watcher).
func (d *Deployment) startMarker() string { return "\x00" + d.Name + "-start\n" }

// marker starts the line the start command prints when it finds nothing to run.
func (d *Deployment) marker() string { return "\x00" + d.Name + "-missing " }

// printMissing is the shell command that prints the Missing line.
func (d *Deployment) printMissing() string {
	return `printf "\0` + d.Name + `-missing %s\t%s\n" "$(uname -sm)" "$PATH"`
}

// StartCommand is the remote command line that runs the program: Path (when set) or Name on
// the PATH, and the cached copy of this exact binary unless NoCache; it prefers the cached
// copy to Name on the PATH, which may be another version. When it finds none it prints the
// Missing line and exits 0. It runs its script with sh, whatever the login shell is.
func (d *Deployment) StartCommand() (string, error) {
	if !d.NoCache {
		if err := d.Prepare(); err != nil {
			return "", err
		}
	} else if !safeName.MatchString(d.Name) {
		return "", fmt.Errorf("deployment name %q is not a plain program name", d.Name)
	}
	prog := d.Name
	if d.Path != "" {
		prog = quote.Shell(d.Path)
	}
	installed := fmt.Sprintf("if command -v %s >/dev/null 2>&1; then exec %s %s; fi; ", prog, prog, d.Args)
	var s strings.Builder
	s.WriteString(`printf "\0` + d.Name + `-start\n"; `)
	if d.Path != "" {
		s.WriteString(installed)
	}
	if !d.NoCache {
		s.WriteString(d.runCached())
	}
	if d.Path == "" {
		s.WriteString(installed)
	}
	s.WriteString(d.printMissing())
	return shWrap(s.String()), nil
}

// CacheCommand is StartCommand restricted to the cache: it runs a good cached copy or prints
// the Missing line. With Path set, StartCommand tries Path first, and a Path of another
// version leaves the cache untried.
func (d *Deployment) CacheCommand() (string, error) {
	if err := d.Prepare(); err != nil {
		return "", err
	}
	return shWrap(d.runCached() + d.printMissing()), nil
}

// goodCopy is the shell test of the cached copy "$b": the user's, not a symbolic link, not
// empty (what a crash soon after the install can leave on a file system that delays
// allocation), and older than its stamp.
const goodCopy = `[ -O "$b" ] && [ ! -h "$b" ] && [ -x "$b" ] && [ -s "$b" ] && [ "$b.ok" -nt "$b" ]`

// runCached runs the cached copy if it is good and its directory chain is safe (see
// cacheCheck); otherwise the start command goes on as if there were none.
func (d *Deployment) runCached() string {
	return fmt.Sprintf(`d="%s"; b="$d/%s"; if %s; then %s; if [ -z "$kwhy" ]; then exec "$b" %s; fi; fi; `,
		d.Dir(), d.Name, goodCopy, d.cacheCheck(), d.Args)
}

// RunCommand is the remote command line that runs the cached copy (after Install), checked
// again as the start command checks it: the install may have raced with another user.
func (d *Deployment) RunCommand() string {
	return shWrap(fmt.Sprintf(`d="%s"; b="$d/%s"; %s; if [ -n "$kwhy" ]; then echo "socketpipe: not running the copy in the cache: $kwhy" >&2; exit 1; fi; `+
		`if ! %s; then echo "socketpipe: not running the copy $b: it changed after its install" >&2; exit 1; fi; exec "$b" %s`,
		d.Dir(), d.Name, d.cacheCheck(), goodCopy, d.Args))
}

// cacheCheck is shell that sets kwhy to the reason the cache directory "$d" cannot be
// trusted, or to "" when it can: another user who can write to it or to a directory above
// it could swap the copy between its check and its exec. The directories that the cache
// adds ("$d", ${XDG_CACHE_HOME:-$HOME/.cache}/<Name>, ${XDG_CACHE_HOME:-$HOME/.cache}) must
// be the user's, not symbolic links, and writable by the user alone; every directory above,
// symbolic links resolved, the user's or root's and writable by no one else unless sticky
// (/tmp), as OpenSSH's StrictModes wants of the directories above authorized_keys. POSIX
// only (test -O, find -perm and -user, cd -P), so that BSD and macOS hosts check the same
// way; two finds for the whole chain, as the start command runs it on every start.
func (d *Deployment) cacheCheck() string {
	return strings.Join([]string{
		`kwhy=; kc="${XDG_CACHE_HOME:-$HOME/.cache}"; set -f; kn=$(printf '\n_'); kn=${kn%_}; ko=$IFS; IFS=$kn`,
		fmt.Sprintf(`for kp in "$d" "$kc/%s" "$kc"; do if [ -h "$kp" ]; then kwhy="$kp is a symbolic link"; break; `+
			`elif [ ! -d "$kp" ] || [ ! -O "$kp" ]; then kwhy="$kp is not a directory of the user's"; break; fi; done`, d.Name),
		fmt.Sprintf(`if [ -z "$kwhy" ]; then for kp in $(find "$d" "$kc/%s" "$kc" -prune \( -perm -020 -o -perm -002 \) -print 2>/dev/null); do `+
			`kwhy="$kp is writable by other users"; break; done; fi`, d.Name),
		`if [ -z "$kwhy" ]; then kp=$(cd -P "$kc/.." 2>/dev/null && pwd -P) || kwhy="the directory above $kc cannot be resolved"; fi`,
		`if [ -z "$kwhy" ]; then set --; while :; do set -- "$@" "$kp"; [ "$kp" = / ] && break; kp=${kp%/*}; kp=${kp:-/}; done; ku=$(id -u); ` +
			`for kp in $(find "$@" -prune \( \( ! -user 0 ! -user "$ku" \) -o \( \( -perm -020 -o -perm -002 \) ! -perm -1000 \) \) -print 2>/dev/null); do ` +
			`IFS=$ko; set -- $(ls -ldn "$kp") - - -; case $3 in 0|"$ku") kwhy="$kp is writable by other users";; *) kwhy="$kp is owned by another user";; esac; break; done; fi`,
		`IFS=$ko; set +f`,
	}, "; ")
}

// installScript reads the binary on standard input into the cache, as the type's comment says
// (after Prepare and hash).
func (d *Deployment) installScript(token string) string {
	var unames []string
	if sys, ok := unameSystems[d.goos()]; ok {
		for _, m := range d.machines() {
			unames = append(unames, quote.Shell(sys+" "+m))
		}
	}
	if len(unames) == 0 {
		unames = []string{"-"}
	}
	sum := hex.EncodeToString(d.sum[:])
	// One line (csh takes no newline inside quotes): statements joined with "; ".
	return shWrap(strings.Join([]string{
		`umask 077`,
		`u=$(uname -sm)`,
		fmt.Sprintf(`case $u in %s) ;; *) %s; exit 3;; esac`, strings.Join(unames, "|"), d.printMissing()),
		fmt.Sprintf(`d="%s"; b="$d/%s"; t="$d/.tmp.%s.$$"`, d.Dir(), d.Name, token),
		`mkdir -p "$d" || exit 1`,
		d.cacheCheck(),
		fmt.Sprintf(`[ -z "$kwhy" ] || { echo "$kwhy: not using the cache" >&2; exit %d; }`, exitUntrusted),
		`chmod 700 "$d" || exit 1`,
		`find "$d" -name '.tmp.*' -mtime +0 -exec rm -f {} + 2>/dev/null`,
		`trap 'rm -f "$t"' EXIT`,
		`trap 'exit 1' HUP INT TERM PIPE`,
		`cat >"$t" || exit 1`,
		`if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum <"$t")`,
		`elif command -v shasum >/dev/null 2>&1; then s=$(shasum -a 256 <"$t")`,
		`elif command -v sha256 >/dev/null 2>&1; then s=$(sha256 <"$t")`,
		`elif command -v openssl >/dev/null 2>&1; then s=$(openssl dgst -sha256 <"$t")`,
		`else echo "no sha256sum, shasum, sha256 or openssl to check the upload with" >&2; exit 1; fi`,
		fmt.Sprintf(`case $s in *%s*) ;; *) echo "the uploaded copy does not have the SHA-256 that was sent (of %d bytes); not installed" >&2; exit 1;; esac`, sum, d.size),
		`chmod 700 "$t" && touch -t 200001010000 "$t" && mv -f "$t" "$b" && touch "$b.ok" || exit 1`,
		`printf "%s\n" "$b"`,
	}, "; "))
}

// Install uploads Binary into the remote cache over a new session on c's connection (c must
// be native), unless the remote system is not one the binary runs on: then it returns a
// *PlatformError having written nothing. Other failures are an *InstallError with the remote
// side's message; nothing is left but, at worst, a temporary file.
func (d *Deployment) Install(ctx context.Context, c *sshlogin.Cmd) (*Installed, error) {
	if err := d.Prepare(); err != nil {
		return nil, err
	}
	if err := d.hash(); err != nil {
		return nil, err
	}
	path, err := d.binary()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the binary to deploy: %w", err)
	}
	defer f.Close()
	var tok [6]byte
	rand.Read(tok[:])
	t0 := time.Now()
	s, err := c.Session(d.installScript(hex.EncodeToString(tok[:])))
	if err != nil {
		return nil, err
	}
	out := &capBuffer{max: 64 << 10}
	errOut := &capBuffer{max: 4 << 10}
	s.Stdin, s.Stdout, s.Stderr = f, out, errOut
	err = s.Run(ctx)
	return d.installed(out.Bytes(), errOut.String(), err, time.Since(t0))
}

// installed reads what the install script printed and how its session ended. The remote
// side's words (its uname, its error, the path) are made printable: they reach the terminal.
func (d *Deployment) installed(out []byte, errOut string, err error, took time.Duration) (*Installed, error) {
	if m := parseMissing(out, d.marker()); m != nil {
		goos, goarch := d.goos(), d.goarch()
		return nil, &PlatformError{System: m.System, Machine: m.Machine, GOOS: goos, GOARCH: goarch}
	}
	if err != nil {
		var ee *sshlogin.ExitError
		untrusted := errors.As(err, &ee) && ee.Status == exitUntrusted
		return nil, &InstallError{Dir: d.Dir(), Msg: quote.Printable(strings.TrimSpace(errOut), 1024), Err: err, Untrusted: untrusted}
	}
	p := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(p, '\n'); i >= 0 {
		p = p[i+1:]
	}
	return &Installed{Path: quote.Printable(p, 1024), Size: d.size, Took: took}, nil
}

// Interpreter is the dynamic loader Binary asks for ("" for a static binary or not ELF): a
// dynamically linked copy runs only where that loader and the C library are.
func (d *Deployment) Interpreter() string {
	path, err := d.binary()
	if err != nil {
		return ""
	}
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, _ := io.ReadAll(io.LimitReader(p.Open(), 4096))
			return string(bytes.TrimRight(b, "\x00"))
		}
	}
	return ""
}

// parseMissing finds the Missing line in b.
func parseMissing(b []byte, marker string) *Missing {
	i := bytes.Index(b, []byte(marker))
	if i < 0 {
		return nil
	}
	line := b[i+len(marker):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	return parseMissingLine(line)
}

// parseMissingLine reads the Missing line. Its words are the remote host's, shown in messages:
// they are made printable, and cut short.
func parseMissingLine(line []byte) *Missing {
	uname, path, _ := strings.Cut(string(line), "\t")
	uname = strings.TrimSpace(uname)
	system, machine := uname, ""
	if i := strings.LastIndexByte(uname, ' '); i >= 0 {
		system, machine = uname[:i], uname[i+1:]
	}
	return &Missing{System: quote.Printable(system, 64), Machine: quote.Printable(machine, 64), PATH: quote.Printable(path, 1024)}
}

// Watcher reads the start command's output. It removes the start command's first line, the
// start marker, which tells that the start command itself runs (and not a command the server
// forces on the login), and notices the Missing line; both before the program's own first
// bytes, the stop string, after which the stream passes unchanged and unsearched.
type Watcher struct {
	r      io.Reader
	marker []byte
	stop   []byte
	start  []byte

	mu      sync.Mutex
	win     []byte // bytes that may still begin the marker or the stop string
	inLine  bool   // the marker was seen: win collects the rest of its line
	done    bool   // the line was read, the stop string seen, or too much scanned
	eof     bool
	scanned int
	missing *Missing

	// The start marker, before it is decided (fast once it is).
	decided  bool   // the start marker or the stop string came, or too much came without
	held     []byte // read but not delivered: a proper prefix of the start marker or stop string
	pend     []byte // filtered bytes waiting for the reader
	readErr  error  // the underlying reader's error, once pend and held are delivered
	filtered int
	startCh  chan struct{} // closed when the start marker or the stop string has been read
	strayCh  chan struct{} // closed at the first byte delivered before that
	endCh    chan struct{} // closed at the end of the stream
	marked   bool          // the start marker itself came
}

// Limits on what the watcher keeps and scans.
const (
	maxScan        = 1 << 20 // as much login-shell output as the control channel skips
	maxMissingLine = 16 << 10
)

// Watch returns a reader of r, the started session's output, that removes the start marker and
// notices the Missing line. It stops looking at the first occurrence of stop, the bytes the
// program writes first, so the program's own output is never searched or changed.
func (d *Deployment) Watch(r io.Reader, stop string) *Watcher {
	return &Watcher{r: r, marker: []byte(d.marker()), stop: []byte(stop), start: []byte(d.startMarker()),
		startCh: make(chan struct{}), strayCh: make(chan struct{}), endCh: make(chan struct{})}
}

func (w *Watcher) Read(p []byte) (int, error) {
	w.mu.Lock()
	decided := w.decided && len(w.pend) == 0 && w.readErr == nil
	w.mu.Unlock()
	if decided {
		n, err := w.r.Read(p)
		w.mu.Lock()
		w.scan(p[:n])
		if err != nil {
			w.end()
		}
		w.mu.Unlock()
		return n, err
	}
	for {
		w.mu.Lock()
		if len(w.pend) > 0 {
			n := copy(p, w.pend)
			w.pend = w.pend[n:]
			w.scan(p[:n])
			w.mu.Unlock()
			return n, nil
		}
		if err := w.readErr; err != nil {
			w.end()
			w.mu.Unlock()
			return 0, err
		}
		if w.decided {
			w.mu.Unlock()
			return w.Read(p)
		}
		w.mu.Unlock()
		n, err := w.r.Read(p)
		w.mu.Lock()
		w.filter(p[:n])
		if err != nil {
			w.pend = append(w.pend, w.held...)
			w.held = nil
			w.readErr = err
		}
		w.mu.Unlock()
		if n == 0 && err == nil {
			return 0, nil
		}
	}
}

// filter moves b, newly read, to pend without the start marker, holding back what may begin
// it or the stop string. The start marker counts only before the first stop string.
func (w *Watcher) filter(b []byte) {
	if len(b) == 0 {
		return
	}
	w.filtered += len(b)
	buf := append(w.held, b...)
	w.held = nil
	// No earlier byte can begin either string: it would have been held back.
	i := bytes.Index(buf, w.start)
	j := -1
	if len(w.stop) > 0 {
		j = bytes.Index(buf, w.stop)
	}
	switch {
	case j >= 0 && (i < 0 || j < i):
		w.deliver(buf[:j])
		w.decide(false)
		w.deliver(buf[j:])
		return
	case i >= 0:
		w.deliver(buf[:i])
		w.decide(true)
		w.deliver(buf[i+len(w.start):])
		return
	case w.filtered > maxScan:
		w.deliver(buf)
		w.decide(false)
		return
	}
	keep := 0
	for k := min(len(buf), max(len(w.start), len(w.stop))-1); k > 0; k-- {
		if end := buf[len(buf)-k:]; bytes.HasPrefix(w.start, end) || bytes.HasPrefix(w.stop, end) {
			keep = k
			break
		}
	}
	w.deliver(buf[:len(buf)-keep])
	w.held = append([]byte(nil), buf[len(buf)-keep:]...)
}

func (w *Watcher) deliver(b []byte) {
	if len(b) == 0 {
		return
	}
	if !w.decided {
		select {
		case <-w.strayCh:
		default:
			close(w.strayCh)
		}
	}
	w.pend = append(w.pend, b...)
}

func (w *Watcher) decide(marked bool) {
	w.decided, w.marked = true, marked
	close(w.startCh)
}

func (w *Watcher) scan(b []byte) {
	if w.done || len(b) == 0 {
		return
	}
	w.scanned += len(b)
	w.win = append(w.win, b...)
	if !w.inLine {
		i := bytes.Index(w.win, w.marker)
		j := -1
		if len(w.stop) > 0 {
			j = bytes.Index(w.win, w.stop)
		}
		switch {
		case j >= 0 && (i < 0 || j < i):
			w.finish()
			return
		case i >= 0:
			w.win = append(w.win[:0], w.win[i+len(w.marker):]...)
			w.inLine = true
		default:
			if w.scanned > maxScan {
				w.finish()
				return
			}
			keep := max(len(w.marker), len(w.stop)) - 1
			if len(w.win) > keep {
				w.win = append(w.win[:0], w.win[len(w.win)-keep:]...)
			}
			return
		}
	}
	if k := bytes.IndexByte(w.win, '\n'); k >= 0 {
		w.missing = parseMissingLine(w.win[:k])
		w.finish()
	} else if len(w.win) > maxMissingLine {
		w.missing = parseMissingLine(w.win[:maxMissingLine])
		w.finish()
	}
}

// end is the end of the stream: a line without its newline still counts.
func (w *Watcher) end() {
	if w.eof {
		return
	}
	w.eof = true
	close(w.endCh)
	if w.inLine && !w.done {
		w.missing = parseMissingLine(w.win)
	}
	w.finish()
}

func (w *Watcher) finish() {
	w.done = true
	w.win = nil
}

// Started returns a channel that is closed when the start marker, or else the program's first
// bytes, have been read: the start command runs, not a command forced on the login.
func (w *Watcher) Started() <-chan struct{} { return w.startCh }

// Stray returns a channel that is closed when output came before that: a login shell's
// banner, or the output of a forced command.
func (w *Watcher) Stray() <-chan struct{} { return w.strayCh }

// Ended returns a channel that is closed when the stream has ended.
func (w *Watcher) Ended() <-chan struct{} { return w.endCh }

// Missing returns the Missing line if it has been read, else nil.
func (w *Watcher) Missing() *Missing {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.missing
}

// Drain reads on, for at most d, until the Missing line, the program's first bytes or the end
// of the stream, for when the consumer gave up before reading them (a write to the ended
// session failed first). It returns the Missing line if there is one.
func (w *Watcher) Drain(d time.Duration) *Missing {
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	if done {
		return w.Missing()
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		buf := make([]byte, 32<<10)
		for {
			if _, err := w.Read(buf); err != nil {
				return
			}
			w.mu.Lock()
			done := w.done
			w.mu.Unlock()
			if done {
				return
			}
		}
	}()
	select {
	case <-finished:
	case <-time.After(d):
	}
	return w.Missing()
}

// shWrap runs script with sh, so that it means the same under any login shell (csh, fish):
// the quoted script carries no backslash pairs that those shells would take apart.
func shWrap(script string) string {
	return "exec sh -c " + quote.Shell(script)
}

// capBuffer keeps the first max bytes written to it and discards the rest.
type capBuffer struct {
	bytes.Buffer
	max int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Buffer.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
