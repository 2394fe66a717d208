package sshlogin

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/pkg/sshconfig"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run runs command through login and returns stdout, stderr and Wait's error.
func run(t *testing.T, c *Cmd) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	c.Logf = t.Logf
	err := c.Run(testCtx(t))
	return out.String(), errb.String(), err
}

func TestKeyFileAuth(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	c := h.command(s, "echo hello")
	out, stderr, err := run(t, c)
	if err != nil || out != "hello\n" {
		t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
	}
	if !c.Native() {
		t.Error("not native")
	}
	if c.LocalAddr() == nil || c.RemoteAddr().String() != fmt.Sprintf("127.0.0.1:%d", s.port) {
		t.Errorf("addresses %v %v", c.LocalAddr(), c.RemoteAddr())
	}
	if n := s.logins.Load(); n != 1 {
		t.Errorf("%d logins", n)
	}

	// A named identity file that is missing is a warning, as in OpenSSH.
	_, pub2, file2 := h.key("named", "")
	s.authorize(pub2)
	missing := filepath.Join(h.dir, "missing")
	out, stderr, err = run(t, h.command(s, "echo named", "-i", missing, "-i", file2))
	if err != nil || out != "named\n" || !strings.Contains(stderr, "Warning: Identity file "+missing+" not accessible: no such file or directory.") {
		t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
	}
}

func TestOnlyAcceptedKeyIsParsed(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	// id_rsa comes first in the default order; its private file is garbage, so parsing it
	// would fail the run: it must never be read since the server refuses its public key.
	_, other, _ := h.key("id_ecdsa", "")
	os.WriteFile(filepath.Join(h.dir, ".ssh", "id_ecdsa"), []byte("not a key"), 0o600)
	_ = other
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	out, stderr, err := run(t, h.command(s, "echo ok"))
	if err != nil || out != "ok\n" {
		t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
	}
}

func TestAgentAuth(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub, _ := ssh.NewPublicKey(priv.Public())
	s.authorize(pub)
	sock := startAgent(t, agent.AddedKey{PrivateKey: priv, Comment: "test key"})
	t.Setenv("SSH_AUTH_SOCK", sock)
	var logs []string
	c := h.command(s, "echo agent")
	var out bytes.Buffer
	c.Stdout = &out
	c.Logf = func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }
	if err := c.Run(testCtx(t)); err != nil || out.String() != "agent\n" {
		t.Fatalf("got %q, %v", out.String(), err)
	}
	if !strings.Contains(strings.Join(logs, "\n"), "agent: test key") {
		t.Errorf("log does not name the agent key: %q", logs)
	}

	// IdentityAgent none turns the agent off.
	c = h.command(s, "echo agent", "-o", "IdentityAgent=none", "-o", "BatchMode=yes")
	_, _, err := run(t, c)
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("IdentityAgent none: %v", err)
	}
}

func startAgent(t testing.TB, keys ...agent.AddedKey) string {
	t.Helper()
	kr := agent.NewKeyring()
	for _, k := range keys {
		if err := kr.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				agent.ServeAgent(kr, c)
				c.Close()
			}()
		}
	}()
	return sock
}

