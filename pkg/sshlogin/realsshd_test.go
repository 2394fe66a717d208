package sshlogin

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// realSSHD is an OpenSSH sshd on loopback started by the test harness, offering ed25519,
// RSA and ECDSA host keys, trusting a user CA, and accepting the client's SP_* and SHLVL.
type realSSHD struct {
	*harness.SSHD
	hostKeys map[string]ssh.PublicKey // by type: "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256"
	caKey    ssh.Signer
}

func startSSHD(t testing.TB) *realSSHD {
	t.Helper()
	_, caPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d := &realSSHD{hostKeys: map[string]ssh.PublicKey{}}
	d.caKey, err = ssh.NewSignerFromKey(caPriv)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pub")
	if err := os.WriteFile(ca, ssh.MarshalAuthorizedKey(d.caKey.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	d.SSHD = harness.StartSSHD(t, harness.SSHDOptions{
		HostKeyTypes: []string{"ed25519", "rsa", "ecdsa"},
		ExtraConfig:  []string{"TrustedUserCAKeys " + ca, "AcceptEnv SP_* SHLVL"},
	})
	for _, line := range d.HostKeys {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		d.hostKeys[pub.Type()] = pub
	}
	return d
}

func (d *realSSHD) authorize(t testing.TB, pub ssh.PublicKey) {
	t.Helper()
	d.Authorize(t, string(ssh.MarshalAuthorizedKey(pub)))
}

// trust writes known_hosts with the host key of the given type only.
func (d *realSSHD) trust(h *testHome, typ string) {
	os.WriteFile(h.knownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", d.Port, ssh.MarshalAuthorizedKey(d.hostKeys[typ]))), 0o600)
}

func (d *realSSHD) login(h *testHome, extra ...string) []string {
	args := []string{"ssh", "-F", h.config, "-p", strconv.Itoa(d.Port),
		"-o", "UserKnownHostsFile=" + h.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null"}
	args = append(args, extra...)
	return append(args, "root@127.0.0.1")
}

func (d *realSSHD) command(h *testHome, command string, extra ...string) *Cmd {
	c := Command(d.login(h, extra...), command)
	c.Env = &h.env
	return c
}

// accepted counts the successful authentications in sshd's log.
func (d *realSSHD) accepted() int { return d.AuthCount() }

func TestRealSSHD(t *testing.T) {
	d := startSSHD(t)

	t.Run("ed25519 key, known RSA host key only, no ssh on PATH", func(t *testing.T) {
		h := newTestHome(t)
		// The server offers ed25519 first by default; known_hosts holds its RSA key only.
		d.trust(h, ssh.KeyAlgoRSA)
		_, pub, _ := h.key("id_ed25519", "")
		d.authorize(t, pub)
		before := d.accepted()
		t.Setenv("PATH", t.TempDir()) // no ssh binary to fall back on
		out, stderr, err := run(t, d.command(h, "echo $((6*7)); exit 0"))
		if err != nil || out != "42\n" {
			t.Fatalf("got %q, %v; stderr %q\n%s", out, err, stderr, d.Log())
		}
		if n := d.accepted() - before; n != 1 {
			t.Errorf("%d authentications in sshd's log", n)
		}
	})

	t.Run("RSA key with SHA-2", func(t *testing.T) {
		h := newTestHome(t)
		d.trust(h, ssh.KeyAlgoED25519)
		f := filepath.Join(h.dir, ".ssh", "id_rsa")
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", f).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		b, _ := os.ReadFile(f + ".pub")
		pub, _, _, _, _ := ssh.ParseAuthorizedKey(b)
		d.authorize(t, pub)
		out, stderr, err := run(t, d.command(h, "echo rsa"))
		if err != nil || out != "rsa\n" {
			t.Fatalf("got %q, %v; stderr %q\n%s", out, err, stderr, d.Log())
		}
		if !strings.Contains(d.Log(), "Accepted publickey for root from 127.0.0.1 port") ||
			!regexp.MustCompile(`Accepted publickey for root .*: RSA SHA256:`).MatchString(d.Log()) {
			t.Errorf("sshd log:\n%s", d.Log())
		}
	})

	t.Run("agent", func(t *testing.T) {
		h := newTestHome(t)
		d.trust(h, ssh.KeyAlgoED25519)
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		pub, _ := ssh.NewPublicKey(priv.Public())
		d.authorize(t, pub)
		t.Setenv("SSH_AUTH_SOCK", startAgent(t, agent.AddedKey{PrivateKey: priv, Comment: "agent key"}))
		out, stderr, err := run(t, d.command(h, "echo agent"))
		if err != nil || out != "agent\n" {
			t.Fatalf("got %q, %v; stderr %q\n%s", out, err, stderr, d.Log())
		}
	})

	t.Run("certificate", func(t *testing.T) {
		h := newTestHome(t)
		d.trust(h, ssh.KeyAlgoED25519)
		_, pub, file := h.key("id_ed25519", "")
		cert := &ssh.Certificate{Key: pub, CertType: ssh.UserCert, KeyId: "test-cert",
			ValidPrincipals: []string{"root"}, ValidBefore: ssh.CertTimeInfinity,
			Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}}}
		if err := cert.SignCert(rand.Reader, d.caKey); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(file+"-cert.pub", ssh.MarshalAuthorizedKey(cert), 0o644)
		out, stderr, err := run(t, d.command(h, "echo cert"))
		if err != nil || out != "cert\n" {
			t.Fatalf("got %q, %v; stderr %q\n%s", out, err, stderr, d.Log())
		}
		if !strings.Contains(d.Log(), `ID test-cert`) {
			t.Errorf("no certificate login in sshd's log:\n%s", d.Log())
		}
	})

	t.Run("encrypted key through SSH_ASKPASS", func(t *testing.T) {
		h := newTestHome(t)
		d.trust(h, ssh.KeyAlgoED25519)
		f := filepath.Join(h.dir, ".ssh", "id_ecdsa")
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ecdsa", "-N", "open sesame", "-f", f).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		b, _ := os.ReadFile(f + ".pub")
		pub, _, _, _, _ := ssh.ParseAuthorizedKey(b)
		d.authorize(t, pub)
		askpass := filepath.Join(h.dir, "askpass")
		os.WriteFile(askpass, []byte("#!/bin/sh\necho 'open sesame'\n"), 0o755)
		t.Setenv("SSH_ASKPASS", askpass)
		t.Setenv("SSH_ASKPASS_REQUIRE", "force")
		out, stderr, err := run(t, d.command(h, "echo unlocked"))
		if err != nil || out != "unlocked\n" {
			t.Fatalf("got %q, %v; stderr %q\n%s", out, err, stderr, d.Log())
		}
	})

	t.Run("changed host key", func(t *testing.T) {
		h := newTestHome(t)
		_, other, _ := h.key("other", "")
		os.WriteFile(h.knownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", d.Port, ssh.MarshalAuthorizedKey(other))), 0o600)
		_, pub, _ := h.key("id_ed25519", "")
		d.authorize(t, pub)
		marker := filepath.Join(h.dir, "ran")
		before := d.accepted()
		_, _, err := run(t, d.command(h, "touch "+marker))
		var he *HostKeyError
		if !errors.As(err, &he) || !he.Changed || he.Line != 1 || he.Fingerprint != ssh.FingerprintSHA256(d.hostKeys[ssh.KeyAlgoED25519]) {
			t.Fatalf("got %v (%+v)", err, he)
		}
		if _, err := os.Stat(marker); err == nil || d.accepted() != before {
			t.Error("logged in or ran something despite a changed host key")
		}
	})

	t.Run("accept-new, hashed", func(t *testing.T) {
		h := newTestHome(t)
		_, pub, _ := h.key("id_ed25519", "")
		d.authorize(t, pub)
		out, stderr, err := run(t, d.command(h, "echo new", "-o", "StrictHostKeyChecking=accept-new", "-o", "HashKnownHosts=yes"))
		if err != nil || out != "new\n" {
			t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
		}
		// OpenSSH itself must accept what was written.
		cmd := exec.Command("ssh-keygen", "-F", fmt.Sprintf("[127.0.0.1]:%d", d.Port), "-f", h.knownHosts)
		if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "|1|") {
			t.Errorf("ssh-keygen -F: %v\n%s", err, b)
		}
	})

	t.Run("exit status and signal", func(t *testing.T) {
		h := newTestHome(t)
		d.trust(h, ssh.KeyAlgoED25519)
		_, pub, _ := h.key("id_ed25519", "")
		d.authorize(t, pub)
		_, _, err := run(t, d.command(h, "exit 7"))
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Status != 7 {
			t.Errorf("exit 7: %v", err)
		}
		_, _, err = run(t, d.command(h, "kill -TERM $$"))
		if !errors.As(err, &ee) || ee.Signal != "TERM" || ee.Status != 128+15 {
			t.Errorf("kill: %v (%+v)", err, ee)
		}
	})

	t.Run("SetEnv", func(t *testing.T) {
		h := newTestHome(t)
		d.trust(h, ssh.KeyAlgoED25519)
		_, pub, _ := h.key("id_ed25519", "")
		d.authorize(t, pub)
		out, _, err := run(t, d.command(h, "echo $SP_X", "-o", "SetEnv=SP_X=hello"))
		if err != nil || out != "hello\n" {
			t.Errorf("got %q, %v", out, err)
		}
	})

	t.Run("ProxyJump through a second sshd", func(t *testing.T) {
		jump := startSSHD(t)
		h := newTestHome(t)
		_, pub, _ := h.key("id_ed25519", "")
		d.authorize(t, pub)
		jump.authorize(t, pub)
		os.WriteFile(h.knownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%d %s[127.0.0.1]:%d %s",
			d.Port, ssh.MarshalAuthorizedKey(d.hostKeys[ssh.KeyAlgoED25519]),
			jump.Port, ssh.MarshalAuthorizedKey(jump.hostKeys[ssh.KeyAlgoECDSA256]))), 0o600)
		before, jumpBefore := d.accepted(), jump.accepted()
		c := d.command(h, "echo $SSH_CONNECTION", "-o", fmt.Sprintf("ProxyJump=root@127.0.0.1:%d", jump.Port))
		out, stderr, err := run(t, c)
		if err != nil || !strings.HasPrefix(out, "127.0.0.1 ") {
			t.Fatalf("got %q, %v; stderr %q\n%s\n%s", out, err, stderr, jump.Log(), d.Log())
		}
		if d.accepted()-before != 1 || jump.accepted()-jumpBefore != 1 {
			t.Errorf("authentications: target %d, jump %d", d.accepted()-before, jump.accepted()-jumpBefore)
		}
	})

	t.Run("IdentitiesOnly past a crowded agent", func(t *testing.T) {
		h := newTestHome(t)
		d.trust(h, ssh.KeyAlgoED25519)
		var keys []agent.AddedKey
		for i := range 7 {
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			keys = append(keys, agent.AddedKey{PrivateKey: priv, Comment: fmt.Sprint("stranger ", i)})
		}
		t.Setenv("SSH_AUTH_SOCK", startAgent(t, keys...))
		_, pub, file := h.key("mine", "")
		d.authorize(t, pub)
		// sshd's MaxAuthTries (6) ends the connection before the file's key is offered.
		_, _, err := run(t, d.command(h, "true", "-i", file))
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Err == nil || !strings.Contains(ae.Hint(), "IdentitiesOnly") {
			t.Fatalf("without IdentitiesOnly: %v", err)
		}
		t.Logf("as expected: %v", err)
		out, stderr, err := run(t, d.command(h, "echo only", "-i", file, "-o", "IdentitiesOnly=yes"))
		if err != nil || out != "only\n" {
			t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
		}
	})

	t.Run("agent auth failure lists methods", func(t *testing.T) {
		h := newTestHome(t)
		d.trust(h, ssh.KeyAlgoED25519)
		h.key("id_ed25519", "") // not authorized
		c := d.command(h, "true")
		c.BatchMode = true
		_, _, err := run(t, c)
		var ae *AuthError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), "tried publickey (1 key); the server accepts publickey") {
			t.Errorf("got %v", err)
		}
	})
}

