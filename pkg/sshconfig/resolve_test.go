package sshconfig

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/internal/testenv"
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
	testenv.Need(t, "ssh, the oracle for ssh_config resolution (install openssh-client)", err)
	// Whatever release it is, Resolve follows it (Env.SSH); the table's other rows are pinned
	// by TestReleaseTable.
	if o := osshFor(Env{SSH: p}); o.path == "" {
		t.Fatalf("the oracle %s is not an OpenSSH socketpipe can follow: %s", p, o.source)
	}
	return p
}

type oracleEnv struct {
	pwHome, pwUser, localHost string
	uid                       int
	ssh                       string
}

func newOracleEnv(t *testing.T) oracleEnv {
	u, err := osuser.Current()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := os.Hostname()
	p, _ := exec.LookPath("ssh")
	return oracleEnv{pwHome: u.HomeDir, pwUser: u.Username, localHost: h, uid: os.Getuid(), ssh: p}
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
	alias := first("hostkeyalias")
	if alias == "" {
		alias = first("host")
	}
	// %C as ssh computes it from what it printed (the jump host is hashed too from 9.6).
	hashed := oe.localHost + first("hostname") + first("port") + first("user")
	if j := first("proxyjump"); j != "" && osshFor(Env{SSH: oe.ssh}).v >= relJumpToken {
		hops, _ := ParseProxyJump(j)
		hashed += hops[len(hops)-1].Host
	}
	sum := sha1.Sum([]byte(hashed))
	tok := map[byte]string{'h': first("hostname"), 'r': first("user"), 'p': first("port"),
		'u': oe.pwUser, 'l': oe.localHost, 'L': short, 'd': home, 'n': first("host"),
		'i': fmt.Sprint(oe.uid), 'k': alias, 'C': hex.EncodeToString(sum[:])}
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
		data = bytes.ReplaceAll(data, []byte("@USER@"), []byte(localUserName()))
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
				args := withDir(args, dir)
				t.Run(strings.Join(args, " "), func(t *testing.T) {
					t.Parallel()
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
						Getenv: oracleGetenv(oe.pwHome), SystemDir: filepath.Join(dir, "nonexistent"),
						SSH: sshPath, MatchExec: oracleMatchExec}
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
	_, err := exec.LookPath("unshare")
	if err == nil && os.Getuid() != 0 {
		err = fmt.Errorf("not running as root (uid %d)", os.Getuid())
	}
	testenv.Need(t, "root and unshare(1), for a private mount namespace", err)
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
				args := withDir(args, dir)
				t.Run(strings.Join(args, " "), func(t *testing.T) {
					t.Parallel()
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
						Getenv: oracleGetenv(home), SystemDir: etc, SSH: sshPath, MatchExec: oracleMatchExec}
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

// oracleMatchExec runs Match exec commands as the oracle's ssh does: its environment has no
// SHELL, so /bin/sh.
func oracleMatchExec(command string) (bool, error) {
	err := exec.Command("/bin/sh", "-c", command).Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return false, nil
	}
	return err == nil, err
}

func testEnv(home string) Env {
	return Env{Home: home, User: "me", UID: 1000, LocalHost: "local.example", SystemDir: filepath.Join(home, "etc"),
		OpenSSH: "9.2",
		Getenv:  func(k string) string { return map[string]string{"HOME": home, "SOCK": "/run/agent.sock"}[k] }}
}

// resolveText resolves args against a -F file holding config (and extra files beside it).
func resolveText(t *testing.T, config string, extra map[string]string, args ...string) *Config {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{"config": []byte(config)}
	for k, v := range extra {
		files[k] = []byte(v)
	}
	writeCase(t, oracleCase{files: files}, dir)
	if strings.Contains(t.Name(), "writable") {
		for k := range extra {
			if err := os.Chmod(filepath.Join(dir, k), 0o666); err != nil {
				t.Fatal(err)
			}
		}
	}
	inv, err := ParseArgs(append([]string{"-F", filepath.Join(dir, "config")}, args...))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Resolve(inv, testEnv(dir))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResolveExecReason(t *testing.T) {
	tests := []struct {
		name, config string
		args         []string
		want         string // substring of ExecReason; "" for none
		extra        map[string]string
	}{
		{"proxycommand", "Host h\n  ProxyCommand nc %h %p\n", nil, "config line 2: ProxyCommand", nil},
		{"proxycommand none", "ProxyCommand none\n", nil, "", nil},
		{"proxyjump first", "ProxyJump j\nProxyCommand nc %h %p\n", nil, "", nil},
		{"proxycommand elsewhere", "Host other\n  ProxyCommand nc %h %p\n", nil, "", nil},
		{"proxycommand -o", "", []string{"-o", "ProxyCommand=nc %h %p"}, "command line (-o proxycommand): ProxyCommand", nil},
		{"match exec", "Match exec \"true\"\n  Port 1\n", nil, "config line 1: Match exec", nil},
		{"match final", "Host x\nMatch final\n", nil, "", nil},
		{"match canonical", "Match canonical host h\n", nil, "", nil},
		{"match user", "Match user bob\n", nil, "", nil},
		{"match localuser", "Match localuser me\n", nil, "", nil},
		{"match originalhost", "Match originalhost h\n", nil, "", nil},
		{"match negated exec", "Match !exec false\n", nil, "Match exec", nil},
		{"match exec after a failed criterion", "Match host nomatch exec false\n", nil, "", nil},
		{"match exec bad token", "Match host nomatch exec \"echo %Z\"\n", nil, "unknown key %Z", nil},
		{"match all extra", "Match all host h\n", nil, "cannot be combined", nil},
		{"match all after one", "Match host h all\n", nil, "", nil},
		{"match all after two", "Match host h user me all\n", nil, "cannot be combined", nil},
		{"match unknown criterion", "Match frob x\n", nil, "unsupported Match criterion frob", nil},
		{"match localnetwork on 9.2", "Match localnetwork 10.0.0.0/8\n", nil, "(OpenSSH 9.4 has it; the local ssh is 9.2)", nil},
		{"match version on 9.2", "Match version OpenSSH_9*\n", nil, "OpenSSH 10.0 has it", nil},
		{"match final=x", "Match final=x\n", nil, "unsupported Match criterion final=x", nil},
		{"match no value", "Match user\n", nil, "missing Match criteria for user", nil},
		{"tag on 9.2", "Tag x\n", nil, "unknown ssh_config keyword \"tag\" (OpenSSH 9.4 has it; the local ssh is 9.2)", nil},
		{"tag on 9.2 ignored", "IgnoreUnknown tag\nTag x\n", nil, "", nil},
		{"channeltimeout on 9.2", "ChannelTimeout session=5m\n", nil, "OpenSSH 9.6 has it", nil},
		{"usekeychain", "UseKeychain yes\n", nil, "", nil},
		{"usekeychain bad", "UseKeychain maybe\n", nil, "UseKeychain: unsupported option", nil},
		{"canonicalize no domains", "CanonicalizeHostname yes\n", nil, "", nil},
		{"canonicalize domains", "CanonicalizeHostname yes\nCanonicalDomains example.com\n", nil, "CanonicalDomains: resolving \"h\" is left to ssh", nil},
		{"canonicalize domains none", "CanonicalizeHostname yes\nCanonicalDomains none\n", nil, "", nil},
		{"canonicalize trailing dot", "CanonicalizeHostname always\nHostName h.example.\n", nil, "resolving \"h.example.\"", nil},
		{"canonicalize dots", "CanonicalizeHostname yes\nCanonicalDomains example.com\nHostName a.b.c\n", nil, "", nil},
		{"canonicalize proxied", "CanonicalizeHostname yes\nCanonicalDomains example.com\nProxyJump j\n", nil, "", nil},
		{"canonicalize proxied always", "CanonicalizeHostname always\nCanonicalDomains example.com\nProxyJump j\n", nil, "left to ssh", nil},
		{"canonicalize no fallback", "CanonicalizeHostname yes\nCanonicalizeFallbackLocal no\n", nil, "cannot resolve", nil},
		{"canonicalize bad domain", "CanonicalDomains -x\n", nil, "invalid domain name", nil},
		{"permitted cnames", "CanonicalizePermittedCNAMEs *.a:*.b\n", nil, "following CNAMEs", nil},
		{"permitted cnames bad", "CanonicalizePermittedCNAMEs x\n", nil, "invalid permitted CNAME", nil},
		{"refuseconnection on 9.2", "RefuseConnection no\n", nil, "OpenSSH 10.1 has it", nil},
		{"sendenv empty", "SendEnv \"\"\n", nil, "invalid environment name", nil},
		{"match host", "Match host h\n  Port 2\nMatch all\n  User u\n", nil, "", nil},
		{"controlmaster", "ControlMaster auto\n", nil, "ControlMaster auto", nil},
		{"controlpath absent", "ControlPath ~/.ssh/cm-%C\n", nil, "", nil},
		{"controlpath present", "ControlPath @DIR@/cm-%r@%h:%p\n", nil, "ControlPath ", map[string]string{"cm-me@h:22": ""}},
		{"controlpath bad token", "ControlPath ~/cm-%Z\n", nil, "unknown key %Z", nil},
		{"controlpath with master", "ControlMaster auto\nControlPath ~/.ssh/cm-%C\n", nil, "ControlMaster auto", nil},
		{"control off", "ControlMaster no\nControlPath none\n", nil, "", nil},
		{"localcommand", "LocalCommand echo hi\n", nil, "", nil},
		{"localcommand permitted", "PermitLocalCommand yes\nLocalCommand echo hi\n", nil, "config line 2: LocalCommand", nil},
		{"knownhostscommand", "KnownHostsCommand /bin/kh %H\n", nil, "KnownHostsCommand", nil},
		{"pkcs11", "PKCS11Provider /usr/lib/p11.so\n", nil, "PKCS11Provider", nil},
		{"smartcarddevice", "SmartcardDevice /usr/lib/p11.so\n", nil, "PKCS11Provider", nil},
		{"securitykeyprovider", "SecurityKeyProvider /usr/lib/sk.so\n", nil, "SecurityKeyProvider", nil},
		{"securitykeyprovider internal", "SecurityKeyProvider internal\n", nil, "", nil},
		{"gssapi without credentials", "GSSAPIAuthentication yes\n", nil, "", nil},
		{"unknown keyword", "Host h\n  Frobnicate yes\n", nil, "config line 2: unknown ssh_config keyword \"frobnicate\"", nil},
		{"unknown keyword elsewhere", "Host other\n  Frobnicate yes\n", nil, "unknown ssh_config keyword", nil},
		{"ignoreunknown", "IgnoreUnknown Frob*,UseKeychain\nFrobnicate yes\nUseKeychain yes\n", nil, "", nil},
		{"unknown -o", "", []string{"-o", "Frobnicate=yes"}, "unknown ssh_config keyword", nil},
		{"bad port", "Host other\n  Port abc\n", nil, "config line 2: Port: bad port", nil},
		{"bad quotes", "IdentityFile \"~/a b\n", nil, "config line 1: invalid quotes", nil},
		{"no argument", "Port\n", nil, "config line 1: no argument", nil},
		{"garbage", "Port 22 23\n", nil, "garbage at end of line", nil},
		{"bad percent", "HostName %z.example\n", nil, "HostName: unknown key %z", nil},
		{"bad yes/no", "BatchMode perhaps\n", nil, "BatchMode", nil},
		{"cipher wildcard", "Ciphers aes*\n", nil, "Ciphers: unsupported algorithm", nil},
		{"cipher removal unchecked", "Ciphers -nonesuch\n", nil, "", nil},
		{"hostkey wildcard", "HostKeyAlgorithms ssh-ed25519*\n", nil, "", nil},
		{"hostkey wildcard matching nothing", "HostKeyAlgorithms nonesuch*\n", nil, "HostKeyAlgorithms: unsupported", nil},
		{"agent unset variable", "Host other\n  IdentityAgent ${NOPE}/x\n", nil, "IdentityAgent: environment variable \"NOPE\" not set", nil},
		{"agent legacy variable", "IdentityAgent $NOPE\n", nil, "", nil},
		{"connection attempts 0", "ConnectionAttempts 0\n", nil, "invalid number of ConnectionAttempts", nil},
		{"port with sign", "Port +22\n", nil, "", nil},
		{"localforward", "LocalForward 8080 localhost:80\n", nil, "LocalForward", nil},
		{"remotecommand", "RemoteCommand ls\n", nil, "RemoteCommand", nil},
		{"requesttty force", "RequestTTY force\n", nil, "RequestTTY", nil},
		{"requesttty yes", "RequestTTY yes\n", nil, "", nil},
		{"hostbased", "HostbasedAuthentication yes\n", nil, "HostbasedAuthentication", nil},
		{"tunnel", "Tunnel point-to-point\n", nil, "Tunnel", nil},
		{"forwardagent ignored", "ForwardAgent yes\nForwardX11 yes\nCompression yes\n", nil, "", nil},
		{"include", "Include @DIR@/inc/*\n", nil, "inc/a line 3: Match exec", map[string]string{"inc/a": "Port 1\n\nMatch exec true\n"}},
		{"include inactive", "Host other\n  Include @DIR@/inc/*\n", nil, "", map[string]string{"inc/a": "ProxyCommand nc\n"}},
		{"include writable by others", "Include @DIR@/inc/*\n", nil, "bad owner or permissions on", map[string]string{"inc/a": "Port 1\n"}},
		{"include depth", "Include @DIR@/config\n", nil, "too many recursive", nil},
		{"include fan-out", "Include @DIR@/inc/*\n", nil, "too many recursive", map[string]string{
			"inc/a": "Include @DIR@/inc/*\n", "inc/b": "Include @DIR@/inc/*\n", "inc/c": "Include @DIR@/inc/*\n"}},
		{"host on the command line", "", []string{"-o", "Host=x"}, "Host is not allowed", nil},
		{"missing -F file", "", []string{"-F", "/nonexistent/config"}, "cannot read config file /nonexistent/config", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := resolveText(t, tt.config, tt.extra, append(tt.args, "h")...)
			t.Logf("ExecReason: %s", c.ExecReason)
			if tt.want == "" {
				if c.ExecReason != "" {
					t.Errorf("ExecReason %q, want none", c.ExecReason)
				}
				return
			}
			if !strings.Contains(c.ExecReason, tt.want) {
				t.Errorf("ExecReason %q, want it to contain %q", c.ExecReason, tt.want)
			}
		})
	}
}

func TestResolveGSSAPIWithCredentials(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte("GSSAPIAuthentication yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := testEnv(dir)
	env.Getenv = func(k string) string {
		if k == "KRB5CCNAME" {
			return "FILE:/tmp/krb5cc_test"
		}
		return ""
	}
	c, err := Resolve(&Invocation{Host: "h", ConfigFile: cfg}, env)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.ExecReason, "GSSAPIAuthentication") {
		t.Errorf("ExecReason %q, want GSSAPIAuthentication", c.ExecReason)
	}
}

func TestResolveValues(t *testing.T) {
	c := resolveText(t, `
Host h
  HostName %h.Example.ORG
  IdentityAgent ${SOCK}
  IdentityFile ~/id_%r
  IdentityFile "~/with space"
  UserKnownHostsFile none
  SetEnv A=1 A=2 B="x y"
  ConnectTimeout 1h1s
  ServerAliveInterval 2m
  PreferredAuthentications publickey,password
  Ciphers aes256-ctr,aes128-ctr
  ProxyJump none
  ProxyCommand nc %h %p
`, nil, "-i", "/nonexistent/key", "-l", "bob", "h")
	if c.ExecReason != "" {
		t.Fatalf("ExecReason %q", c.ExecReason)
	}
	home := filepath.Dir(c.IdentityFiles[0])
	checks := []struct {
		name      string
		got, want any
	}{
		{"HostName", c.HostName, "h.example.org"},
		{"IdentityAgent", c.IdentityAgent, "/run/agent.sock"},
		{"IdentityFiles", c.IdentityFiles, []string{home + "/id_bob", home + "/with space"}},
		{"UserKnownHostsFiles", c.UserKnownHostsFiles, []string{"none"}},
		{"SetEnv", c.SetEnv, []string{"A=1", "B=x y"}},
		{"ConnectTimeout", c.ConnectTimeout.String(), "1h0m1s"},
		{"ServerAliveInterval", c.ServerAliveInterval.String(), "2m0s"},
		{"PreferredAuthentications", c.PreferredAuthentications, []string{"publickey", "password"}},
		{"Ciphers", c.Ciphers, []string{"aes256-ctr", "aes128-ctr"}},
		{"ProxyJump", c.ProxyJump, ""},
		{"User", c.User, "bob"},
		{"HostKeyAlgorithms", c.HostKeyAlgorithms, []string(nil)},
	}
	for _, ch := range checks {
		if fmt.Sprint(ch.got) != fmt.Sprint(ch.want) {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
}

func TestResolveDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := Resolve(&Invocation{Host: "Box"}, testEnv(dir))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Host: "Box", HostName: "box", Port: 22, User: "me",
		IdentityFiles: []string{dir + "/.ssh/id_rsa", dir + "/.ssh/id_ecdsa", dir + "/.ssh/id_ecdsa_sk",
			dir + "/.ssh/id_ed25519", dir + "/.ssh/id_ed25519_sk", dir + "/.ssh/id_xmss", dir + "/.ssh/id_dsa"},
		UserKnownHostsFiles:   []string{dir + "/.ssh/known_hosts", dir + "/.ssh/known_hosts2"},
		GlobalKnownHostsFiles: []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"},
		StrictHostKeyChecking: "ask", ConnectionAttempts: 1, ServerAliveCountMax: 3, AddressFamily: "any",
		PasswordAuthentication: true, KbdInteractiveAuthentication: true, PubkeyAuthentication: true,
		LogLevel: "INFO",
	}
	c.Notes, c.rel, c.osshEnv = nil, nil, Env{}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults\n got  %+v\n want %+v", c, want)
	}
	if _, err := Resolve(&Invocation{}, testEnv(dir)); err == nil {
		t.Error("Resolve without a host: no error")
	}
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		s, p string
		want bool
	}{
		{"foo", "foo", true}, {"foo", "f?o", true}, {"fo", "f?o", false}, {"foo", "*", true},
		{"", "*", true}, {"a.example.com", "*.example.com", true}, {"example.com", "*.example.com", false},
		{"abc", "a*c", true}, {"ac", "a*c", true}, {"abd", "a*c", false}, {"aXbXc", "a*b*c", true},
		{"Foo", "foo", false}, {"abc", "???", true}, {"abcd", "???", false}, {"a", "**a", true},
	}
	for _, tt := range tests {
		if got := MatchPattern(tt.s, tt.p); got != tt.want {
			t.Errorf("MatchPattern(%q, %q) = %v", tt.s, tt.p, got)
		}
	}
	for _, tt := range []struct {
		s, list string
		want    int
	}{
		{"a.b", "*.b,!x.b", 1}, {"x.b", "*.b,!x.b", -1}, {"c", "a,b", 0}, {"B", "a,b", 1},
	} {
		if got := matchPatternList(tt.s, tt.list, true); got != tt.want {
			t.Errorf("matchPatternList(%q, %q) = %d, want %d", tt.s, tt.list, got, tt.want)
		}
	}
}

func TestArgvSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`a b`, []string{"a", "b"}},
		{`"a b" c`, []string{"a b", "c"}},
		{`'a "b"' c`, []string{`a "b"`, "c"}},
		{`a\ b`, []string{"a b"}},
		{`a\"b`, []string{`a"b`}},
		{`a\xb`, []string{`a\xb`}},
		{`a # comment`, []string{"a"}},
		{`a#b`, []string{"a#b"}},
		{"\ta\t b ", []string{"a", "b"}},
		{`""`, []string{""}},
	}
	for _, tt := range tests {
		got, err := argvSplit(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("argvSplit(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := argvSplit(`"a b`); err == nil {
		t.Error(`argvSplit("a b): no error`)
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "10": 10, "10s": 10, "1m": 60, "1h30m": 5400, "1w": 604800, "none": 0, "2D": 172800} {
		if got, err := parseTime(in); err != nil || got != want {
			t.Errorf("parseTime(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "1x", "-1", "99999999999"} {
		if _, err := parseTime(in); err == nil {
			t.Errorf("parseTime(%q): no error", in)
		}
	}
}

func TestAssembleAlgorithms(t *testing.T) {
	const def, all = "a,b,c", "a,b,c,d,e1,e2"
	for spec, want := range map[string]string{
		"+d": "a,b,c,d", "+e*": "a,b,c,e1,e2", "-b": "a,c", "-a,c": "b", "-b,c": "a", "-*": "",
		"^d,c": "d,c,a,b", "^c": "c,a,b", "e2,a": "e2,a", "x,b": "b",
	} {
		got, err := assembleAlgorithms(spec, def, all)
		if err != nil || got != want {
			t.Errorf("assembleAlgorithms(%q) = %q, %v; want %q", spec, got, err, want)
		}
	}
	for _, spec := range []string{"x", "!a"} {
		if _, err := assembleAlgorithms(spec, def, all); err == nil {
			t.Errorf("assembleAlgorithms(%q): no error", spec)
		}
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{
		"Host h\n  Port 2\n", "Match host h,!x\n  User u\nMatch all\n", "Host *\n  IdentityFile ~/%h\n",
		"Include conf.d/*\n", "Match exec true\n", "HostName %h.%%\n", "SetEnv A=\"b c\"\n",
		"Ciphers -aes*\nMACs ^hmac-sha1\n", "Port=\"22\"\n", "IgnoreUnknown x\nx y\n", "\"\n",
		"Match originalhost h user me\n  Port 3\n", "Match final\n  Port 4\nMatch !canonical host h\n",
		"CanonicalizeHostname yes\nCanonicalDomains a.example\nCanonicalizeMaxDots 0\n",
		"Tag t\nMatch tagged t localnetwork 127.0.0.0/8\n", "Match version OpenSSH_9* sessiontype shell command \"\"\n",
		"User %u-${HOME}\nIdentityFile ~/%C_%j\nProxyJump a,b:2\n", "UseKeychain yes\nIgnoreUnknown Frob\nFrob 1\n",
		"KexAlgorithms +mlkem768x25519-sha256\nHostKeyAlgorithms -ssh-dss*\n", "Match host h all\nRefuseConnection x\n",
	} {
		f.Add(s, "h")
	}
	f.Fuzz(func(t *testing.T, config, host string) {
		// An Include could name any file, even /dev/tty: keep includes inside the test home
		// (tokens and ${VAR} in Include paths expand from 9.9).
		if strings.Contains(strings.ToLower(config), "include") && strings.ContainsAny(config, "/~.%$") {
			return
		}
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, ".ssh", "conf.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ".ssh", "config"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ".ssh", "conf.d", "a"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		// Each input is read as one of the releases the table knows; Env.OpenSSH keeps ssh
		// binaries out of it, and without MatchExec no command is run.
		env := testEnv(dir)
		env.OpenSSH = releaseName(osshReleases[len(config)%len(osshReleases)])
		inv := &Invocation{Host: host}
		c, err := Resolve(inv, env)
		if host == "" {
			if err == nil {
				t.Fatal("no error for an empty host")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteG(io.Discard); err != nil {
			t.Fatal(err)
		}
	})
}

// localUserName is the user the tests run as: the default remote user of the oracle's ssh.
func localUserName() string {
	u, err := osuser.Current()
	if err != nil {
		return "nobody"
	}
	return u.Username
}

func withDir(args []string, dir string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(strings.ReplaceAll(a, "@DIR@", dir), "@USER@", localUserName())
	}
	return out
}

// TestOracleThisMachine compares DefaultEnv's resolution with ssh -G on this machine's own
// files (~/.ssh/config, /etc/ssh/ssh_config and what they include), as the user would run it.
func TestOracleThisMachine(t *testing.T) {
	sshPath := requireSSH(t)
	oe := newOracleEnv(t)
	for _, args := range [][]string{{"socketpipe-oracle.invalid"}, {"-p", "2022", "-l", "someone", "Other.Invalid"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			inv, err := ParseArgs(args)
			if err != nil {
				t.Fatal(err)
			}
			env := DefaultEnv()
			env.CacheDir = t.TempDir() // not the user's cache
			cfg, err := Resolve(inv, env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ExecReason != "" {
				testenv.Need(t, "a configuration socketpipe resolves in-process", fmt.Errorf("this machine's configuration needs ssh: %s", cfg.ExecReason))
			}
			cmd := exec.Command(sshPath, append([]string{"-G"}, args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ssh -G %q: %v: %s", args, err, stderr.String())
			}
			got := parseG(string(out))
			normalizeSSH(t, got, oe, oe.pwHome)
			compareG(t, rebuild(got), cfg)
		})
	}
}

// TestOracleRandom compares with ssh -G over configurations generated from the keywords
// socketpipe honours (fixed seed, so a failure is reproducible; ORACLE_RANDOM=n runs n).
func TestOracleRandom(t *testing.T) {
	sshPath := requireSSH(t)
	oe := newOracleEnv(t)
	n := 60
	if s := os.Getenv("ORACLE_RANDOM"); s != "" {
		fmt.Sscan(s, &n)
	}
	if testing.Short() {
		n = 20
	}
	lists := osshFor(Env{SSH: sshPath}).algorithms("")
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	hosts := []string{"a", "b", "ab", "abc", "AB", "x.example.com"}
	pattern := func() string {
		p := pick("a", "b", "ab", "a*", "*b", "?b", "a?c", "*", "*.example.com", "AB", "x*")
		if rng.IntN(5) == 0 {
			p = "!" + p
		}
		return p
	}
	algo := func(all string) string {
		names := strings.Split(all, ",")
		n1, n2 := names[rng.IntN(len(names))], names[rng.IntN(len(names))]
		switch rng.IntN(5) {
		case 0:
			return "+" + n1
		case 1:
			return "-" + n1[:1+rng.IntN(len(n1))] + "*"
		case 2:
			return "^" + n1 + "," + n2
		}
		return n1 + "," + n2
	}
	value := func(kw string) string {
		switch kw {
		case "Port", "ConnectionAttempts", "ServerAliveCountMax":
			if rng.IntN(10) == 0 {
				return pick("0", "-1", "65536", "abc", "1x", "007", "+5", "99999999999")
			}
			return fmt.Sprint(1 + rng.IntN(3000))
		case "User":
			return pick("alice", "bob", "c_d", "e.f")
		case "HostName":
			return pick("%h.lan", "Real.Example", "%h", "10.0.0.1", "%%h%h", "127.1", "0:0::1", "FE80::1", "Ä.example")
		case "IdentityFile", "CertificateFile":
			return pick("~/.ssh/k_%h", "~/.ssh/k_%r_%p", "/keys/%u", "~/.ssh/k", "%d/k_%l")
		case "UserKnownHostsFile":
			return pick("~/.ssh/kh", "~/kh_%h ~/kh2", "/kh/%r", "none")
		case "GlobalKnownHostsFile":
			return pick("/etc/kh", "/etc/kh1 /etc/kh2")
		case "IdentityAgent":
			return pick("none", "~/agent_%h", "/run/agent.sock")
		case "StrictHostKeyChecking":
			return pick("yes", "no", "ask", "accept-new", "off", "true", "false")
		case "AddressFamily":
			return pick("any", "inet", "inet6")
		case "ConnectTimeout", "ServerAliveInterval":
			return pick("5", "1m", "2h3s", "none", "90")
		case "BindAddress":
			return pick("127.0.0.1", "::1")
		case "PreferredAuthentications":
			return pick("publickey", "publickey,password", "keyboard-interactive,publickey")
		case "PubkeyAuthentication", "IdentitiesOnly", "CheckHostIP", "BatchMode", "HashKnownHosts",
			"PasswordAuthentication", "KbdInteractiveAuthentication":
			return pick("yes", "no")
		case "Ciphers":
			return algo(lists.AllCiphers)
		case "MACs":
			return algo(lists.AllMACs)
		case "KexAlgorithms":
			return algo(lists.AllKex)
		case "HostKeyAlgorithms":
			return algo(lists.AllHostKeys)
		case "SetEnv":
			return pick("A=1", "B=2 C=3", `D="x y"`, "A=9")
		case "SendEnv":
			return pick("LANG", "LC_*", "-LC_*", "X Y", "-X")
		case "ProxyJump":
			return pick("j1", "u@j2:2022", "j1,j2", "none")
		case "HostKeyAlias":
			return pick("alias1", "alias2")
		case "LogLevel":
			return pick("ERROR", "VERBOSE", "DEBUG2", "QUIET", "INFO")
		case "CanonicalizeHostname":
			return pick("yes", "no", "always", "true")
		case "CanonicalizeMaxDots":
			return pick("0", "1", "2")
		}
		panic(kw)
	}
	kws := []string{"Port", "ConnectionAttempts", "ServerAliveCountMax", "User", "HostName",
		"IdentityFile", "CertificateFile", "UserKnownHostsFile", "GlobalKnownHostsFile",
		"IdentityAgent", "StrictHostKeyChecking", "AddressFamily", "ConnectTimeout",
		"ServerAliveInterval", "BindAddress", "PreferredAuthentications", "PubkeyAuthentication",
		"IdentitiesOnly", "CheckHostIP", "BatchMode", "HashKnownHosts", "PasswordAuthentication",
		"KbdInteractiveAuthentication", "Ciphers", "MACs", "KexAlgorithms", "HostKeyAlgorithms",
		"SetEnv", "SendEnv", "ProxyJump", "HostKeyAlias", "LogLevel", "CanonicalizeHostname",
		"CanonicalizeMaxDots"}

	dir := t.TempDir()
	// lines writes up to max random lines; Include lines name files of the same run.
	lines := func(max int, incDir string) string {
		var b strings.Builder
		for l := rng.IntN(max); l > 0; l-- {
			switch rng.IntN(9) {
			case 8:
				fmt.Fprintf(&b, "Include %s\n", filepath.Join(incDir, pick("f0", "f1", "f*", "missing", "f?")))
				continue
			case 0:
				fmt.Fprintf(&b, "Host %s %s\n", pattern(), pattern())
			case 1:
				var crit []string
				for k := 1 + rng.IntN(2); k > 0; k-- {
					neg := pick("", "", "!")
					switch c := pick("host", "host", "originalhost", "user", "localuser", "canonical", "final", "exec"); c {
					case "host", "originalhost":
						crit = append(crit, neg+c+" "+strings.TrimPrefix(pattern(), "!")+","+pattern())
					case "user":
						crit = append(crit, neg+c+" "+pick("alice", "bob,carol", "*", localUserName(), "d*"))
					case "localuser":
						crit = append(crit, neg+c+" "+pick(localUserName(), "nobody", "r*,!x"))
					case "canonical", "final":
						crit = append(crit, neg+c)
					case "exec":
						crit = append(crit, neg+c+" "+pick("true", "false", `"test %h = a"`, `"test %r = alice"`, `"test %p -gt 1000"`, `"test %n = ab"`))
					}
				}
				m := strings.Join(crit, " ")
				switch rng.IntN(8) {
				case 0:
					m = "all"
				case 1:
					m = crit[0] + " all"
				}
				fmt.Fprintf(&b, "Match %s\n", m)
			case 2:
				if rng.IntN(4) == 0 {
					// Lines ssh refuses: socketpipe must leave them to ssh.
					fmt.Fprintf(&b, "%s\n", pick("Frobnicate yes", "BatchMode maybe", "Port", "Host",
						"ConnectTimeout 1x", `User "unterminated`, "AddressFamily inet5", "StrictHostKeyChecking sometimes",
						"LogLevel LOUD", "SetEnv NOEQUALS", "SendEnv A=B", "Ciphers nonesuch", "MACs +nonesuch",
						"KexAlgorithms !curve25519-sha256", "Match", "Match host", "Match all all",
						"HostName %z", "IdentityAgent $1BAD", "ServerAliveInterval -5", "PubkeyAuthentication maybe"))
					continue
				}
				fallthrough
			default:
				kw := kws[rng.IntN(len(kws))]
				sep := pick(" ", "=", " = ", "\t")
				fmt.Fprintf(&b, "%s%s%s%s\n", pick("  ", "", "\t"), pick(kw, strings.ToLower(kw), strings.ToUpper(kw)), sep, value(kw))
			}
		}
		return b.String()
	}
	for i := 0; i < n; i++ {
		incDir := filepath.Join(dir, fmt.Sprint("inc", i))
		if err := os.MkdirAll(incDir, 0o755); err != nil {
			t.Fatal(err)
		}
		config := lines(12, incDir)
		for _, f := range []string{"f0", "f1"} {
			if rng.IntN(2) == 0 {
				inc := lines(6, incDir)
				config += "# " + f + ":\n#   " + strings.ReplaceAll(inc, "\n", "\n#   ") + "\n"
				if err := os.WriteFile(filepath.Join(incDir, f), []byte(inc), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		file := filepath.Join(dir, fmt.Sprintf("config%d", i))
		if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"-F", file}
		for o := rng.IntN(4); o > 0; o-- {
			switch rng.IntN(6) {
			case 0:
				args = append(args, "-p", fmt.Sprint(1+rng.IntN(3000)))
			case 1:
				args = append(args, "-l", pick("carol", "dave"))
			case 2:
				args = append(args, pick("-4", "-6", "-v", "-q", "-vv"))
			default:
				kw := kws[rng.IntN(len(kws))]
				args = append(args, "-o", kw+"="+value(kw))
			}
		}
		args = append(args, pick(hosts...))
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			defer func() {
				if os.Getenv("ORACLE_SHOW") != "" || t.Failed() {
					t.Logf("args %q, config:\n%s", args, config)
				}
			}()
			cmd := exec.Command(sshPath, append([]string{"-G"}, args...)...)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + oe.pwHome}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, sshErr := cmd.Output()
			inv, err := ParseArgs(args)
			if err != nil {
				t.Fatalf("ParseArgs(%q): %v", args, err)
			}
			env := Env{Home: oe.pwHome, User: oe.pwUser, UID: oe.uid, LocalHost: oe.localHost,
				Getenv: oracleGetenv(oe.pwHome), SystemDir: filepath.Join(dir, "nonexistent"), SSH: sshPath,
				MatchExec: oracleMatchExec}
			cfg, err := Resolve(inv, env)
			if err != nil {
				t.Fatal(err)
			}
			agreeWithSSH(t, cfg, sshErr, stderr.String(), out, oe)
		})
	}
}

func TestCanonicalHost(t *testing.T) {
	// What ssh -G prints as hostname for these HostName values (OpenSSH 9.2, glibc).
	for _, tt := range []struct{ in, family, want string }{
		{"Foo.EXAMPLE.com", "any", "foo.example.com"}, {"%hX", "any", "%hX"}, {"A:B", "any", "A:B"},
		{"A_B", "any", "a_b"}, {"Ä", "any", "Ä"}, {"127.1", "any", "127.0.0.1"},
		{"0x7f.1", "any", "127.0.0.1"}, {"0X7F.1", "any", "127.0.0.1"}, {"010.0.0.1", "any", "8.0.0.1"},
		{"1.2.3", "any", "1.2.0.3"}, {"12", "any", "0.0.0.12"}, {"999.1.1.1", "any", "999.1.1.1"},
		{"1e100", "any", "1e100"}, {"a1.2", "any", "a1.2"}, {"0:0::1", "any", "::1"},
		{"FE80::1", "any", "FE80::1"}, {"::FFFF:1.2.3.4", "any", "::FFFF:1.2.3.4"},
		{"0:0::1", "inet", "0:0::1"}, {"0x7F.1", "inet6", "0x7f.1"}, {"1.2.3.4", "any", "1.2.3.4"},
	} {
		if got := canonicalHost(tt.in, tt.family); got != tt.want {
			t.Errorf("canonicalHost(%q, %s) = %q, want %q", tt.in, tt.family, got, tt.want)
		}
	}
}

func TestResolveConfigFileNone(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{filepath.Join(dir, ".ssh", "config"), filepath.Join(dir, "etc", "ssh_config")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("Port 2\nProxyCommand nc %h %p\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for cf, port := range map[string]int{"none": 22, "NONE": 22, "": 2} {
		c, err := Resolve(&Invocation{Host: "h", ConfigFile: cf}, testEnv(dir))
		if err != nil {
			t.Fatal(err)
		}
		if c.Port != port || (c.ExecReason == "") != (port == 22) {
			t.Errorf("-F %q: port %d, ExecReason %q", cf, c.Port, c.ExecReason)
		}
	}
}

// agreeWithSSH checks a resolved configuration against what ssh -G said of the same input:
// ssh refused it, so socketpipe must hand the login to ssh; or ssh accepted it, so socketpipe
// must resolve every keyword it honours to ssh's value.
func agreeWithSSH(t *testing.T, cfg *Config, sshErr error, sshStderr string, out []byte, oe oracleEnv) {
	t.Helper()
	if sshErr != nil {
		if cfg.ExecReason == "" {
			t.Errorf("ssh -G failed (%v: %s) but ExecReason is empty", sshErr, sshStderr)
		}
		return
	}
	if cfg.ExecReason != "" {
		t.Errorf("ExecReason %q, but ssh -G accepted it", cfg.ExecReason)
		return
	}
	got := parseG(string(out))
	normalizeSSH(t, got, oe, oe.pwHome)
	compareG(t, rebuild(got), cfg)
}