func TestCertificateAuth(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	ca, _ := ssh.NewSignerFromKey(caPriv)
	s.set(func() { s.userCA = ca.PublicKey() })
	_, pub, file := h.key("id_ed25519", "")
	cert := &ssh.Certificate{
		Key: pub, CertType: ssh.UserCert, KeyId: "test", ValidPrincipals: []string{"tester"},
		ValidAfter: 0, ValidBefore: ssh.CertTimeInfinity,
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(file+"-cert.pub", ssh.MarshalAuthorizedKey(cert), 0o644)
	// The plain key is not authorized: only the certificate can get in.
	out, stderr, err := run(t, h.command(s, "echo cert"))
	if err != nil || out != "cert\n" {
		t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
	}
	if !contains(s.authLog(), "publickey-cert") {
		t.Errorf("no certificate login: %v", s.authLog())
	}

	// The same with CertificateFile naming the certificate elsewhere.
	other := filepath.Join(h.dir, "elsewhere-cert.pub")
	os.Rename(file+"-cert.pub", other)
	out, stderr, err = run(t, h.command(s, "echo cert", "-o", "CertificateFile="+other))
	if err != nil || out != "cert\n" {
		t.Fatalf("CertificateFile: got %q, %v; stderr %q", out, err, stderr)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestEncryptedKeyAskpass(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, pub, file := h.key("id_ed25519", "sesame")
	os.Remove(file + ".pub") // the public half must come from the encrypted file itself
	s.authorize(pub)
	askpass := filepath.Join(h.dir, "askpass")
	asked := filepath.Join(h.dir, "asked")
	os.WriteFile(askpass, []byte("#!/bin/sh\necho \"$1\" >> "+asked+"\necho sesame\n"), 0o755)
	t.Setenv("SSH_ASKPASS", askpass)
	t.Setenv("SSH_ASKPASS_REQUIRE", "force")
	out, stderr, err := run(t, h.command(s, "echo unlocked"))
	if err != nil || out != "unlocked\n" {
		t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
	}
	b, _ := os.ReadFile(asked)
	if want := "Enter passphrase for key '" + file + "': \n"; string(b) != want {
		t.Errorf("askpass asked %q, want %q", b, want)
	}

	// In batch mode nobody is asked and authentication fails, saying why.
	os.Remove(asked)
	c := h.command(s, "echo unlocked")
	c.BatchMode = true
	_, _, err = run(t, c)
	var ae *AuthError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "batch mode") {
		t.Fatalf("batch: %v", err)
	}
	if _, err := os.Stat(asked); err == nil {
		t.Error("askpass ran in batch mode")
	}
}

func TestHostKeyChanged(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(otherPriv.Public())
	os.WriteFile(h.knownHosts, []byte(fmt.Sprintf("# comment\nexample.org %s[%s]:%d %s",
		ssh.MarshalAuthorizedKey(other), s.host, s.port, ssh.MarshalAuthorizedKey(other))), 0o600)
	_, _, err := run(t, h.command(s, "echo no", "-o", "StrictHostKeyChecking=accept-new"))
	var he *HostKeyError
	if !errors.As(err, &he) {
		t.Fatalf("got %v, want a HostKeyError", err)
	}
	fp := ssh.FingerprintSHA256(s.hostKey.PublicKey())
	if !he.Changed || he.File != h.knownHosts || he.Line != 3 || he.Fingerprint != fp || he.KeyType != "ED25519" {
		t.Errorf("got %+v", he)
	}
	want := fmt.Sprintf("host key for [127.0.0.1]:%d does not match known_hosts line 3 (%s): offered ED25519 key %s", s.port, h.knownHosts, fp)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("message %q\nwant %q", err, want)
	}
	if n := s.logins.Load(); n != 0 {
		t.Errorf("%d logins after a changed host key", n)
	}
}

func TestHostKeyRevoked(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	f, _ := os.OpenFile(h.knownHosts, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "@revoked * %s", ssh.MarshalAuthorizedKey(s.hostKey.PublicKey()))
	f.Close()
	_, _, err := run(t, h.command(s, "echo no"))
	var he *HostKeyError
	if !errors.As(err, &he) || !he.Revoked || he.Line != 2 {
		t.Fatalf("got %v (%+v)", err, he)
	}
}

func TestUnknownHost(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []string
		batch   bool
		reason  string
		added   bool
		hashed  bool
		refused bool
	}{
		{name: "yes", opts: []string{"-o", "StrictHostKeyChecking=yes"}, reason: "StrictHostKeyChecking yes", refused: true},
		{name: "ask-batch", opts: []string{"-o", "StrictHostKeyChecking=ask"}, batch: true, reason: "BatchMode", refused: true},
		{name: "accept-new", opts: []string{"-o", "StrictHostKeyChecking=accept-new"}, added: true},
		{name: "accept-new-hashed", opts: []string{"-o", "StrictHostKeyChecking=accept-new", "-o", "HashKnownHosts=yes"}, added: true, hashed: true},
		{name: "no", opts: []string{"-o", "StrictHostKeyChecking=no"}, added: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t)
			h := newTestHome(t)
			_, pub, _ := h.key("id_ed25519", "")
			s.authorize(pub)
			c := h.command(s, "echo in", tc.opts...)
			c.BatchMode = tc.batch
			out, stderr, err := run(t, c)
			if tc.refused {
				var he *HostKeyError
				if !errors.As(err, &he) || he.Changed || he.Reason != tc.reason ||
					he.Fingerprint != ssh.FingerprintSHA256(s.hostKey.PublicKey()) || he.Hint() == "" {
					t.Fatalf("got %v (%+v)", err, he)
				}
				if _, err := os.Stat(h.knownHosts); err == nil {
					t.Error("known_hosts written")
				}
				return
			}
			if err != nil || out != "in\n" {
				t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
			}
			if !strings.Contains(stderr, "Permanently added") {
				t.Errorf("stderr %q", stderr)
			}
			b, _ := os.ReadFile(h.knownHosts)
			line := string(b)
			if tc.hashed != strings.HasPrefix(line, "|1|") {
				t.Errorf("known_hosts %q, hashed %v", line, tc.hashed)
			}
			if !tc.hashed && !strings.HasPrefix(line, fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 ", s.port)) {
				t.Errorf("known_hosts %q", line)
			}
			// The next login finds the key.
			out, stderr, err = run(t, h.command(s, "echo again", "-o", "StrictHostKeyChecking=yes"))
			if err != nil || out != "again\n" {
				t.Fatalf("second login: %q, %v; stderr %q", out, err, stderr)
			}
		})
	}
}

