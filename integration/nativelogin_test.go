package integration

// The native login against real OpenSSH servers (issue 3): `-l { ssh ... }` without -x logs in
// in-process, with the agent, key files, an encrypted key, a certificate, ssh_config aliases,
// known_hosts and ProxyJump, and executes the ssh binary only for what it cannot honour. Every
// run checks that the data arrived intact and, from -v, which way the login went; the ones
// that log in check that sshd counted exactly one authentication.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/socketpipe/socketpipe/integration/harness"
)

// nlBound bounds one socketpipe run; a run takes well under a second on an idle machine.
const nlBound = 2 * time.Minute

// nlServer is an sshd whose sessions find the freshly built socketpipe and carry a marker,
// with a directory for the client's files.
type nlServer struct {
	sshd   *harness.SSHD
	bin    string // directory holding the socketpipe binary
	marker string
	dir    string // the client's files: configs, keys, known_hosts
}

// nlStart starts an sshd for native-login tests. opts.PathDirs and the marker are added.
func nlStart(t *testing.T, opts harness.SSHDOptions) *nlServer {
	t.Helper()
	bin := harness.BuildSocketpipe(t)
	marker := harness.NewMarker()
	opts.PathDirs = append([]string{bin}, opts.PathDirs...)
	if opts.Env == nil {
		opts.Env = map[string]string{}
	}
	opts.Env[harness.MarkerEnv] = marker
	s := &nlServer{sshd: harness.StartSSHD(t, opts), bin: bin, marker: marker, dir: t.TempDir()}
	t.Cleanup(func() { harness.WaitNoProcesses(t, marker, 15*time.Second) })
	return s
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

// nlOpts are the circumstances of one run.
type nlOpts struct {
	stdin  []byte
	env    []string      // added to (and overriding) the test's environment
	host   *harness.Host // run inside this namespace; nil for the test's own
	setsid bool          // no controlling terminal
}

type nlResult struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r *nlResult) String() string {
	out := r.stdout
	if len(out) > 200 {
		out = out[:200] + "..."
	}
	return fmt.Sprintf("exit %d after %v\nstdout: %q\nstderr:\n%s", r.code, r.took.Round(time.Millisecond), out, r.stderr)
}

// nlCleanEnv is the test's environment without what would let the user's own agent, askpass
// or display take part.
func nlCleanEnv(marker string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "SSH_AUTH_SOCK", "SSH_AGENT_PID", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY", "WAYLAND_DISPLAY":
			return true
		}
		return false
	})
	return append(env, harness.MarkerEnv+"="+marker)
}

// run runs socketpipe with args, bounded by nlBound.
func (s *nlServer) run(t *testing.T, o nlOpts, args ...string) *nlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nlBound)
	defer cancel()
	sp := filepath.Join(s.bin, "socketpipe")
	var cmd *exec.Cmd
	if o.host != nil {
		cmd = o.host.Command(ctx, append([]string{sp}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, sp, args...)
	}
	cmd.Env = append(nlCleanEnv(s.marker), o.env...)
	cmd.Stdin = bytes.NewReader(o.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: o.setsid}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	t0 := time.Now()
	err := cmd.Run()
	res := &nlResult{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(t0)}
	if ctx.Err() != nil {
		t.Fatalf("socketpipe %q did not end within %v\n%v", args, nlBound, res)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running socketpipe: %v", err)
	}
	return res
}

// nlLogin is "-l { login... }".
func nlLogin(login ...string) []string {
	return append(append([]string{"-l", "{"}, login...), "}")
}

