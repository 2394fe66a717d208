package sshconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/testenv"
)

// resolveAt resolves args against config as OpenSSH version would read it.
func resolveAt(t *testing.T, version, config string, args ...string) *Config {
	t.Helper()
	dir := t.TempDir()
	writeCase(t, oracleCase{files: map[string][]byte{"config": []byte(config)}}, dir)
	inv, err := ParseArgs(append([]string{"-F", filepath.Join(dir, "config")}, args...))
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv(dir)
	env.OpenSSH = version
	c, err := Resolve(inv, env)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReleaseKeywords pins, release by release, which keywords and Match criteria the table
// says ssh accepts: a newer one is an unknown keyword to an older ssh.
func TestReleaseKeywords(t *testing.T) {
	for _, tt := range []struct {
		line  string
		since int // 0: every release
	}{
		{"SessionType default", 0},
		{"StdinNull no", 0},
		{"KnownHostsCommand none", 0},
		{"RequiredRSASize 2048", 901},
		{"EnableEscapeCommandline no", 902},
		{"Tag work", 904},
		{"ObscureKeystrokeTiming yes", 905},
		{"ChannelTimeout session=5m", 906},
		{"VersionAddendum none", 1000},
		{"WarnWeakCrypto yes", 1001},
		{"Match localnetwork 198.51.100.0/24", 904},
		{"Match tagged x", 904},
		{"Match version OpenSSH_1*", 1000},
		{"Match sessiontype exec", 1000},
		{"Match command ls", 1000},
		{"Match originalhost h user me", 0},
		{"UseKeychain yes", 0}, // Apple's, accepted everywhere
	} {
		for _, v := range osshReleases {
			c := resolveAt(t, releaseName(v), tt.line+"\n", "h")
			refused := c.ExecReason != ""
			if want := v < tt.since; refused != want {
				t.Errorf("OpenSSH %s, %q: ExecReason %q, want refused=%v", releaseName(v), tt.line, c.ExecReason, want)
			}
		}
	}
	c := resolveAt(t, "9.3", "IgnoreUnknown Tag,ObscureKeystrokeTiming\nTag x\nObscureKeystrokeTiming yes\n", "h")
	if c.ExecReason != "" {
		t.Errorf("IgnoreUnknown does not cover keywords newer than the release: %q", c.ExecReason)
	}
	c = resolveAt(t, "10.1", "RefuseConnection maintenance\n", "h")
	if !strings.Contains(c.ExecReason, "RefuseConnection: maintenance") {
		t.Errorf("RefuseConnection: ExecReason %q", c.ExecReason)
	}
}

// TestReleaseLists pins facts of the table's algorithm lists and default identities.
func TestReleaseLists(t *testing.T) {
	has := func(list, name string) bool { return slices.Contains(strings.Split(list, ","), name) }
	first := func(list string) string { f, _, _ := strings.Cut(list, ","); return f }
	for _, v := range osshReleases {
		l := tableLists(v)
		name := releaseName(v)
		checks := []struct {
			what string
			got  bool
			want bool
		}{
			{"kex default sntrup761x25519-sha512@openssh.com", has(l.Kex, "sntrup761x25519-sha512@openssh.com"), true},
			{"kex default sntrup761x25519-sha512 (9.9)", has(l.Kex, "sntrup761x25519-sha512"), v >= 909},
			{"kex default mlkem768x25519-sha256 (9.9)", has(l.Kex, "mlkem768x25519-sha256"), v >= 909},
			{"kex default led by mlkem768x25519-sha256 (10.0)", first(l.Kex) == "mlkem768x25519-sha256", v >= 1000},
			{"kex mlkem768nistp256-sha256 supported (10.5)", has(l.AllKex, "mlkem768nistp256-sha256"), v >= 1005},
			{"kex mlkem768nistp256-sha256 not a default", has(l.Kex, "mlkem768nistp256-sha256"), false},
			{"ciphers: AES-GCM before AES-CTR (10.0)", strings.Index(l.Ciphers, "gcm") < strings.Index(l.Ciphers, "ctr"), v >= 1000},
			{"ssh-dss supported (default builds until 9.7)", has(l.AllHostKeys, "ssh-dss"), v < 908},
			{"webauthn certificates (10.3)", has(l.AllHostKeys, "webauthn-sk-ecdsa-sha2-nistp256-cert-v01@openssh.com"), v >= 1003},
			{"webauthn in default host keys (10.3)", has(l.HostKeys, "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"), v >= 1003},
			{"ML-DSA-44 keys (10.4)", has(l.AllHostKeys, "ssh-mldsa44-ed25519@openssh.com"), v >= 1004},
			{"ssh-rsa (SHA-1) supported, not a default", has(l.AllHostKeys, "ssh-rsa") && !has(l.HostKeys, "ssh-rsa"), true},
			{"3des-cbc supported, not a default", has(l.AllCiphers, "3des-cbc") && !has(l.Ciphers, "3des-cbc"), true},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("OpenSSH %s: %s: %v, want %v", name, c.what, c.got, c.want)
			}
		}
		// Every default is supported.
		for _, p := range [][2]string{{l.Ciphers, l.AllCiphers}, {l.MACs, l.AllMACs}, {l.Kex, l.AllKex}, {l.HostKeys, l.AllHostKeys}} {
			for _, a := range strings.Split(p[0], ",") {
				if !has(p[1], a) {
					t.Errorf("OpenSSH %s: default %s is not in the supported list", name, a)
				}
			}
		}
		ids := strings.Join(defaultIdentityFiles(v), " ")
		for _, c := range []struct {
			file string
			want bool
		}{{"id_dsa", v < 908}, {"id_xmss", v < 1001}, {"id_mldsa44_ed25519", v >= 1005}, {"id_ed25519_sk", true}} {
			if got := strings.Contains(ids, "/"+c.file+" ") || strings.HasSuffix(ids, "/"+c.file); got != c.want {
				t.Errorf("OpenSSH %s: default identity %s: %v, want %v (%s)", name, c.file, got, c.want, ids)
			}
		}
		if got := strings.Contains(pathTokens(v), "j"); got != (v >= 906) {
			t.Errorf("OpenSSH %s: %%j is a token: %v", name, got)
		}
	}
	// Debian 12's ssh -Q kex and ssh -G kexalgorithms (9.2p1-2+deb12u10) are 9.2's plus the
	// sntrup761x25519-sha512 name, which Debian backported.
	debian := "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha1,diffie-hellman-group-exchange-sha256,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,curve25519-sha256,curve25519-sha256@libssh.org,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com"
	if got := strings.Replace(debian, "sntrup761x25519-sha512,", "", 1); got != tableLists(902).AllKex {
		t.Errorf("9.2 kex:\n got  %s\n want %s", tableLists(902).AllKex, got)
	}
}