func TestAuthFailureMessage(t *testing.T) {
	s := newTestServer(t)
	s.set(func() { s.password = "secret" })
	h := newTestHome(t)
	h.trust(s)
	h.key("id_ed25519", "") // not authorized
	c := h.command(s, "echo no")
	c.BatchMode = true
	_, _, err := run(t, c)
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v", err)
	}
	if strings.Join(ae.Tried, ",") != "publickey" || !contains(ae.Offered, "password") || !contains(ae.Offered, "publickey") || len(ae.Keys) != 1 {
		t.Errorf("got %+v", ae)
	}
	for _, w := range []string{"tried publickey (1 key)", "the server accepts", "password", "no password prompt in batch mode"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
	if !strings.Contains(ae.Hint(), "batch mode") {
		t.Errorf("hint %q", ae.Hint())
	}
	for _, m := range s.authLog() {
		if strings.HasSuffix(m, "+") {
			t.Errorf("server saw a successful %s", m)
		}
	}
}

func TestPasswordAskpass(t *testing.T) {
	s := newTestServer(t)
	s.set(func() { s.password = "secret" })
	h := newTestHome(t)
	h.trust(s)
	askpass := filepath.Join(h.dir, "askpass")
	os.WriteFile(askpass, []byte("#!/bin/sh\necho secret\n"), 0o755)
	t.Setenv("SSH_ASKPASS", askpass)
	t.Setenv("SSH_ASKPASS_REQUIRE", "force")
	out, stderr, err := run(t, h.command(s, "echo pw"))
	if err != nil || out != "pw\n" {
		t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
	}
	if !contains(s.authLog(), "password+") {
		t.Errorf("auth log %v", s.authLog())
	}
}

func TestExitStatusAndSignal(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	_, _, err := run(t, h.command(s, "exit 3"))
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Status != 3 || ee.Signal != "" {
		t.Errorf("exit 3: %v", err)
	}
	_, _, err = run(t, h.command(s, "signal KILL"))
	if !errors.As(err, &ee) || ee.Status != 128+9 || ee.Signal != "KILL" || ee.Msg != "killed for the test" {
		t.Errorf("signal: %v (%+v)", err, ee)
	}
	_, stderr, err := run(t, h.command(s, "stderr oops"))
	if err != nil || stderr != "oops\n" {
		t.Errorf("stderr: %q, %v", stderr, err)
	}
}

func TestPipesAndEnv(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	c := h.command(s, "cat")
	in, _ := c.StdinPipe()
	out, _ := c.StdoutPipe()
	if err := c.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	go func() {
		io.WriteString(in, "round trip")
		in.Close()
	}()
	b, _ := io.ReadAll(out)
	if err := c.Wait(); err != nil || string(b) != "round trip" {
		t.Fatalf("got %q, %v", b, err)
	}
	if c.Client() == nil {
		t.Error("no client")
	}

	t.Setenv("SP_TEST_A", "a")
	t.Setenv("SP_TEST_B", "b")
	o, _, err := run(t, h.command(s, "env", "-o", "SetEnv=FOO=bar", "-o", "SendEnv=SP_TEST_A"))
	if err != nil || o != "FOO=bar\nSP_TEST_A=a\n" {
		t.Errorf("env: %q, %v", o, err)
	}
}

func TestRemoteCommandWords(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	login := append(h.login(s), "echo")
	c := Command(login, "two words")
	c.Env = &h.env
	out, _, err := run(t, c)
	if err != nil || out != "two words\n" {
		t.Errorf("got %q, %v", out, err)
	}
}

