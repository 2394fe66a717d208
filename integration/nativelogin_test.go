//go:build linux

package integration

// The native login against real OpenSSH servers: `-l { ssh ... }` without -x logs in
// in-process, with the agent, key files, an encrypted key, a certificate, ssh_config aliases,
// known_hosts and ProxyJump, and executes the ssh binary only for what it cannot honour. Every
// run checks that the data arrived intact and, from -v, which way the login went; the ones
// that log in check that sshd counted exactly one authentication.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// nlServer is a remote (helpers_test.go) with a directory for the client's files, whose
// processes are checked to be gone when the test ends.
type nlServer struct {
	*remote
	dir string // the client's files: configs, keys, known_hosts
}

// nlStart starts an sshd for native-login tests. opts.PathDirs and the marker are added.
func nlStart(t *testing.T, opts harness.SSHDOptions) *nlServer {
	t.Helper()
	r := newRemote(t, opts)
	t.Cleanup(func() { r.noneLeft(t) })
	return &nlServer{remote: r, dir: t.TempDir()}
}

// config writes an ssh_config with a Host block for alias reaching this sshd as root. The
// given lines come first, so they win over the defaults (known_hosts from the harness,
// StrictHostKeyChecking yes). It returns the file's path.
func (s *nlServer) config(t *testing.T, alias string, lines ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "Host %s\n", alias)
	for _, l := range lines {
		fmt.Fprintf(&b, "\t%s\n", l)
	}
	fmt.Fprintf(&b, "\tHostName %s\n\tPort %d\n\tUser root\n", s.sshd.Host, s.sshd.Port)
	fmt.Fprintf(&b, "\tUserKnownHostsFile %s\n\tGlobalKnownHostsFile /dev/null\n\tStrictHostKeyChecking yes\n", s.sshd.KnownHosts)
	f, err := os.CreateTemp(s.dir, "ssh_config-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return f.Name()
}

// transfer sends random data through `-i { cat } -l { login } -r { cat } -o { cat }` with -v
// and extra options, and checks that it arrived intact, that the login was native, and that
// sshd counted exactly one authentication.
func (s *nlServer) transfer(t *testing.T, o runOpts, login []string, extra ...string) *result {
	t.Helper()
	res := s.transferAny(t, o, 1, login, extra...)
	wantNative(t, res.stderr)
	return res
}

// transferAny is transfer without the check of the login path, expecting auths
// authentications in sshd's log.
func (s *nlServer) transferAny(t *testing.T, o runOpts, auths int, login []string, extra ...string) *result {
	t.Helper()
	data := randomBytes(t, 256<<10)
	o.stdin = bytes.NewReader(data)
	before := s.sshd.AuthCount()
	args := append([]string{"-v"}, extra...)
	args = append(args, "-i", "{", "cat", "}")
	args = append(args, block("-l", login...)...)
	args = append(args, "-r", "{", "cat", "}", "-o", "{", "cat", "}")
	res := s.runWith(t, o, args...)
	if res.code != 0 {
		t.Fatalf("want exit 0, got %v", res)
	}
	if !bytes.Equal([]byte(res.stdout), data) {
		t.Fatalf("%d bytes arrived, not the %d sent\n%v", len(res.stdout), len(data), res)
	}
	if n := s.sshd.AuthCount() - before; n != auths {
		t.Errorf("sshd logged %d authentications for one run, want %d\n%v", n, auths, res)
	}
	return res
}

// nlKeygen makes an ed25519 key pair in dir with the passphrase and returns the private key's
// path and the public key line.
func nlKeygen(t *testing.T, dir, name, passphrase string) (string, string) {
	t.Helper()
	f := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", f).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(f + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return f, strings.TrimSpace(string(pub))
}

// nlFingerprint is the SHA256 fingerprint of an authorized_keys-format public key line.
func nlFingerprint(t *testing.T, line string) string {
	t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatalf("parsing %q: %v", line, err)
	}
	return ssh.FingerprintSHA256(pub)
}