func TestParseOpenSSH(t *testing.T) {
	for _, tt := range []struct {
		in      string
		v       int
		release string
	}{
		{"OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026\n", 902, "OpenSSH_9.2p1 Debian-2+deb12u10"},
		{"OpenSSH_9.8p1, LibreSSL 3.3.6", 908, "OpenSSH_9.8p1"}, // macOS
		{"OpenSSH_9.6p1 Ubuntu-3ubuntu13.5, OpenSSL 3.0.13 30 Jan 2024", 906, "OpenSSH_9.6p1 Ubuntu-3ubuntu13.5"},
		{"OpenSSH_10.0p2", 1000, "OpenSSH_10.0p2"},
		{"OpenSSH_9.7p1, OpenSSL 3.0.15 3 Sep 2024", 907, "OpenSSH_9.7p1"}, // FreeBSD 14
		{"9.2", 902, "OpenSSH_9.2"},
		{"10.1p1", 1001, "OpenSSH_10.1p1"},
	} {
		v, rel, err := parseOpenSSH(tt.in)
		if err != nil || v != tt.v || rel != tt.release {
			t.Errorf("parseOpenSSH(%q) = %d, %q, %v; want %d, %q", tt.in, v, rel, err, tt.v, tt.release)
		}
	}
	for _, in := range []string{"", "Dropbear v2022.83", "OpenSSH_x.y", "OpenSSH_9", "PuTTY Release 0.78", "OpenSSH_9.999"} {
		if _, _, err := parseOpenSSH(in); err == nil {
			t.Errorf("parseOpenSSH(%q): no error", in)
		}
	}
	for in, want := range map[int]int{809: 900, 900: 900, 907: 907, 1005: 1005, 1100: 1005, 1010: 1005} {
		if got := tableRelease(in); got != want {
			t.Errorf("tableRelease(%d) = %d, want %d", in, got, want)
		}
	}
}