func TestKeepaliveClosesDeadConnection(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	inv, err := sshconfig.ParseArgs(h.login(s)[1:])
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sshconfig.Resolve(inv, h.env)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ServerAliveInterval = 100 * time.Millisecond
	cfg.ServerAliveCountMax = 2
	c := Command(nil, "wait")
	c.Logf = t.Logf
	in, _ := c.StdinPipe()
	defer in.Close()
	n, err := c.startNative(testCtx(t), inv, &hop{cfg: cfg}, h.env)
	if err != nil {
		t.Fatal(err)
	}
	// Alive: keepalives are answered for a while.
	time.Sleep(500 * time.Millisecond)
	select {
	case <-n.exited:
		t.Fatalf("session ended while the server was alive: %v", n.wait())
	default:
	}
	close(s.freeze)
	t0 := time.Now()
	err = n.wait()
	if err == nil || !strings.Contains(err.Error(), "not responding") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("took %v to notice", d)
	}
}

func TestProxyJump(t *testing.T) {
	jump1 := newTestServer(t)
	jump2 := newTestServer(t)
	target := newTestServer(t)
	jump1.allowTCP.Store(true)
	jump2.allowTCP.Store(true)
	h := newTestHome(t)
	h.trust(jump1)
	h.trust(jump2)
	h.trust(target)
	_, pub, _ := h.key("id_ed25519", "")
	for _, s := range []*testServer{jump1, jump2, target} {
		s.authorize(pub)
	}
	// The hops' own settings come from the config file, as they would with OpenSSH.
	os.WriteFile(h.config, []byte(fmt.Sprintf("Host 127.0.0.1\n  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n", h.knownHosts)), 0o600)
	jumps := fmt.Sprintf("tester@127.0.0.1:%d,tester@127.0.0.1:%d", jump1.port, jump2.port)
	c := h.command(target, "echo through", "-o", "ProxyJump="+jumps)
	out, stderr, err := run(t, c)
	if err != nil || out != "through\n" {
		t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
	}
	if c.LocalAddr() != nil {
		t.Errorf("LocalAddr %v through a jump", c.LocalAddr())
	}
	for i, s := range []*testServer{jump1, jump2, target} {
		if n := s.logins.Load(); n != 1 {
			t.Errorf("server %d: %d logins", i, n)
		}
	}

	// A hop whose host key does not match is refused.
	os.WriteFile(h.knownHosts, nil, 0o600)
	h.trust(jump1)
	h.trust(target)
	_, _, err = run(t, h.command(target, "echo no", "-o", "ProxyJump="+jumps, "-o", "StrictHostKeyChecking=yes"))
	var he *HostKeyError
	if !errors.As(err, &he) || he.Host != fmt.Sprintf("[127.0.0.1]:%d", jump2.port) {
		t.Errorf("got %v", err)
	}
}

func TestContextCancelsLogin(t *testing.T) {
	// A server that accepts TCP and never speaks SSH.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	h := newTestHome(t)
	port := ln.Addr().(*net.TCPAddr).Port
	c := Command([]string{"ssh", "-F", h.config, "-p", fmt.Sprint(port), "127.0.0.1"}, "echo")
	c.Env = &h.env
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err = c.Start(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestCloseEndsSession(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	c := h.command(s, "wait")
	in, _ := c.StdinPipe()
	defer in.Close()
	if err := c.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := c.Wait(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("got %v", err)
	}
}

// An algorithm list from the configuration is the list (Resolve has applied +, - and ^; see
// sshconfig's TestAssembleAlgorithms); none means x/crypto's defaults.
func TestConfiguredAlgorithms(t *testing.T) {
	def := []string{"a", "b", "c"}
	for _, tc := range []struct {
		conf []string
		want string
	}{
		{nil, "a,b,c"},
		{[]string{"x", "b"}, "x,b"},
	} {
		if got := strings.Join(configured(tc.conf, def), ","); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.conf, got, tc.want)
		}
	}
}

func TestExecRefused(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	c := h.command(s, "refuse")
	out, _ := c.StdoutPipe()
	if err := c.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out)
	err := c.Wait()
	if err == nil || !strings.Contains(err.Error(), "refused to run") || len(b) != 0 {
		t.Fatalf("got %q, %v", b, err)
	}
}