// nlAgent starts `ssh-agent -D -a sock` for the test, loads the keys into it, and returns
// the socket's path.
func nlAgent(t *testing.T, keys ...string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sp-agent-") // short: a unix socket path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	cmd.Env = cleanEnv("")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// ssh-agent prints "SSH_AUTH_SOCK=...; export SSH_AUTH_SOCK;" once it listens.
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
		io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		if !strings.Contains(l, "SSH_AUTH_SOCK="+sock) {
			t.Fatalf("ssh-agent said %q", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ssh-agent did not say it listens within 30s")
	}
	for _, k := range keys {
		add := exec.Command("ssh-add", k)
		add.Env = append(cleanEnv(""), "SSH_AUTH_SOCK="+sock)
		if b, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add %s: %v: %s", k, err, b)
		}
	}
	return sock
}

// TestNativeLoginAuth logs in natively with each kind of user credential OpenSSH users have.
func TestNativeLoginAuth(t *testing.T) {
	t.Parallel()
	keys := t.TempDir()
	agentKey, agentPub := nlKeygen(t, keys, "id_agent", "")
	fileKey, filePub := nlKeygen(t, keys, "id_file", "")
	const passphrase = "correct horse battery staple"
	lockedKey, lockedPub := nlKeygen(t, keys, "id_locked", passphrase)
	// The certificate's key is in no authorized_keys: only the CA vouches for it.
	certKey, certPub := nlKeygen(t, keys, "id_cert", "")
	ca, _ := nlKeygen(t, keys, "user_ca", "")
	const certID = "sp-native-cert"
	if out, err := exec.Command("ssh-keygen", "-q", "-s", ca, "-I", certID, "-n", "root", "-V", "-5m:+1h", certKey+".pub").CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -s: %v: %s", err, out)
	}
	s := nlStart(t, harness.SSHDOptions{
		AuthorizedKeys: []string{agentPub, filePub, lockedPub},
		ExtraConfig:    []string{"TrustedUserCAKeys " + ca + ".pub"},
	})
	accepted := func(t *testing.T, pub string, res *result) {
		t.Helper()
		fp := nlFingerprint(t, pub)
		if !strings.Contains(s.sshd.Log(), "ED25519 "+fp) {
			t.Errorf("sshd did not log a login with %s\n%v\nsshd log:\n%s", fp, res, s.sshd.Log())
		}
	}

	t.Run("agent", func(t *testing.T) {
		sock := nlAgent(t, agentKey)
		// The agent alone holds the key now.
		os.Remove(agentKey)
		os.Remove(agentKey + ".pub")
		cfg := s.config(t, "sp-agent", "IdentitiesOnly no")
		res := s.transfer(t, runOpts{env: []string{"SSH_AUTH_SOCK=" + sock}}, []string{"ssh", "-F", cfg, "sp-agent"})
		mustContain(t, "-v", res.stderr, "authenticated as root with publickey agent: id_agent ED25519 "+nlFingerprint(t, agentPub))
		accepted(t, agentPub, res)
	})

	t.Run("key-file", func(t *testing.T) {
		cfg := s.config(t, "sp-file", "IdentityAgent none", "IdentitiesOnly yes")
		res := s.transfer(t, runOpts{}, []string{"ssh", "-F", cfg, "-i", fileKey, "sp-file"})
		mustContain(t, "-v", res.stderr, "authenticated as root with publickey "+fileKey+" ED25519")
		accepted(t, filePub, res)
	})

	t.Run("encrypted-key-askpass", func(t *testing.T) {
		dir := t.TempDir()
		asked := filepath.Join(dir, "asked")
		askpass := filepath.Join(dir, "askpass")
		script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$1\" >>%s\necho '%s'\n", asked, passphrase)
		if err := os.WriteFile(askpass, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := s.config(t, "sp-locked", "IdentityAgent none", "IdentitiesOnly yes", "IdentityFile "+lockedKey)
		o := runOpts{setsid: true, env: []string{"SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force"}}
		res := s.transfer(t, o, []string{"ssh", "-F", cfg, "sp-locked"})
		b, _ := os.ReadFile(asked)
		if want := fmt.Sprintf("Enter passphrase for key '%s': \n", lockedKey); string(b) != want {
			t.Errorf("SSH_ASKPASS was asked %q, want once %q", b, want)
		}
		accepted(t, lockedPub, res)
	})

	t.Run("certificate", func(t *testing.T) {
		cfg := s.config(t, "sp-cert", "IdentityAgent none", "IdentitiesOnly yes")
		res := s.transfer(t, runOpts{}, []string{"ssh", "-F", cfg, "-i", certKey, "sp-cert"})
		mustContain(t, "-v", res.stderr, "authenticated as root with publickey "+certKey+" certificate ED25519-CERT")
		fp := nlFingerprint(t, certPub)
		if log := s.sshd.Log(); !strings.Contains(log, "ED25519-CERT "+fp+" ID "+certID) {
			t.Errorf("sshd did not log a certificate login with %s, ID %s:\n%s", fp, certID, log)
		}
	})
}