// BenchmarkLogin compares a native login running "true" with the ssh binary doing the same
// against the same sshd, interleaved, and reports the medians and their ratio. Both send
// SHLVL=5, so that root's bash skips ~/.bashrc, which on a developer's machine may take
// longer than the login itself.
func BenchmarkLogin(b *testing.B) {
	d, h, key := benchSetup(b)
	var native, binary []time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if err := d.command(h, "true", "-o", "SetEnv=SHLVL=5").Run(testCtxB(b)); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		args := append(d.login(h, "-i", key, "-o", "BatchMode=yes", "-o", "SetEnv=SHLVL=5")[1:], "true")
		if out, err := exec.Command("ssh", args...).CombinedOutput(); err != nil {
			b.Fatalf("ssh: %v: %s", err, out)
		}
		native, binary = append(native, t1.Sub(t0)), append(binary, time.Since(t1))
	}
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	n, s := median(native), median(binary)
	b.ReportMetric(float64(n.Microseconds())/1000, "native-ms")
	b.ReportMetric(float64(s.Microseconds())/1000, "ssh-ms")
	b.ReportMetric(float64(n)/float64(s), "ratio")
}

func benchSetup(b *testing.B) (*realSSHD, *testHome, string) {
	d := startSSHD(b)
	h := newTestHome(b)
	d.trust(h, ssh.KeyAlgoED25519)
	_, pub, key := h.key("id_ed25519", "")
	d.authorize(b, pub)
	return d, h, key
}

func testCtxB(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	b.Cleanup(cancel)
	return ctx
}