func TestAlgorithmsReason(t *testing.T) {
	for _, tc := range []struct {
		cfg  sshconfig.Config
		want string
	}{
		{sshconfig.Config{}, ""},
		{sshconfig.Config{Ciphers: []string{"aes128-ctr"}}, ""},
		{sshconfig.Config{Ciphers: []string{"aes256-cbc"}}, "Ciphers aes256-cbc: none"},
		{sshconfig.Config{KexAlgorithms: []string{"sntrup761x25519-sha512@openssh.com"}}, "KexAlgorithms"},
		{sshconfig.Config{KexAlgorithms: []string{"sntrup761x25519-sha512@openssh.com", "curve25519-sha256"}}, ""},
		{sshconfig.Config{HostKeyAlgorithms: []string{"sk-ssh-ed25519@openssh.com"}}, "HostKeyAlgorithms"},
	} {
		if got := algorithmsReason(&tc.cfg); !strings.HasPrefix(got, tc.want) || (tc.want == "") != (got == "") {
			t.Errorf("%+v: got %q, want %q", tc.cfg, got, tc.want)
		}
	}
}

func TestHostCertificate(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	ca, _ := ssh.NewSignerFromKey(caPriv)
	cert := &ssh.Certificate{Key: s.hostKey.PublicKey(), CertType: ssh.HostCert, KeyId: "host",
		ValidPrincipals: []string{"127.0.0.1"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	s.set(func() { s.hostCert = cert })

	// A wildcard @cert-authority line vouches for the host on its non-default port.
	os.WriteFile(h.knownHosts, []byte("@cert-authority * "+string(ssh.MarshalAuthorizedKey(ca.PublicKey()))), 0o600)
	out, stderr, err := run(t, h.command(s, "echo ca", "-o", "StrictHostKeyChecking=yes", "-v"))
	if err != nil || out != "ca\n" {
		t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
	}
	if !strings.Contains(stderr, "ED25519-CERT host key") {
		t.Errorf("not verified as a certificate: %s", stderr)
	}

	// No authority: the certificate's plain key is checked, and it is unknown.
	os.WriteFile(h.knownHosts, nil, 0o600)
	_, _, err = run(t, h.command(s, "echo no", "-o", "StrictHostKeyChecking=yes"))
	var he *HostKeyError
	if !errors.As(err, &he) || he.Changed || he.Reason != "StrictHostKeyChecking yes" || he.KeyType != "ED25519" {
		t.Fatalf("got %v (%+v)", err, he)
	}
}

func TestKeyboardInteractive(t *testing.T) {
	s := newTestServer(t)
	s.set(func() { s.kbdint = "xyzzy" })
	h := newTestHome(t)
	h.trust(s)
	askpass := filepath.Join(h.dir, "askpass")
	asked := filepath.Join(h.dir, "asked")
	os.WriteFile(askpass, []byte("#!/bin/sh\nprintf '%s\\n' \"$1\" >> "+asked+"\necho xyzzy\n"), 0o755)
	t.Setenv("SSH_ASKPASS", askpass)
	t.Setenv("SSH_ASKPASS_REQUIRE", "force")
	out, stderr, err := run(t, h.command(s, "echo kbd"))
	if err != nil || out != "kbd\n" {
		t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
	}
	if b, _ := os.ReadFile(asked); string(b) != "Secret word: \n" {
		t.Errorf("asked %q", b)
	}
	if !contains(s.authLog(), "keyboard-interactive+") {
		t.Errorf("auth log %v", s.authLog())
	}

	// The server's name, instruction and prompt are shown and asked as ssh shows them: escaped.
	os.Remove(asked)
	s.set(func() { s.kbdText = [3]string{"name\x1b[2J", "instruction\x1b]0;owned\x07\nline two", "Word\x1b[8m: "} })
	out, stderr, err = run(t, h.command(s, "echo kbd"))
	if err != nil || out != "kbd\n" {
		t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
	}
	if want := "name\\033[2J\ninstruction\\033]0;owned\\007\nline two\n"; !strings.Contains(stderr, want) || strings.Contains(stderr, "\x1b") {
		t.Errorf("the name and instruction reached the terminal as %q, want %q", stderr, want)
	}
	if b, _ := os.ReadFile(asked); string(b) != "Word\\033[8m: \n" {
		t.Errorf("asked %q", b)
	}
	s.set(func() { s.kbdText = [3]string{} })

	// PreferredAuthentications without it, or KbdInteractiveAuthentication no: not tried.
	for _, o := range []string{"PreferredAuthentications=publickey,password", "KbdInteractiveAuthentication=no"} {
		_, _, err = run(t, h.command(s, "echo kbd", "-o", o))
		var ae *AuthError
		if !errors.As(err, &ae) || contains(ae.Tried, "keyboard-interactive") {
			t.Errorf("%s: %v", o, err)
		}
	}
}

func TestDialOptions(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	c := h.command(s, "echo bound", "-o", "BindAddress=127.0.0.2", "-4")
	out, _, err := run(t, c)
	if err != nil || out != "bound\n" {
		t.Fatalf("got %q, %v", out, err)
	}
	s.mu.Lock()
	remote := s.remotes[len(s.remotes)-1]
	s.mu.Unlock()
	if !strings.HasPrefix(remote, "127.0.0.2:") || !strings.HasPrefix(c.LocalAddr().String(), "127.0.0.2:") {
		t.Errorf("server saw %s, LocalAddr %v", remote, c.LocalAddr())
	}

	// IPv6 only, to an IPv4 address: no connection.
	_, _, err = run(t, h.command(s, "echo no", "-6"))
	if err == nil {
		t.Error("-6 reached an IPv4 address")
	}

	// Two attempts at a closed port, a second apart.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c = Command([]string{"ssh", "-F", h.config, "-p", fmt.Sprint(port), "-o", "ConnectionAttempts=2", "127.0.0.1"}, "true")
	c.Env = &h.env
	t0 := time.Now()
	_, _, err = run(t, c)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || time.Since(t0) < time.Second {
		t.Errorf("got %v after %v", err, time.Since(t0))
	}
}

func TestIdentitiesOnly(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	var keys []agent.AddedKey
	for i := range 7 {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		keys = append(keys, agent.AddedKey{PrivateKey: priv, Comment: fmt.Sprint("stranger ", i)})
	}
	t.Setenv("SSH_AUTH_SOCK", startAgent(t, keys...))
	_, pub, file := h.key("mine", "")
	s.authorize(pub)

	count := func() (n int) {
		for _, m := range s.authLog() {
			if strings.HasPrefix(m, "publickey") {
				n++
			}
		}
		return n
	}
	// The agent's seven keys come first, then the file.
	out, _, err := run(t, h.command(s, "echo all", "-i", file))
	if err != nil || out != "all\n" || count() < 8 {
		t.Fatalf("without IdentitiesOnly: %q %v, %d publickey attempts", out, err, count())
	}
	before := count()
	out, stderr, err := run(t, h.command(s, "echo only", "-i", file, "-o", "IdentitiesOnly=yes"))
	if err != nil || out != "only\n" {
		t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
	}
	if n := count() - before; n > 2 {
		t.Errorf("%d publickey attempts with IdentitiesOnly", n)
	}
}

// CheckHostIP leaves a loopback address alone, as OpenSSH does: a login to localhost records
// nothing for 127.0.0.1 and is not refused for what known_hosts holds under it. (The other
// rows of CheckHostIP are TestCheckHostIPDecisions.)
func TestCheckHostIP(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	// The host is known by name; the address holds another key.
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(otherPriv.Public())
	kh := fmt.Sprintf("[localhost]:%d %s[127.0.0.1]:%d %s", s.port, ssh.MarshalAuthorizedKey(s.hostKey.PublicKey()), s.port, ssh.MarshalAuthorizedKey(other))
	os.WriteFile(h.knownHosts, []byte(kh), 0o600)
	login := []string{"ssh", "-F", h.config, "-p", fmt.Sprint(s.port), "-4", "-o", "CheckHostIP=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + h.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null", "tester@localhost"}
	c := Command(login, "echo ip")
	c.Env = &h.env
	out, stderr, err := run(t, c)
	if err != nil || out != "ip\n" {
		t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
	}
	b, _ := os.ReadFile(h.knownHosts)
	if string(b) != kh || strings.Contains(stderr, "IP address") {
		t.Errorf("known_hosts %q, stderr %q", b, stderr)
	}
}

func TestVerboseAndQuiet(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	for _, tc := range []struct {
		flags         []string
		debug, warned bool
	}{
		{nil, false, true},
		{[]string{"-v"}, true, true},
		{[]string{"-q"}, false, false},
		{[]string{"-v", "-q"}, false, false},
		{[]string{"-q", "-v"}, true, true},
	} {
		os.Remove(h.knownHosts)
		_, stderr, err := run(t, h.command(s, "echo x", append(tc.flags, "-o", "StrictHostKeyChecking=accept-new")...))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stderr, "debug1: Authenticated to") != tc.debug || strings.Contains(stderr, "Permanently added") != tc.warned {
			t.Errorf("%v: stderr %q", tc.flags, stderr)
		}
	}
}
