package sshconfig

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ossh is the OpenSSH release a resolution follows.
type ossh struct {
	v       int    // release number, major*100+minor (902: 9.2), as ssh -V said
	row     int    // the table row that describes it (tableRelease(v))
	release string // SSH_RELEASE as ssh -V prints it: what Match version matches
	source  string // where the release came from, for -v
	path    string // the ssh binary asked, "" if none

	listsOnce sync.Once
	lists     algLists // the binary's own lists (ssh -G, ssh -Q), else the table's
}

// The release followed when there is no ssh binary to ask.
func defaultOSSH(why string) *ossh {
	return &ossh{v: osshNewest, row: osshNewest, release: "OpenSSH_" + releaseName(osshNewest),
		source: why + ": following OpenSSH " + releaseName(osshNewest) + ", the newest release socketpipe knows"}
}

// algorithms gives the release's algorithm lists: the binary's own when it can be asked (its
// build and its vendor's patches, e.g. Debian 12's 9.2 also offers sntrup761x25519-sha512 under
// 9.9's name), else the table's. Asking runs ssh five times (about 10 ms, in parallel); the
// answer is kept with the release in the cache.
func (o *ossh) algorithms(cacheDir string) algLists {
	o.listsOnce.Do(func() {
		o.lists = tableLists(o.row)
		if o.path == "" {
			return
		}
		if c, ok := readVersionCache(cacheDir, o.path); ok && c.Lists != nil && c.Release == o.release {
			o.lists = *c.Lists
			return
		}
		if l, err := probeLists(o.path); err == nil {
			o.lists = l
			writeVersionCache(cacheDir, o.path, versionCacheEntry{Release: o.release, Lists: &l})
		}
	})
	return o.lists
}

// osshFor finds the release for env: Env.OpenSSH when set, else the ssh binary's (Env.SSH, or
// ssh on PATH that is not socketpipe itself), asked once per process and remembered across
// runs in Env.CacheDir, else the newest release in the table.
func osshFor(env Env) *ossh {
	if env.OpenSSH != "" {
		v, rel, err := parseOpenSSH(env.OpenSSH)
		if err != nil {
			return defaultOSSH(fmt.Sprintf("Env.OpenSSH %q is not an OpenSSH version", env.OpenSSH))
		}
		return &ossh{v: v, row: tableRelease(v), release: rel, source: "Env.OpenSSH " + env.OpenSSH}
	}
	path, err := findSSH(env.SSH)
	if err != nil {
		return defaultOSSH("no ssh binary")
	}
	key := path + "\x00" + env.CacheDir
	if o, ok := osshMemo.Load(key); ok {
		return o.(*ossh)
	}
	o := askSSH(path, env.CacheDir)
	osshMemo.Store(key, o)
	return o
}

var osshMemo sync.Map // ssh path + cache dir -> *ossh

func askSSH(path, cacheDir string) *ossh {
	if c, ok := readVersionCache(cacheDir, path); ok {
		if v, rel, err := parseOpenSSH(c.Release); err == nil {
			return &ossh{v: v, row: tableRelease(v), release: rel, path: path, source: path + " (cached ssh -V)"}
		}
	}
	out, err := runSSH(path, "-V")
	if err != nil {
		return defaultOSSH(fmt.Sprintf("%s -V failed (%v)", path, err))
	}
	v, rel, err := parseOpenSSH(out)
	if err != nil {
		return defaultOSSH(fmt.Sprintf("%s is not OpenSSH (%q)", path, firstLine(out)))
	}
	writeVersionCache(cacheDir, path, versionCacheEntry{Release: rel})
	return &ossh{v: v, row: tableRelease(v), release: rel, path: path, source: path + " (ssh -V)"}
}