// nlData is random data for a transfer.
func nlData(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// transfer sends random data through `-i { cat } -l { login } -r { cat } -o { cat }` with -v
// and extra options, and checks that it arrived intact, that the login was native, and that
// sshd counted exactly one authentication.
func (s *nlServer) transfer(t *testing.T, o nlOpts, login []string, extra ...string) *nlResult {
	t.Helper()
	res := s.transferAny(t, o, login, extra...)
	nlWantNative(t, res)
	return res
}

// transferAny is transfer without the check of the login path.
func (s *nlServer) transferAny(t *testing.T, o nlOpts, login []string, extra ...string) *nlResult {
	t.Helper()
	o.stdin = nlData(t, 256<<10)
	before := s.sshd.AuthCount()
	args := append([]string{"-v"}, extra...)
	args = append(args, "-i", "{", "cat", "}")
	args = append(args, nlLogin(login...)...)
	args = append(args, "-r", "{", "cat", "}", "-o", "{", "cat", "}")
	res := s.run(t, o, args...)
	if res.code != 0 {
		t.Fatalf("want exit 0, got %v", res)
	}
	if !bytes.Equal([]byte(res.stdout), o.stdin) {
		t.Fatalf("%d bytes arrived, not the %d sent\n%v", len(res.stdout), len(o.stdin), res)
	}
	if n := s.sshd.AuthCount() - before; n != 1 {
		t.Errorf("sshd logged %d authentications for one run, want 1\n%v", n, res)
	}
	return res
}

// nlWantNative fails unless -v says the login was made in-process.
func nlWantNative(t *testing.T, res *nlResult) {
	t.Helper()
	if !strings.Contains(res.stderr, "socketpipe: [") {
		t.Fatalf("no -v timeline on stderr:\n%s", res.stderr)
	}
	if !strings.Contains(res.stderr, "] native login: ") || strings.Contains(res.stderr, "executing the login command") {
		t.Fatalf("the login was not native:\n%s", res.stderr)
	}
}

// nlMustContain fails unless s contains each of subs.
func nlMustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
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
	cmd.Env = nlCleanEnv("")
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
		add.Env = append(nlCleanEnv(""), "SSH_AUTH_SOCK="+sock)
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
	accepted := func(t *testing.T, pub string, res *nlResult) {
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
		res := s.transfer(t, nlOpts{env: []string{"SSH_AUTH_SOCK=" + sock}}, []string{"ssh", "-F", cfg, "sp-agent"})
		nlMustContain(t, "-v", res.stderr, "authenticated as root with publickey agent: id_agent ED25519 "+nlFingerprint(t, agentPub))
		accepted(t, agentPub, res)
	})

	t.Run("key-file", func(t *testing.T) {
		cfg := s.config(t, "sp-file", "IdentityAgent none", "IdentitiesOnly yes")
		res := s.transfer(t, nlOpts{}, []string{"ssh", "-F", cfg, "-i", fileKey, "sp-file"})
		nlMustContain(t, "-v", res.stderr, "authenticated as root with publickey "+fileKey+" ED25519")
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
		o := nlOpts{setsid: true, env: []string{"SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force"}}
		res := s.transfer(t, o, []string{"ssh", "-F", cfg, "sp-locked"})
		b, _ := os.ReadFile(asked)
		if want := fmt.Sprintf("Enter passphrase for key '%s': \n", lockedKey); string(b) != want {
			t.Errorf("SSH_ASKPASS was asked %q, want once %q", b, want)
		}
		accepted(t, lockedPub, res)
	})

	t.Run("certificate", func(t *testing.T) {
		cfg := s.config(t, "sp-cert", "IdentityAgent none", "IdentitiesOnly yes")
		res := s.transfer(t, nlOpts{}, []string{"ssh", "-F", cfg, "-i", certKey, "sp-cert"})
		nlMustContain(t, "-v", res.stderr, "authenticated as root with publickey "+certKey+" certificate ED25519-CERT")
		fp := nlFingerprint(t, certPub)
		if log := s.sshd.Log(); !strings.Contains(log, "ED25519-CERT "+fp+" ID "+certID) {
			t.Errorf("sshd did not log a certificate login with %s, ID %s:\n%s", fp, certID, log)
		}
	})
}