// key is the ssh_config lines that log in with the harness's user key only.
func (s *nlServer) key() []string {
	return []string{"IdentityFile " + s.sshd.UserKey, "IdentitiesOnly yes", "IdentityAgent none"}
}

// nlToolDir returns a directory holding links to the named tools and nothing else, for a PATH
// without ssh.
func nlToolDir(t *testing.T, tools ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestNativeLoginConfig follows ssh_config: an alias, a machine without ssh, and the fallback
// to the ssh binary for what cannot be done in-process.
func TestNativeLoginConfig(t *testing.T) {
	t.Parallel()
	s := nlStart(t, harness.SSHDOptions{})

	t.Run("alias", func(t *testing.T) {
		// HostName, Port and User come from the alias's block; the catch-all block after it
		// names an unroutable address, a closed port and another user, and must lose: the
		// first value wins.
		cfg := s.config(t, "sp-alias", s.key()...)
		f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "Host *\n\tHostName 192.0.2.1\n\tPort 1\n\tUser nobody\n")
		f.Close()
		res := s.transfer(t, runOpts{}, []string{"ssh", "-F", cfg, "sp-alias"})
		mustContain(t, "-v", res.stderr, fmt.Sprintf("native login: root@%s (sp-alias)", s.sshd.Addr))
	})

	t.Run("no-ssh-binary", func(t *testing.T) {
		path := nlToolDir(t, "cat")
		cfg := s.config(t, "sp-nossh", s.key()...)
		s.transfer(t, runOpts{env: []string{"PATH=" + path}}, []string{"ssh", "-F", cfg, "sp-nossh"})
	})

	// ProxyCommand runs through a shell that leaves a mark, then ssh -W through the same sshd.
	proxy := func(t *testing.T) (cfg, mark string) {
		mark = filepath.Join(t.TempDir(), "proxycommand-ran")
		pc := fmt.Sprintf("ProxyCommand sh -c 'touch %s; exec ssh -F %s -W %%h:%%p %s'", mark, s.sshd.ClientConfig, s.sshd.Alias)
		return s.config(t, "sp-proxy", append(s.key(), pc)...), mark
	}

	t.Run("proxycommand-execs-ssh", func(t *testing.T) {
		cfg, mark := proxy(t)
		// Two authentications: ssh -W's own, and the login through it.
		res := s.transferAny(t, runOpts{}, 2, []string{"ssh", "-F", cfg, "sp-proxy"})
		mustContain(t, "-v", res.stderr, "executing the login command ssh: ", "ProxyCommand is not supported in-process")
		if strings.Contains(res.stderr, "native login: ") {
			t.Errorf("-v says native login, with a ProxyCommand:\n%s", res.stderr)
		}
		if _, err := os.Stat(mark); err != nil {
			t.Errorf("the ProxyCommand did not run: %v", err)
		}
	})

	t.Run("proxycommand-without-ssh", func(t *testing.T) {
		cfg, mark := proxy(t)
		before := s.sshd.AuthCount()
		res := s.runWith(t, runOpts{env: []string{"PATH=" + nlToolDir(t, "cat")}},
			"-i", "{", "cat", "}", "-l", "{", "ssh", "-F", cfg, "sp-proxy", "}", "-r", "{", "cat", "}", "-o", "{", "cat", "}")
		if res.code != 2 {
			t.Fatalf("want exit 2, got %v", res)
		}
		mustContain(t, "stderr", res.stderr, "socketpipe: error: login failed: the ssh binary is needed (", "ProxyCommand is not supported in-process", "but cannot be run")
		if _, err := os.Stat(mark); err == nil {
			t.Error("the ProxyCommand ran")
		}
		if n := s.sshd.AuthCount() - before; n != 0 {
			t.Errorf("sshd logged %d authentications", n)
		}
	})
}