// runSSH runs the ssh binary with args, bounded in time: a binary that hangs must not hang the
// login. It returns what ssh wrote to standard output, or for -V (written to standard error)
// both.
func runSSH(path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	if len(args) == 1 && args[0] == "-V" {
		cmd.Stderr = &out
	}
	err := cmd.Run()
	return out.String(), err
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// probeLists asks the ssh binary for its algorithm lists: the defaults from ssh -G with no
// configuration file, and what it supports from ssh -Q.
func probeLists(path string) (algLists, error) {
	var (
		l    algLists
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	run := func(dst func(string), args ...string) {
		defer wg.Done()
		out, err := runSSH(path, args...)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %v", path, strings.Join(args, " "), err))
			return
		}
		dst(out)
	}
	list := func(dst *string) func(string) {
		return func(out string) { *dst = strings.Join(strings.Fields(out), ",") }
	}
	wg.Add(5)
	go run(func(out string) {
		for _, line := range strings.Split(out, "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
			switch k {
			case "ciphers":
				l.Ciphers = v
			case "macs":
				l.MACs = v
			case "kexalgorithms":
				l.Kex = v
			case "hostkeyalgorithms":
				l.HostKeys = v
			}
		}
	}, "-G", "-F", "none", "socketpipe-probe.invalid")
	go run(list(&l.AllCiphers), "-Q", "cipher")
	go run(list(&l.AllMACs), "-Q", "mac")
	go run(list(&l.AllKex), "-Q", "kex")
	go run(list(&l.AllHostKeys), "-Q", "HostKeyAlgorithms")
	wg.Wait()
	if len(errs) > 0 {
		return l, errs[0]
	}
	for _, s := range []string{l.Ciphers, l.MACs, l.Kex, l.HostKeys, l.AllCiphers, l.AllMACs, l.AllKex, l.AllHostKeys} {
		if s == "" {
			return l, fmt.Errorf("%s: an algorithm list is missing from its answers", path)
		}
	}
	return l, nil
}

// findSSH finds the ssh binary to follow: name (a path, or a name looked up on PATH) or, when
// name is "", RealSSH. The path returned has its symbolic links resolved.
func findSSH(name string) (string, error) {
	if name != "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", err
		}
		return filepath.EvalSymlinks(p)
	}
	p := RealSSH()
	if p == "" {
		return "", exec.ErrNotFound
	}
	return filepath.EvalSymlinks(p)
}

// RealSSH returns the first ssh on PATH that is not this program (socketpipe installed as
// ssh), "" if there is none. It skips every copy and build of this program, of whatever
// version: its own file (a link to it included), and any executable whose Go build
// information names the main package this program was built from. Like exec.LookPath (see
// exec.ErrDot), it skips a PATH directory that is not absolute, such as an empty entry, which
// means the current directory.
func RealSSH() string {
	var self os.FileInfo
	if exe, err := os.Executable(); err == nil {
		self, _ = os.Stat(exe) // follows links: a link to socketpipe is socketpipe
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, "ssh")
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			continue
		}
		if self != nil && os.SameFile(fi, self) || sameProgram(p) {
			continue
		}
		return p
	}
	return ""
}

// sameProgram reports whether the executable at p is a build of this program: its Go build
// information names the same main package.
func sameProgram(p string) bool {
	own, ok := debug.ReadBuildInfo()
	if !ok || own.Path == "" {
		return false
	}
	bi, err := buildinfo.ReadFile(p)
	return err == nil && bi.Path == own.Path
}

// The cache of ssh binaries' answers: one JSON file, by path, each entry valid while the binary
// keeps its device, inode, size and modification time (a package upgrade replaces the file).
const versionCacheFile = "openssh-releases.json"

type versionCacheEntry struct {
	ID      string    `json:"id"`
	Release string    `json:"release"`
	Lists   *algLists `json:"lists,omitempty"`
}

func binaryID(path string) (string, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", false
	}
	id := fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id = fmt.Sprintf("%v:%v:%s", st.Dev, st.Ino, id)
	}
	return id, true
}

func readVersionCache(dir, path string) (versionCacheEntry, bool) {
	if dir == "" {
		return versionCacheEntry{}, false
	}
	b, err := os.ReadFile(filepath.Join(dir, versionCacheFile))
	if err != nil {
		return versionCacheEntry{}, false
	}
	var m map[string]versionCacheEntry
	if json.Unmarshal(b, &m) != nil {
		return versionCacheEntry{}, false
	}
	e, ok := m[path]
	id, idOK := binaryID(path)
	if !ok || !idOK || e.ID != id {
		return versionCacheEntry{}, false
	}
	return e, true
}

// writeVersionCache records e for path, keeping other binaries' entries (and the lists already
// known for this one when e has none). Failures are ignored: the cache only saves time.
func writeVersionCache(dir, path string, e versionCacheEntry) {
	if dir == "" {
		return
	}
	id, ok := binaryID(path)
	if !ok {
		return
	}
	e.ID = id
	file := filepath.Join(dir, versionCacheFile)
	m := map[string]versionCacheEntry{}
	if b, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	if old, ok := m[path]; ok && e.Lists == nil && old.ID == id && old.Release == e.Release {
		e.Lists = old.Lists
	}
	m[path] = e
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(dir, ".openssh-releases-*")
	if err != nil {
		return
	}
	w := bufio.NewWriter(f)
	_, werr := w.Write(append(b, '\n'))
	if werr == nil {
		werr = w.Flush()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil || os.Rename(f.Name(), file) != nil {
		os.Remove(f.Name())
	}
}
