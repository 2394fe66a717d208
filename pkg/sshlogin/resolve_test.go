package sshlogin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The keywords WriteG prints: the oracle compares exactly these with ssh -G.
var honouredG = func() map[string]bool {
	var b bytes.Buffer
	c := &Config{ProxyJump: "x", BindAddress: "x", HostKeyAlias: "x", IdentityAgent: "x",
		PreferredAuthentications: []string{"x"}, IdentityFiles: []string{"x"},
		CertificateFiles: []string{"x"}, SendEnv: []string{"x"}, SetEnv: []string{"x=1"}}
	if err := c.WriteG(&b); err != nil {
		panic(err)
	}
	m := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		k, _, _ := strings.Cut(l, " ")
		m[k] = true
	}
	return m
}()

func parseG(out string) map[string][]string {
	m := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(l, " ")
		if !ok || !honouredG[k] {
			continue
		}
		m[k] = append(m[k], v)
	}
	return m
}

// requireSSH returns the path of ssh, skipping the test when there is none (failing under CI).
func requireSSH(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ssh, the oracle for ssh_config resolution, is not installed: %v", err)
		}
		t.Skipf("no ssh binary: %v", err)
	}
	return p
}

type oracleEnv struct {
	pwHome, pwUser, localHost string
	uid                       int
}

func newOracleEnv(t *testing.T) oracleEnv {
	u, err := osuser.Current()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := os.Hostname()
	return oracleEnv{pwHome: u.HomeDir, pwUser: u.Username, localHost: h, uid: os.Getuid()}
}

// normalizeSSH makes ssh -G's output comparable with WriteG's: ssh prints identityfile and
// certificatefile as written (it expands them when it loads them), WriteG expanded; and in the
// namespace run ssh's home is the password database's, mounted over by the test's.
func normalizeSSH(t *testing.T, got map[string][]string, oe oracleEnv, home string) {
	t.Helper()
	first := func(k string) string {
		if len(got[k]) == 0 {
			return ""
		}
		return got[k][0]
	}
	short, _, _ := strings.Cut(oe.localHost, ".")
	tok := map[byte]string{'h': first("hostname"), 'r': first("user"), 'p': first("port"),
		'u': oe.pwUser, 'l': oe.localHost, 'L': short, 'd': home, 'n': first("host"),
		'i': fmt.Sprint(oe.uid)}
	for _, k := range []string{"identityfile", "certificatefile"} {
		for i, v := range got[k] {
			if v == "~" || strings.HasPrefix(v, "~/") {
				v = home + v[1:]
			}
			x, err := percentExpand(v, tok)
			if err != nil {
				t.Fatalf("ssh printed %s %q: %v", k, v, err)
			}
			got[k][i] = x
		}
	}
	if home != oe.pwHome {
		for _, k := range []string{"identityfile", "certificatefile", "userknownhostsfile", "identityagent"} {
			for i, v := range got[k] {
				words := strings.Split(v, " ")
				for j, w := range words {
					if w == oe.pwHome || strings.HasPrefix(w, oe.pwHome+"/") {
						words[j] = home + w[len(oe.pwHome):]
					}
				}
				got[k][i] = strings.Join(words, " ")
			}
		}
	}
}

func compareG(t *testing.T, sshOut string, mine *Config) {
	t.Helper()
	var b bytes.Buffer
	if err := mine.WriteG(&b); err != nil {
		t.Fatal(err)
	}
	want := parseG(sshOut)
	got := parseG(b.String())
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if fmt.Sprint(want[k]) != fmt.Sprint(got[k]) {
			t.Errorf("%s:\n  ssh -G:     %q\n  socketpipe: %q", k, want[k], got[k])
		}
	}
}

type oracleCase struct {
	name     string
	userOnly bool // "user-files-only" in the comment: relative Includes, so no -F run
	args     [][]string
	files    map[string][]byte // config, system, and included files, by name
}

func loadOracleCases(t *testing.T) []oracleCase {
	names, err := filepath.Glob("testdata/oracle/*.txtar")
	if err != nil || len(names) == 0 {
		t.Fatalf("no oracle corpus: %v", err)
	}
	var cases []oracleCase
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		a := parseTxtar(data)
		c := oracleCase{name: strings.TrimSuffix(filepath.Base(n), ".txtar"), files: map[string][]byte{},
			userOnly: strings.Contains(a.Comment, "user-files-only")}
		for _, f := range a.Files {
			if f.Name == "args" {
				w, err := argvSplit(strings.TrimSpace(string(f.Data)))
				if err != nil {
					t.Fatalf("%s: args: %v", n, err)
				}
				c.args = append(c.args, w)
				continue
			}
			c.files[f.Name] = f.Data
		}
		cases = append(cases, c)
	}
	return cases
}

func writeCase(t *testing.T, c oracleCase, dir string) {
	for name, data := range c.files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte("@DIR@"), []byte(dir))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func oracleGetenv(home string) func(string) string {
	return func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}
}