// TestNativeLoginHostKeys checks the server's key against known_hosts as OpenSSH does. A
// refused key runs nothing remote: the remote command would leave one mark and the remote
// login shell (its .bashrc) another, and sshd logs no authentication.
func TestNativeLoginHostKeys(t *testing.T) {
	t.Parallel()
	s := nlStart(t, harness.SSHDOptions{})
	marks := t.TempDir()
	shellMark, commandMark := filepath.Join(marks, "shell-ran"), filepath.Join(marks, "command-ran")
	if err := os.WriteFile(filepath.Join(s.sshd.Home, ".bashrc"), []byte("touch "+shellMark+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostFP := nlFingerprint(t, s.sshd.HostKey)
	hostPattern := fmt.Sprintf("[%s]:%d", s.sshd.Host, s.sshd.Port)
	_, otherKey := nlKeygen(t, t.TempDir(), "other", "")
	marked := func() bool {
		_, err1 := os.Stat(shellMark)
		_, err2 := os.Stat(commandMark)
		return err1 == nil || err2 == nil
	}
	// refused runs with known_hosts file and the extra config lines, and checks that it was
	// refused with exit 2 and the message, and that nothing ran.
	refused := func(t *testing.T, knownHosts string, lines []string, msg ...string) *result {
		t.Helper()
		cfg := s.config(t, "sp-hk", append(append(s.key(), "UserKnownHostsFile "+knownHosts), lines...)...)
		before := s.sshd.AuthCount()
		res := s.runWith(t, runOpts{stdin: strings.NewReader("data\n")}, "-v", "-i", "{", "cat", "}", "-l", "{", "ssh", "-F", cfg, "sp-hk", "}",
			"-r", "{", "sh", "-c", "touch "+commandMark+"; exec cat", "}", "-o", "{", "cat", "}")
		wantNative(t, res.stderr)
		if res.code != 2 {
			t.Errorf("want exit 2, got %v", res)
		}
		mustContain(t, "stderr", res.stderr, msg...)
		if n := strings.Count(res.stderr, "socketpipe: error:"); n != 1 {
			t.Errorf("%d error lines, want one:\n%s", n, res.stderr)
		}
		if res.stdout != "" {
			t.Errorf("output %q", res.stdout)
		}
		if n := s.sshd.AuthCount() - before; n != 0 {
			t.Errorf("sshd logged %d authentications despite the refused host key", n)
		}
		if marked() {
			t.Errorf("something ran on the remote host despite the refused host key")
		}
		return res
	}

	t.Run("mismatch", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		lines := "# keys of this test\n" +
			fmt.Sprintf("[%s]:1 %s\n", s.sshd.Host, s.sshd.HostKey) + // another port: another host
			fmt.Sprintf("%s %s\n", hostPattern, otherKey)
		if err := os.WriteFile(kh, []byte(lines), 0o600); err != nil {
			t.Fatal(err)
		}
		res := refused(t, kh, nil,
			fmt.Sprintf("socketpipe: error: login failed: host key for %s does not match known_hosts line 3 (%s): offered ED25519 key %s", hostPattern, kh, hostFP),
			"socketpipe: hint: ")
		// The hint names the line to remove.
		mustContain(t, "hint", res.stderr, "line 3 of "+kh)
	})

	t.Run("unknown-strict", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(kh, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		refused(t, kh, []string{"StrictHostKeyChecking yes"},
			fmt.Sprintf("socketpipe: error: login failed: host key for %s is not known (StrictHostKeyChecking yes): offered ED25519 key %s", hostPattern, hostFP))
		if b, _ := os.ReadFile(kh); len(b) != 0 {
			t.Errorf("known_hosts was written: %q", b)
		}
	})

	// The marks above are absent because nothing ran, not because they cannot be made.
	t.Run("control", func(t *testing.T) {
		cfg := s.config(t, "sp-hk", s.key()...)
		res := s.runWith(t, runOpts{stdin: strings.NewReader("data\n")}, "-v", "-i", "{", "cat", "}", "-l", "{", "ssh", "-F", cfg, "sp-hk", "}",
			"-r", "{", "sh", "-c", "touch "+commandMark+"; exec cat", "}", "-o", "{", "cat", "}")
		wantNative(t, res.stderr)
		if res.code != 0 || res.stdout != "data\n" {
			t.Fatalf("want exit 0 and the data, got %v", res)
		}
		for _, m := range []string{shellMark, commandMark} {
			if _, err := os.Stat(m); err != nil {
				t.Errorf("a run with the right host key left no mark: %v", err)
			}
		}
	})

	t.Run("accept-new", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "ssh", "known_hosts") // neither file nor directory exists
		cfg := s.config(t, "sp-new", append(s.key(), "UserKnownHostsFile "+kh, "StrictHostKeyChecking accept-new")...)
		s.transfer(t, runOpts{}, []string{"ssh", "-F", cfg, "sp-new"})
		b, err := os.ReadFile(kh)
		if err != nil {
			t.Fatalf("accept-new wrote no known_hosts: %v", err)
		}
		f := strings.Fields(s.sshd.HostKey)
		if want := hostPattern + " " + f[0] + " " + f[1] + "\n"; string(b) != want {
			t.Errorf("known_hosts is %q, want %q", b, want)
		}
		// What was written is good enough for strict checking, by socketpipe and by OpenSSH.
		strict := s.config(t, "sp-new", append(s.key(), "UserKnownHostsFile "+kh, "StrictHostKeyChecking yes")...)
		s.transfer(t, runOpts{}, []string{"ssh", "-F", strict, "sp-new"})
		ctx, cancel := context.WithTimeout(context.Background(), runBound)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ssh", "-F", strict, "-o", "BatchMode=yes", "sp-new", "true").CombinedOutput(); err != nil {
			t.Errorf("OpenSSH refuses the known_hosts socketpipe wrote: %v: %s", err, out)
		}
	})
}