// fakeSSH writes an ssh that answers -V with version, -G and -Q with lists, and logs its
// arguments to the returned file.
func fakeSSH(t *testing.T, dir, version string) (path, log string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "ssh")
	log = filepath.Join(dir, "ssh.log")
	script := `#!/bin/sh
echo "$*" >> '` + log + `'
case "$1" in
-V) echo "` + version + `" >&2 ;;
-G) printf 'host %s\nciphers aes256-ctr\nmacs hmac-sha2-256\nkexalgorithms curve25519-sha256\nhostkeyalgorithms ssh-ed25519\n' "$4" ;;
-Q) case "$2" in
    cipher) printf 'aes256-ctr\naes128-ctr\n' ;;
    mac) printf 'hmac-sha2-256\n' ;;
    kex) printf 'curve25519-sha256\nfake-kex@example\n' ;;
    *) printf 'ssh-ed25519\n' ;;
    esac ;;
esac
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, log
}

func readLog(t *testing.T, log string) []string {
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// The release is asked only when something depends on it, and once: a configuration of
// common keywords runs no ssh at all; a newer keyword runs ssh -V; -G output asks for the
// lists, which come from the binary.
func TestReleaseAskedLazily(t *testing.T) {
	dir := t.TempDir()
	sshPath, log := fakeSSH(t, filepath.Join(dir, "bin"), "OpenSSH_9.6p1 Fake-1, OpenSSL 3")
	cfg := filepath.Join(dir, "config")
	common := "Include " + dir + "/none/*\nHost h\n  HostName h.example\n  User u\n  Port 2222\n  IdentityFile ~/.ssh/k\n  SendEnv LANG\n  Ciphers aes128-ctr,aes256-ctr\nHost *\n  ServerAliveInterval 30\n  ControlPath ~/.ssh/cm-%C\n"
	if err := os.WriteFile(cfg, []byte(common), 0o644); err != nil {
		t.Fatal(err)
	}
	env := testEnv(dir)
	env.OpenSSH, env.SSH, env.CacheDir = "", sshPath, filepath.Join(dir, "cache")
	c, err := Resolve(&Invocation{Host: "h", ConfigFile: cfg}, env)
	if err != nil || c.ExecReason != "" {
		t.Fatalf("Resolve: %v, %q", err, c.ExecReason)
	}
	if l := readLog(t, log); l != nil {
		t.Errorf("a common configuration ran ssh: %q", l)
	}
	if err := os.WriteFile(cfg, []byte("Tag x\n"+common), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = Resolve(&Invocation{Host: "h", ConfigFile: cfg}, env)
	if err != nil || c.ExecReason != "" {
		t.Fatalf("Resolve with Tag on 9.6: %v, %q", err, c.ExecReason)
	}
	if l := readLog(t, log); !slices.Equal(l, []string{"-V"}) {
		t.Errorf("ssh runs: %q, want one -V", l)
	}
	if !slices.ContainsFunc(c.Notes, func(n string) bool { return strings.Contains(n, "following OpenSSH 9.6") }) {
		t.Errorf("Notes %q do not say which release is followed", c.Notes)
	}
	var b strings.Builder
	if err := c.WriteG(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "\nkexalgorithms curve25519-sha256\n") || !strings.Contains(b.String(), "\nmacs hmac-sha2-256\n") {
		t.Errorf("WriteG does not print the binary's own defaults:\n%s", b.String())
	}
	if l := readLog(t, log); len(l) != 6 {
		t.Errorf("ssh runs after WriteG: %q, want -V and five list queries", l)
	}
	// A later process finds both answers in the cache and runs nothing.
	osshMemo.Clear()
	os.Remove(log)
	o := osshFor(env)
	if o.v != 906 || o.algorithms(env.CacheDir).AllKex != "curve25519-sha256,fake-kex@example" {
		t.Errorf("from the cache: release %d, kex %q", o.v, o.algorithms(env.CacheDir).AllKex)
	}
	if l := readLog(t, log); l != nil {
		t.Errorf("a cached release ran ssh: %q", l)
	}
	// A new binary (another modification time) is asked again.
	osshMemo.Clear()
	sshPath, _ = fakeSSH(t, filepath.Join(dir, "bin"), "OpenSSH_10.0p2 Fake-2")
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(sshPath, later, later); err != nil {
		t.Fatal(err)
	}
	if o := osshFor(env); o.v != 1000 || o.release != "OpenSSH_10.0p2 Fake-2" {
		t.Errorf("after an upgrade: %d %q", o.v, o.release)
	}
	if l := readLog(t, log); !slices.Equal(l, []string{"-V"}) {
		t.Errorf("ssh runs after an upgrade: %q, want one -V", l)
	}
	osshMemo.Clear()
}

func TestReleaseWithoutSSH(t *testing.T) {
	o := osshFor(Env{SSH: filepath.Join(t.TempDir(), "no-such-ssh")})
	if o.v != osshNewest || !strings.Contains(o.source, "no ssh binary") {
		t.Errorf("without ssh: %d, %q", o.v, o.source)
	}
	dir := t.TempDir()
	notOpenSSH := filepath.Join(dir, "ssh")
	if err := os.WriteFile(notOpenSSH, []byte("#!/bin/sh\necho 'Dropbear v2022.83' >&2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if o := osshFor(Env{SSH: notOpenSSH}); o.v != osshNewest || !strings.Contains(o.source, "is not OpenSSH") {
		t.Errorf("not OpenSSH: %d, %q", o.v, o.source)
	}
	osshMemo.Clear()
}

// findSSH skips an ssh on PATH that is socketpipe itself (here: the test binary).
func TestFindSSHSkipsSelf(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	selfDir, otherDir := filepath.Join(dir, "self"), filepath.Join(dir, "other")
	if err := os.MkdirAll(selfDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(selfDir, "ssh")); err != nil {
		t.Fatal(err)
	}
	other, _ := fakeSSH(t, otherDir, "OpenSSH_9.9p1")
	t.Setenv("PATH", selfDir+string(filepath.ListSeparator)+otherDir)
	if got, err := findSSH(""); err != nil || got != other {
		t.Errorf("findSSH = %q, %v; want %q", got, err, other)
	}
	t.Setenv("PATH", selfDir)
	if got, err := findSSH(""); err == nil {
		t.Errorf("findSSH with only a link to itself = %q", got)
	}
}

// RealSSH skips every copy of this program on PATH, not only its own file (a copy of the test
// binary here), and directories that are not absolute: an empty entry or "." means the current
// directory, which exec.LookPath refuses too (exec.ErrDot).
func TestRealSSHSkipsEveryCopy(t *testing.T) {
	dir := t.TempDir()
	copyDir, cwd, otherDir := filepath.Join(dir, "copy"), filepath.Join(dir, "cwd"), filepath.Join(dir, "other")
	os.Mkdir(copyDir, 0o755)
	testenv.CopySelf(t, copyDir, "ssh")
	fakeSSH(t, cwd, "OpenSSH_9.9p1")
	other, _ := fakeSSH(t, otherDir, "OpenSSH_9.9p1")
	t.Chdir(cwd)
	sep := string(filepath.ListSeparator)
	t.Setenv("PATH", sep+"."+sep+copyDir+sep+otherDir)
	if got := RealSSH(); got != other {
		t.Errorf("RealSSH() = %q, want %q", got, other)
	}
	t.Setenv("PATH", copyDir+sep+sep+".")
	if got := RealSSH(); got != "" {
		t.Errorf("RealSSH() with only a copy of itself and the current directory = %q, want none", got)
	}
}

func TestUseKeychainNote(t *testing.T) {
	c := resolveAt(t, "9.2", "Host *\n  UseKeychain yes\n  AddKeysToAgent yes\n", "h")
	if c.ExecReason != "" {
		t.Fatalf("ExecReason %q", c.ExecReason)
	}
	if !slices.ContainsFunc(c.Notes, func(n string) bool { return strings.Contains(n, "UseKeychain") && strings.Contains(n, "no effect") }) {
		t.Errorf("Notes %q do not say UseKeychain has no effect", c.Notes)
	}
	c = resolveAt(t, "9.2", "Host other\n  UseKeychain yes\n", "h")
	if slices.ContainsFunc(c.Notes, func(n string) bool { return strings.Contains(n, "UseKeychain") }) {
		t.Errorf("an inactive UseKeychain is noted: %q", c.Notes)
	}
}

// Match exec runs through Env.MatchExec with the tokens of the configuration so far, and not
// at all once a criterion before it failed.
func TestMatchExecRuns(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	config := "Host h\n  HostName real.h\n  Port 2200\nMatch host nomatch exec \"never %h\"\n  User bad\nMatch exec \"probe %h %p %r %n %%\"\n  User good\nMatch !exec \"fail\"\n  ConnectionAttempts 3\n"
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var ran []string
	env := testEnv(dir)
	env.MatchExec = func(cmd string) (bool, error) {
		ran = append(ran, cmd)
		return !strings.HasPrefix(cmd, "fail"), nil
	}
	c, err := Resolve(&Invocation{Host: "h", ConfigFile: cfg}, env)
	if err != nil || c.ExecReason != "" {
		t.Fatalf("%v %q", err, c.ExecReason)
	}
	if want := []string{"probe real.h 2200 me h %", "fail"}; !slices.Equal(ran, want) {
		t.Errorf("ran %q, want %q", ran, want)
	}
	if c.User != "good" || c.ConnectionAttempts != 3 {
		t.Errorf("User %q ConnectionAttempts %d", c.User, c.ConnectionAttempts)
	}
	env.MatchExec = nil
	if c, _ := Resolve(&Invocation{Host: "h", ConfigFile: cfg}, env); !strings.Contains(c.ExecReason, "line 6: Match exec is not run in-process") {
		t.Errorf("without MatchExec: ExecReason %q", c.ExecReason)
	}
}

// Behaviour that changed between releases, each on both sides of the change.
func TestReleaseBehaviour(t *testing.T) {
	for _, tt := range []struct {
		name, version, config string
		args                  []string
		check                 func(c *Config) string
	}{
		{"%j unknown on 9.5", "9.5", "ProxyJump j1\nIdentityFile ~/k_%j\n", nil, func(c *Config) string {
			return want(strings.Contains(c.ExecReason, "unknown key %j"), "an ExecReason for %%j: %q", c.ExecReason)
		}},
		{"%j on 9.6", "9.6", "ProxyJump u@j1:22\nIdentityFile ~/k_%j\n", nil, func(c *Config) string {
			return want(c.ExecReason == "" && strings.HasSuffix(c.IdentityFiles[0], "/k_j1"), "%q %q", c.ExecReason, c.IdentityFiles)
		}},
		{"%C hashes the jump host from 9.6", "9.6", "ProxyJump j1\nIdentityFile ~/%C\n", nil, func(c *Config) string {
			c92 := resolveAt(t, "9.2", "ProxyJump j1\nIdentityFile ~/%C\n", "h")
			return want(filepath.Base(c.IdentityFiles[0]) != filepath.Base(c92.IdentityFiles[0]), "9.2 and 9.6 hash the same: %q", c.IdentityFiles)
		}},
		{"User tokens on 9.9", "9.9", "User %u-x\n", nil, func(c *Config) string {
			return want(c.User == "%u-x", "User %q", c.User)
		}},
		{"User tokens on 10.0", "10.0", "User %u-x\n", nil, func(c *Config) string {
			return want(c.User == "me-x", "User %q", c.User)
		}},
		{"User VAR on 10.1", "10.1", "User ${HOME}\n", nil, func(c *Config) string {
			return want(c.ExecReason == "" && strings.HasPrefix(c.User, "/"), "User %q, %q", c.User, c.ExecReason)
		}},
		{"-l not expanded on 10.1", "10.1", "", []string{"-l", "a%%b"}, func(c *Config) string {
			return want(c.User == "a%%b", "User %q", c.User)
		}},
		{"-l expanded on 10.0", "10.0", "", []string{"-l", "a%%b"}, func(c *Config) string {
			return want(c.User == "a%b", "User %q", c.User)
		}},
		{"expanded User checked on 10.1", "10.1", "User ${SOCK};x\n", nil, func(c *Config) string {
			return want(strings.Contains(c.ExecReason, "invalid characters"), "ExecReason %q", c.ExecReason)
		}},
		{"Include tokens on 9.9", "9.9", "Include @DIR@/inc_%h\n", []string{"tok"}, func(c *Config) string {
			return want(c.Port == 7001, "Port %d", c.Port)
		}},
		{"Include tokens not on 9.8", "9.8", "Include @DIR@/inc_%h\n", []string{"tok"}, func(c *Config) string {
			return want(c.Port == 22, "Port %d", c.Port)
		}},
		{"negated final asks for a final pass before 10.1", "10.0", "Match !final\n  Port 1\nMatch canonical\n  User second\n", nil, func(c *Config) string {
			return want(c.User == "second" && c.Port == 1, "User %q Port %d", c.User, c.Port)
		}},
		{"negated final alone reads once from 10.1", "10.1", "Match !final\n  Port 1\nMatch canonical\n  User second\n", nil, func(c *Config) string {
			return want(c.User == "me" && c.Port == 1, "User %q Port %d", c.User, c.Port)
		}},
		{"Match tagged", "9.4", "Tag work\nMatch tagged w*\n  Port 2\n", nil, func(c *Config) string {
			return want(c.Port == 2, "Port %d", c.Port)
		}},
		{"Match tagged empty on 10.0", "10.0", "Match tagged \"\"\n  Port 3\n", nil, func(c *Config) string {
			return want(c.Port == 3 && c.ExecReason == "", "Port %d %q", c.Port, c.ExecReason)
		}},
		{"Match version", "OpenSSH_10.0p2 Debian-5", "Match version OpenSSH_10.0*\n  Port 4\n", nil, func(c *Config) string {
			return want(c.Port == 4, "Port %d", c.Port)
		}},
		{"Match command and sessiontype", "10.0", "Match sessiontype exec command \"ls -l\"\n  Port 5\nMatch sessiontype shell\n  Port 6\n", []string{"h", "ls", "-l"}, func(c *Config) string {
			return want(c.Port == 5, "Port %d", c.Port)
		}},
		{"Match sessiontype shell", "10.0", "Match sessiontype exec\n  Port 5\nMatch sessiontype shell\n  Port 6\n", nil, func(c *Config) string {
			return want(c.Port == 6, "Port %d", c.Port)
		}},
		{"Match localnetwork loopback", "9.4", "Match localnetwork 127.0.0.0/8,::1\n  Port 7\n", nil, func(c *Config) string {
			return want(c.Port == 7, "Port %d (is lo up?)", c.Port)
		}},
		{"Match localnetwork elsewhere", "9.4", "Match localnetwork 198.51.100.0/24\n  Port 7\n", nil, func(c *Config) string {
			return want(c.Port == 22, "Port %d", c.Port)
		}},
		{"Match localnetwork bad list", "9.4", "Match localnetwork 10.0.0.1/8\n", nil, func(c *Config) string {
			return want(strings.Contains(c.ExecReason, "localnetwork"), "ExecReason %q", c.ExecReason)
		}},
		{"mlkem on 9.2", "9.2", "KexAlgorithms mlkem768x25519-sha256\n", nil, func(c *Config) string {
			return want(strings.Contains(c.ExecReason, "unsupported algorithm \"mlkem768x25519-sha256\""), "ExecReason %q", c.ExecReason)
		}},
		{"mlkem on 9.9", "9.9", "KexAlgorithms mlkem768x25519-sha256\n", nil, func(c *Config) string {
			return want(c.ExecReason == "" && slices.Equal(c.KexAlgorithms, []string{"mlkem768x25519-sha256"}), "%q %q", c.ExecReason, c.KexAlgorithms)
		}},
		{"ssh-dss gone on 10.0", "10.0", "HostKeyAlgorithms +ssh-dss\n", nil, func(c *Config) string {
			return want(strings.Contains(c.ExecReason, "ssh-dss"), "ExecReason %q", c.ExecReason)
		}},
		{"a - edit on 10.0's defaults", "10.0", "KexAlgorithms -mlkem*,sntrup*\n", nil, func(c *Config) string {
			return want(len(c.KexAlgorithms) > 0 && c.KexAlgorithms[0] == "curve25519-sha256", "%q", c.KexAlgorithms)
		}},
		{"no host line before 9.2", "9.1", "", nil, func(c *Config) string {
			var b strings.Builder
			c.WriteG(&b)
			return want(!strings.Contains(b.String(), "host h\n"), "%s", b.String())
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string][]byte{"config": []byte(tt.config), "inc_tok": []byte("Port 7001\n")}
			writeCase(t, oracleCase{files: files}, dir)
			args := tt.args
			if len(args) == 0 || strings.HasPrefix(args[0], "-") {
				args = append(args, "h")
			}
			inv, err := ParseArgs(append([]string{"-F", filepath.Join(dir, "config")}, args...))
			if err != nil {
				t.Fatal(err)
			}
			env := testEnv(dir)
			env.OpenSSH = tt.version
			c, err := Resolve(inv, env)
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(c); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// want returns "" when ok, else the message.
func want(ok bool, format string, args ...any) string {
	if ok {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", "\n  "))
}

// A destination with shell characters is refused from 9.6 on (ParseArgs refuses it for every
// release; Resolve sees it from an Invocation made otherwise).
func TestHostShellCharacters(t *testing.T) {
	for v, refused := range map[string]bool{"9.5": false, "9.6": true, "10.5": true} {
		env := testEnv(t.TempDir())
		env.OpenSSH = v
		c, err := Resolve(&Invocation{Host: "h;x", ConfigFile: "none"}, env)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(c.ExecReason, "contains invalid characters"); got != refused {
			t.Errorf("OpenSSH %s: ExecReason %q", v, c.ExecReason)
		}
	}
}

// docs/openssh-releases.md shows the table: every keyword and criterion newer than 9.0 is in
// the row of its release.
func TestReleaseTableDoc(t *testing.T) {
	b, err := os.ReadFile("../../docs/openssh-releases.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 4 {
			rows[strings.TrimSpace(cells[1])] = strings.ToLower(cells[2] + "|" + cells[3])
		}
	}
	for kw, v := range keywordSince {
		if !strings.Contains(rows[releaseName(v)], kw) {
			t.Errorf("docs/openssh-releases.md: %s is not in the row of %s", keywordName(kw), releaseName(v))
		}
	}
	for c, v := range matchSince {
		if !strings.Contains(rows[releaseName(v)], c) {
			t.Errorf("docs/openssh-releases.md: Match %s is not in the row of %s", c, releaseName(v))
		}
	}
	for _, v := range osshReleases {
		if _, ok := rows[releaseName(v)]; !ok {
			t.Errorf("docs/openssh-releases.md: no row for %s", releaseName(v))
		}
	}
}