// TestOracleConfigFile compares Resolve+WriteG with `ssh -G -F file` over the corpus in
// testdata/oracle, keyword by keyword, for the keywords socketpipe honours.
func TestOracleConfigFile(t *testing.T) {
	sshPath := requireSSH(t)
	oe := newOracleEnv(t)
	for _, c := range loadOracleCases(t) {
		if c.userOnly {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeCase(t, c, dir)
			for _, args := range c.args {
				t.Run(strings.Join(args, " "), func(t *testing.T) {
					full := append([]string{"-F", filepath.Join(dir, "config")}, args...)
					cmd := exec.Command(sshPath, append([]string{"-G"}, full...)...)
					cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + oe.pwHome}
					var stderr bytes.Buffer
					cmd.Stderr = &stderr
					out, err := cmd.Output()
					if err != nil {
						t.Fatalf("ssh -G %q: %v: %s", full, err, stderr.String())
					}
					inv, err := ParseArgs(full)
					if err != nil {
						t.Fatal(err)
					}
					env := Env{Home: oe.pwHome, User: oe.pwUser, UID: oe.uid, LocalHost: oe.localHost,
						Getenv: oracleGetenv(oe.pwHome), SystemDir: filepath.Join(dir, "nonexistent")}
					cfg, err := Resolve(inv, env)
					if err != nil {
						t.Fatal(err)
					}
					if cfg.ExecReason != "" {
						t.Errorf("ExecReason %q", cfg.ExecReason)
					}
					want := string(out)
					got := parseG(want)
					normalizeSSH(t, got, oe, oe.pwHome)
					compareG(t, rebuild(got), cfg)
				})
			}
		})
	}
}

// TestOracleUserFiles runs ssh -G without -F, so that it reads ~/.ssh/config and
// /etc/ssh/ssh_config. ssh takes ~ from the password database, not $HOME, so the test gives it
// its files in a private mount namespace: a temporary home mounted over the user's, and a
// temporary /etc/ssh. Each case's "config" is the user file and "system" the system file.
func TestOracleUserFiles(t *testing.T) {
	sshPath := requireSSH(t)
	oe := newOracleEnv(t)
	if _, err := exec.LookPath("unshare"); err != nil || os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the user-file oracle needs root and unshare(1) (uid %d, %v)", os.Getuid(), err)
		}
		t.Skip("needs root and unshare(1) for a private mount namespace")
	}
	for _, c := range loadOracleCases(t) {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			home := filepath.Join(dir, "home")
			etc := filepath.Join(dir, "etcssh")
			for _, d := range []string{filepath.Join(home, ".ssh"), etc} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			files := map[string][]byte{}
			for name, data := range c.files {
				switch name {
				case "config":
					files["home/.ssh/config"] = data
				case "system":
					files["etcssh/ssh_config"] = data
				default:
					files[name] = data
					if strings.HasPrefix(name, "ssh/") {
						files["home/.ssh/"+name[4:]] = data
					}
					if strings.HasPrefix(name, "etc/") {
						files["etcssh/"+name[4:]] = data
					}
				}
			}
			writeCase(t, oracleCase{files: files}, dir)
			for _, args := range c.args {
				t.Run(strings.Join(args, " "), func(t *testing.T) {
					script := `mount --bind "$1" "$2" && mount --bind "$3" /etc/ssh && shift 3 && exec "$@"`
					argv := append([]string{"-m", "sh", "-c", script, "sh", home, oe.pwHome, etc, sshPath, "-G"}, args...)
					cmd := exec.Command("unshare", argv...)
					cmd.Env = []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + oe.pwHome}
					var stderr bytes.Buffer
					cmd.Stderr = &stderr
					out, err := cmd.Output()
					if err != nil {
						t.Fatalf("ssh -G %q in a mount namespace: %v: %s", args, err, stderr.String())
					}
					inv, err := ParseArgs(args)
					if err != nil {
						t.Fatal(err)
					}
					env := Env{Home: home, User: oe.pwUser, UID: oe.uid, LocalHost: oe.localHost,
						Getenv: oracleGetenv(home), SystemDir: etc}
					cfg, err := Resolve(inv, env)
					if err != nil {
						t.Fatal(err)
					}
					if cfg.ExecReason != "" {
						t.Errorf("ExecReason %q", cfg.ExecReason)
					}
					got := parseG(string(out))
					normalizeSSH(t, got, oe, home)
					compareG(t, rebuild(got), cfg)
				})
			}
		})
	}
}

func rebuild(m map[string][]string) string {
	var b strings.Builder
	for k, vs := range m {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s %s\n", k, v)
		}
	}
	return b.String()
}

type txtarFile struct {
	Name string
	Data []byte
}

// parseTxtar reads the txtar format ("-- name --" lines start files; text before the first
// is a comment). go.sum lacks golang.org/x/tools, which go-internal's txtar wraps.
func parseTxtar(data []byte) (a struct {
	Comment string
	Files   []txtarFile
}) {
	var cur *txtarFile
	for _, line := range strings.SplitAfter(string(data), "\n") {
		l := strings.TrimRight(line, "\n")
		if strings.HasPrefix(l, "-- ") && strings.HasSuffix(l, " --") && len(l) > 6 {
			a.Files = append(a.Files, txtarFile{Name: strings.TrimSpace(l[3 : len(l)-3])})
			cur = &a.Files[len(a.Files)-1]
			continue
		}
		if cur != nil {
			cur.Data = append(cur.Data, line...)
		} else {
			a.Comment += line
		}
	}
	return a
}