// TestNativeLoginProxyJump reaches a host the client has no route to through a jump host,
// both hops dialled in-process and each checked against its own known_hosts. Three
// namespaces share one bridge, but the client's only route is to the jump host.
func TestNativeLoginProxyJump(t *testing.T) {
	t.Parallel()
	nw := harness.NewNetwork(t, 3, harness.NetworkOptions{})
	client, jumpHost, target := nw.Hosts[0], nw.Hosts[1], nw.Hosts[2]
	s := nlStart(t, harness.SSHDOptions{Netns: target.Name, ListenAddr: target.IPv4, Port: 22, Alias: "sp-target"})
	jump := s.addSSHD(t, harness.SSHDOptions{Netns: jumpHost.Name, ListenAddr: jumpHost.IPv4, Port: 22, Alias: "sp-jump"})

	for _, r := range [][]string{
		{"route", "del", fmt.Sprintf("10.213.%d.0/24", nw.Subnet), "dev", client.Link},
		{"route", "add", jumpHost.IPv4 + "/32", "dev", client.Link},
		{"-6", "route", "del", fmt.Sprintf("fd53:5350:0:%x::/64", nw.Subnet), "dev", client.Link},
		{"-6", "route", "add", jumpHost.IPv6 + "/128", "dev", client.Link},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", client.Name}, r...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip -n %s %s: %v: %s", client.Name, strings.Join(r, " "), err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c, err := client.DialContext(ctx, "tcp", net.JoinHostPort(target.IPv4, "22")); err == nil {
		c.Close()
		t.Fatal("the client reaches the target directly")
	} else if !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("dialling the target from the client: %v, want network unreachable", err)
	}

	cfg := filepath.Join(s.dir, "ssh_config")
	conf := fmt.Sprintf(`Host sp-target
	HostName %s
	ProxyJump sp-jump
	IdentityFile %s
	UserKnownHostsFile %s
Host sp-jump
	HostName %s
	IdentityFile %s
	UserKnownHostsFile %s
Host *
	Port 22
	User root
	IdentitiesOnly yes
	IdentityAgent none
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
`, target.IPv4, s.sshd.UserKey, s.sshd.KnownHosts, jumpHost.IPv4, jump.UserKey, jump.KnownHosts)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	jumpBefore := jump.AuthCount()
	res := s.transfer(t, runOpts{host: client}, []string{"ssh", "-F", cfg, "sp-target"})
	mustContain(t, "-v", res.stderr,
		fmt.Sprintf("native login: root@%s:22 (sp-target) via root@%s:22 (sp-jump)", target.IPv4, jumpHost.IPv4),
		"data connection: ssh (")
	if n := jump.AuthCount() - jumpBefore; n != 1 {
		t.Errorf("the jump host's sshd logged %d authentications, want 1", n)
	}
	if want := "Accepted publickey for root from " + jumpHost.IPv4 + " "; !strings.Contains(s.sshd.Log(), want) {
		t.Errorf("the target's sshd did not log %q:\n%s", want, s.sshd.Log())
	}
}

// BenchmarkNativeStartup measures what the native login saves at start-up: the wall time of a
// tiny transfer through socketpipe with the native login (`-i { true } -l { ssh ... } -r
// { cat }`) against one `ssh host cat </dev/null` on the same sshd, interleaved, as medians
// and their ratio (the goal is at most 0.7).
func BenchmarkNativeStartup(b *testing.B) {
	bin := harness.BuildSocketpipe(b)
	sshd := harness.StartSSHD(b, harness.SSHDOptions{PathDirs: []string{bin}})
	cfg := filepath.Join(b.TempDir(), "ssh_config")
	conf := fmt.Sprintf("Host sp-bench\n\tHostName %s\n\tPort %d\n\tUser root\n\tIdentityFile %s\n\tIdentitiesOnly yes\n\tIdentityAgent none\n"+
		"\tUserKnownHostsFile %s\n\tGlobalKnownHostsFile /dev/null\n\tStrictHostKeyChecking yes\n\tBatchMode yes\n",
		sshd.Host, sshd.Port, sshd.UserKey, sshd.KnownHosts)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	env := cleanEnv("")
	timed := func(name string, args ...string) time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), runBound)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = env
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %q: %v\n%s", name, args, err, out)
		}
		return time.Since(t0)
	}
	sp := filepath.Join(bin, "socketpipe")
	var native, binary []time.Duration
	b.ResetTimer()
	for range b.N {
		native = append(native, timed(sp, "-i", "{", "true", "}", "-l", "{", "ssh", "-F", cfg, "sp-bench", "}", "-r", "{", "cat", "}"))
		binary = append(binary, timed("ssh", "-F", cfg, "-n", "sp-bench", "cat"))
	}
	b.StopTimer()
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	n, s := median(native), median(binary)
	b.ReportMetric(float64(n.Microseconds())/1000, "native-ms")
	b.ReportMetric(float64(s.Microseconds())/1000, "ssh-ms")
	b.ReportMetric(float64(n)/float64(s), "ratio")
}
