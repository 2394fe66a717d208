package sshlogin

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/socketpipe/socketpipe/pkg/sshconfig"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// AuthError reports a failed authentication: what was tried and what the server accepts.
type AuthError struct {
	User string // the remote user
	Host string // the host as given ("alias" or "host"), with the port when not 22
	// Tried lists the methods tried, in order, e.g. {"publickey", "password"}.
	Tried []string
	// Offered lists the methods the server accepts, e.g. {"publickey", "password"}.
	Offered []string
	// Keys describes the public keys offered: "/root/.ssh/id_ed25519 ED25519 SHA256:..."
	// or "agent: comment ED25519 SHA256:...".
	Keys []string
	// Notes says why keys or methods were skipped (an encrypted key under BatchMode, ...).
	Notes []string
	// Err is the underlying error, if authentication ended with one.
	Err error
	// Batch is set when BatchMode kept password and keyboard-interactive prompts from running.
	Batch bool
}

func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "authentication as %s to %s failed: ", e.User, e.Host)
	if len(e.Tried) == 0 {
		b.WriteString("no method to try")
	} else {
		b.WriteString("tried " + strings.Join(e.Tried, ","))
	}
	if n := len(e.Keys); n > 0 {
		fmt.Fprintf(&b, " (%d key%s)", n, map[bool]string{true: "s"}[n > 1])
	}
	if len(e.Offered) > 0 {
		b.WriteString("; the server accepts " + strings.Join(e.Offered, ","))
	}
	if len(e.Notes) > 0 {
		b.WriteString("; " + strings.Join(e.Notes, "; "))
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *AuthError) Unwrap() error { return e.Err }

// Hint says what the user can do about the error, for a "hint:" line.
func (e *AuthError) Hint() string {
	interactive := slices.Contains(e.Offered, "password") || slices.Contains(e.Offered, "keyboard-interactive")
	switch {
	case e.Err != nil && strings.Contains(e.Err.Error(), "Too many authentication failures"):
		return fmt.Sprintf("the server gave up after %d keys: name the right one with ssh -i and -o IdentitiesOnly=yes", len(e.Keys))
	case len(e.Keys) == 0 && interactive && e.Batch:
		return "no key was found, and batch mode forbids password prompts: load a key into the agent (ssh-add) or name one with ssh -i"
	case len(e.Keys) == 0:
		return "no key was found: load a key into the agent (ssh-add) or name one with ssh -i"
	case interactive && e.Batch:
		return fmt.Sprintf("no key was accepted; add one to ~%s/.ssh/authorized_keys on the host (batch mode forbids password prompts)", e.User)
	}
	return fmt.Sprintf("no key was accepted; add one to ~%s/.ssh/authorized_keys on the host, or check with ssh -v", e.User)
}

// handshakeState is what the host key check tells authentication.
type handshakeState struct {
	hostKey    ssh.PublicKey
	userKey    ssh.PublicKey // the key the server accepted, with public key authentication
	keyChanged bool          // accepted a changed key (StrictHostKeyChecking no): no passwords
	viaProxy   bool          // reached through a ProxyJump hop: no address to check
}

// maxPrompts is OpenSSH's NumberOfPasswordPrompts default.
const maxPrompts = 3

// authState drives authentication as OpenSSH does: the methods in PreferredAuthentications
// order, each as long as the server accepts it; public keys from the agent first, then the
// identity files, each private key file read and parsed only when the server accepts its
// public key.
type authState struct {
	c     *Cmd
	cfg   *sshconfig.Config
	env   sshconfig.Env
	p     *prompter
	d     *debug
	hs    *handshakeState
	batch bool

	prepDone chan struct{}
	keys     []*keySigner
	agentC   net.Conn
	next     int // first key not yet offered

	calls       int
	tried       []string
	offered     []string
	used        string
	usedKey     *keySigner
	pwTries     int
	kbdTries    int
	promptErr   error
	notes       []string
	offeredKeys []string
	mu          sync.Mutex
}

func newAuthState(c *Cmd, cfg *sshconfig.Config, env sshconfig.Env, p *prompter, d *debug, hs *handshakeState) *authState {
	a := &authState{c: c, cfg: cfg, env: env, p: p, d: d, hs: hs, batch: p.batch, prepDone: make(chan struct{}), used: "none"}
	// Read the agent's list and the public key files while the key exchange runs.
	go func() {
		defer close(a.prepDone)
		if cfg.PubkeyAuthentication {
			a.prepare()
		}
	}()
	return a
}

// done releases the agent connection.
func (a *authState) done() {
	<-a.prepDone
	if a.agentC != nil {
		a.agentC.Close()
	}
}

func (a *authState) note(format string, args ...any) {
	a.mu.Lock()
	a.notes = append(a.notes, fmt.Sprintf(format, args...))
	a.mu.Unlock()
}

// pick picks the next authentication method (ssh.ClientConfig.AuthCallback).
func (a *authState) pick(ctx *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
	a.calls++
	a.offered = ctx.AllowedMethods
	a.d.printf("Authentications that can continue: %s", strings.Join(ctx.AllowedMethods, ","))
	order := a.cfg.PreferredAuthentications
	if len(order) == 0 {
		order = []string{"publickey", "keyboard-interactive", "password"}
	}
	for _, m := range order {
		if !slices.Contains(ctx.AllowedMethods, m) {
			continue
		}
		switch m {
		case "publickey":
			if !a.cfg.PubkeyAuthentication {
				continue
			}
			<-a.prepDone
			if a.next >= len(a.keys) {
				continue
			}
			a.try(m)
			a.used = m
			rest := a.keys[a.next:]
			a.next = len(a.keys)
			return ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
				signers := make([]ssh.Signer, len(rest))
				for i, k := range rest {
					signers[i] = k
				}
				return signers, nil
			}), nil
		case "keyboard-interactive":
			if !a.cfg.KbdInteractiveAuthentication || a.hs.keyChanged || a.kbdTries >= maxPrompts {
				continue
			}
			if a.batch || a.promptErr != nil {
				continue
			}
			a.kbdTries++
			a.try(m)
			a.used = m
			return ssh.KeyboardInteractive(a.challenge), nil
		case "password":
			if !a.cfg.PasswordAuthentication || a.hs.keyChanged || a.pwTries >= maxPrompts {
				continue
			}
			if a.batch || a.promptErr != nil {
				continue
			}
			a.pwTries++
			a.try(m)
			a.used = m
			return ssh.PasswordCallback(a.password), nil
		}
	}
	return nil, a.failure(nil)
}

func (a *authState) try(m string) {
	if len(a.tried) == 0 || a.tried[len(a.tried)-1] != m {
		a.tried = append(a.tried, m)
	}
}

func (a *authState) password() (string, error) {
	a.d.printf("Next authentication method: password")
	pw, err := a.p.secret(fmt.Sprintf("%s@%s's password: ", a.cfg.User, a.cfg.HostName))
	if err != nil {
		a.promptErr = err
		a.note("password: %v", err)
	}
	return pw, err
}

func (a *authState) challenge(name, instruction string, questions []string, echos []bool) ([]string, error) {
	a.d.printf("Next authentication method: keyboard-interactive")
	if len(questions) == 0 {
		return nil, nil
	}
	if a.c.Stderr != nil && (name != "" || instruction != "") {
		// OpenSSH shows these on the terminal; Stderr is the closest we have.
		for _, s := range []string{name, instruction} {
			if s != "" {
				fmt.Fprintln(a.c.Stderr, strings.TrimRight(serverText(s), "\n"))
			}
		}
	}
	answers := make([]string, len(questions))
	for i, q := range questions {
		var err error
		answers[i], err = a.p.ask(serverText(q), echos[i])
		if err != nil {
			a.promptErr = err
			a.note("keyboard-interactive: %v", err)
			return nil, err
		}
	}
	return answers, nil
}

// failure builds the AuthError for the end of authentication.
func (a *authState) failure(err error) *AuthError {
	host := a.cfg.Host
	if a.cfg.Port != 22 {
		host = net.JoinHostPort(host, fmt.Sprint(a.cfg.Port))
	}
	e := &AuthError{User: a.cfg.User, Host: host, Tried: a.tried, Offered: a.offered, Err: err, Batch: a.batch}
	a.mu.Lock()
	e.Keys = slices.Clone(a.offeredKeys)
	e.Notes = slices.Clone(a.notes)
	a.mu.Unlock()
	if a.batch && (slices.Contains(a.offered, "password") || slices.Contains(a.offered, "keyboard-interactive")) {
		e.Notes = append(e.Notes, "no password prompt in batch mode")
	}
	return e
}

// wrap turns the error of ssh.NewClientConn into ours.
func (a *authState) wrap(err error) error {
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae
	}
	var he *HostKeyError
	if errors.As(err, &he) {
		return he
	}
	if a.calls > 0 {
		return a.failure(errors.Unwrap(err))
	}
	return fmt.Errorf("ssh handshake with %s: %w", a.cfg.Host, err)
}

// usedDesc describes the method that succeeded, for Logf.
func (a *authState) usedDesc() string {
	if a.used == "publickey" && a.usedKey != nil {
		return "publickey " + a.usedKey.desc
	}
	return a.used
}

// keySigner is one public key to offer. Its private half is in the agent or in a file that
// is read, decrypted and parsed only when the server accepts the public key.
type keySigner struct {
	a       *authState
	idx     int
	pub     ssh.PublicKey // the key or the certificate offered
	desc    string
	agent   ssh.Signer // the private key in the agent, if it is there
	file    string     // the private key file otherwise
	pre     ssh.Signer // the file's private key, if already parsed
	offered bool
	mu      sync.Mutex
	signer  ssh.Signer
	loadErr error
}

// PublicKey is called by x/crypto as it offers the key: recorded for -v and AuthError.
func (k *keySigner) PublicKey() ssh.PublicKey {
	a := k.a
	a.mu.Lock()
	first := !k.offered
	k.offered = true
	if first {
		a.offeredKeys = append(a.offeredKeys, k.desc)
	}
	a.mu.Unlock()
	if first {
		a.d.printf("Offering public key: %s", k.desc)
	}
	return k.pub
}

func (k *keySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	return k.SignWithAlgorithm(rand, data, "")
}

// Algorithms lists the signature algorithms of the key, RSA with SHA-2 first.
func (k *keySigner) Algorithms() []string {
	base := k.pub
	if c, ok := base.(*ssh.Certificate); ok {
		base = c.Key
	}
	if base.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{base.Type()}
}

func (k *keySigner) SignWithAlgorithm(rand io.Reader, data []byte, algo string) (*ssh.Signature, error) {
	a := k.a
	a.d.printf("Server accepts key: %s", k.desc)
	s, err := k.load()
	if err != nil {
		// Go on with the keys after this one in the next round.
		a.next = k.idx + 1
		a.note("%s: %v", k.desc, err)
		a.d.printf("skipping key %s: %v", k.desc, err)
		return nil, err
	}
	a.usedKey = k
	if as, ok := s.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algo)
	}
	return s.Sign(rand, data)
}

func (k *keySigner) load() (ssh.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.signer != nil || k.loadErr != nil {
		return k.signer, k.loadErr
	}
	var priv ssh.Signer
	var err error
	if k.agent != nil {
		priv = k.agent
	} else if k.file != "" {
		// ssh checks the file's mode when it loads the private key, even when it already
		// read the public half from it.
		if err = keyPermOK(k.file, k.a.d); err == nil {
			priv = k.pre
			if priv == nil {
				priv, err = loadKeyFile(k.file, k.a.p, k.a.d)
			}
		}
	} else {
		err = errors.New("no private key")
	}
	if err == nil {
		if cert, ok := k.pub.(*ssh.Certificate); ok && !bytes.Equal(priv.PublicKey().Marshal(), cert.Marshal()) {
			priv, err = ssh.NewCertSigner(cert, priv)
		}
	}
	k.signer, k.loadErr = priv, err
	return priv, err
}

// errBadPermissions is OpenSSH's reason for ignoring a private key file that others can read.
var errBadPermissions = errors.New("bad permissions")

// keyPermOK refuses a private key file of the user's own that group or others may read or
// write, with OpenSSH's warning (sshkey_perm_ok): a file owned by another user (root's key
// read by a service, say) is the owner's business and is not checked.
func keyPermOK(file string, d *debug) error {
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	d.errorf("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n" +
		"@         WARNING: UNPROTECTED PRIVATE KEY FILE!          @\n" +
		"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@")
	d.errorf("Permissions 0%03o for '%s' are too open.", fi.Mode().Perm(), file)
	d.errorf("It is required that your private key files are NOT accessible by others.")
	d.errorf("This private key will be ignored.")
	d.errorf("Load key \"%s\": %v", file, errBadPermissions)
	return errBadPermissions
}

// loadKeyFile reads and parses a private key, asking for its passphrase if it is encrypted.
func loadKeyFile(file string, p *prompter, d *debug) (ssh.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(data)
	var pm *ssh.PassphraseMissingError
	if !errors.As(err, &pm) {
		return s, err
	}
	if p.batch {
		return nil, errors.New("the key is encrypted and batch mode forbids asking its passphrase")
	}
	prompt := fmt.Sprintf("Enter passphrase for key '%s': ", file)
	for range maxPrompts {
		pass, err := p.secret(prompt)
		if err != nil {
			return nil, err
		}
		if pass == "" {
			return nil, errors.New("no passphrase given")
		}
		s, err = ssh.ParsePrivateKeyWithPassphrase(data, []byte(pass))
		if !errors.Is(err, x509.IncorrectPasswordError) {
			return s, err
		}
		d.printf("bad passphrase given for %s", file)
		prompt = fmt.Sprintf("Bad passphrase, try again for %s: ", file)
	}
	return nil, errors.New("bad passphrase")
}

// agentSigner signs with a key held by the agent, RSA with SHA-2 when asked.
type agentSigner struct {
	ag  agent.ExtendedAgent
	pub ssh.PublicKey
}

func (s *agentSigner) PublicKey() ssh.PublicKey { return s.pub }

func (s *agentSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	return s.ag.Sign(s.pub, data)
}

func (s *agentSigner) SignWithAlgorithm(rand io.Reader, data []byte, algo string) (*ssh.Signature, error) {
	switch algo {
	case ssh.KeyAlgoRSASHA256:
		return s.ag.SignWithFlags(s.pub, data, agent.SignatureFlagRsaSha256)
	case ssh.KeyAlgoRSASHA512:
		return s.ag.SignWithFlags(s.pub, data, agent.SignatureFlagRsaSha512)
	}
	return s.ag.Sign(s.pub, data)
}

// agentSocket is where the agent listens: IdentityAgent, or SSH_AUTH_SOCK; "" for none.
func agentSocket(cfg *sshconfig.Config, env sshconfig.Env) string {
	switch s := cfg.IdentityAgent; {
	case s == "none":
		return ""
	case s == "" || s == "SSH_AUTH_SOCK":
		return env.Get("SSH_AUTH_SOCK")
	case strings.HasPrefix(s, "$"):
		return env.Get(strings.Trim(s[1:], "{}"))
	default:
		return s
	}
}

// fileKey is an identity file's public half, read without touching the private key when
// a .pub file exists.
type fileKey struct {
	file string
	pub  ssh.PublicKey
	priv ssh.Signer // when the private key had to be parsed to find the public one
	cert *ssh.Certificate
	used bool
}

// prepare lists the keys to offer, in OpenSSH's order: the agent's keys (only those of the
// identity files under IdentitiesOnly), then the identity files the agent does not hold;
// a certificate is offered just before its key.
func (a *authState) prepare() {
	cfg, d := a.cfg, a.d
	var files []*fileKey
	for _, f := range cfg.IdentityFiles {
		fk := readPublicHalf(f, d)
		if fk == nil {
			d.printf("identity file %s type -1", f)
			continue
		}
		if t := fk.pub.Type(); t == ssh.KeyAlgoSKED25519 || t == ssh.KeyAlgoSKECDSA256 {
			// A FIDO key signs through a SecurityKeyProvider, which only ssh has.
			d.printf("skipping security key %s: it needs the ssh binary", f)
			a.note("security key %s skipped: it needs the ssh binary (socketpipe -x)", f)
			continue
		}
		if c, err := readCert(f + "-cert.pub"); err == nil && bytes.Equal(c.Key.Marshal(), fk.pub.Marshal()) {
			fk.cert = c
		}
		files = append(files, fk)
	}
	var certs []*ssh.Certificate
	for _, f := range cfg.CertificateFiles {
		c, err := readCert(f)
		if err != nil {
			d.printf("certificate %s: %v", f, err)
			a.note("certificate %s: %v", f, err)
			continue
		}
		certs = append(certs, c)
	}
	certFor := func(pub ssh.PublicKey) *ssh.Certificate {
		for _, c := range certs {
			if bytes.Equal(c.Key.Marshal(), pub.Marshal()) {
				return c
			}
		}
		for _, fk := range files {
			if fk.cert != nil && bytes.Equal(fk.pub.Marshal(), pub.Marshal()) {
				return fk.cert
			}
		}
		return nil
	}
	fileFor := func(pub ssh.PublicKey) *fileKey {
		if c, ok := pub.(*ssh.Certificate); ok {
			pub = c.Key
		}
		for _, fk := range files {
			if bytes.Equal(fk.pub.Marshal(), pub.Marshal()) {
				return fk
			}
		}
		return nil
	}
	seen := map[string]bool{}
	add := func(k *keySigner) {
		b := string(k.pub.Marshal())
		if seen[b] {
			return
		}
		seen[b] = true
		k.a, k.idx = a, len(a.keys)
		k.desc += " " + keyTypeName(k.pub) + " " + ssh.FingerprintSHA256(k.pub)
		a.keys = append(a.keys, k)
	}

	if sock := agentSocket(cfg, a.env); sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			d.printf("Could not connect to the agent at %s: %v", sock, err)
		} else {
			a.agentC = conn
			ag := agent.NewClient(conn)
			list, err := ag.List()
			if err != nil {
				d.printf("Could not list the agent's keys: %v", err)
			}
			for _, ak := range list {
				pub, err := ssh.ParsePublicKey(ak.Blob)
				if err != nil {
					continue
				}
				fk := fileFor(pub)
				_, isCert := pub.(*ssh.Certificate)
				if cfg.IdentitiesOnly && fk == nil && (isCert || certFor(pub) == nil) {
					continue
				}
				desc := "agent: " + ak.Comment
				if fk != nil {
					desc = fk.file + " (agent)"
					fk.used = true
				}
				s := &agentSigner{ag: ag, pub: pub}
				if c := certFor(pub); c != nil && !isCert {
					add(&keySigner{pub: c, desc: desc + " certificate", agent: s})
				}
				add(&keySigner{pub: pub, desc: desc, agent: s})
			}
		}
	}
	for _, fk := range files {
		if fk.used {
			continue
		}
		if c := certFor(fk.pub); c != nil {
			add(&keySigner{pub: c, desc: fk.file + " certificate", file: fk.file, pre: fk.priv})
		}
		add(&keySigner{pub: fk.pub, desc: fk.file, file: fk.file, pre: fk.priv})
	}
	for _, k := range a.keys {
		d.printf("Will attempt key: %s", k.desc)
	}
}

// readPublicHalf finds the public key of an identity file from file.pub, or from the
// private key file itself (OpenSSH's format keeps the public key in clear even when the
// private key is encrypted). nil if there is no such key.
func readPublicHalf(file string, d *debug) *fileKey {
	if b, err := os.ReadFile(file + ".pub"); err == nil {
		if pub, _, _, _, err := ssh.ParseAuthorizedKey(b); err == nil {
			return &fileKey{file: file, pub: pub}
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			d.printf("identity file %s: %v", file, err)
		}
		return nil
	}
	s, err := ssh.ParsePrivateKey(b)
	var pm *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return &fileKey{file: file, pub: s.PublicKey(), priv: s}
	case errors.As(err, &pm) && pm.PublicKey != nil:
		return &fileKey{file: file, pub: pm.PublicKey}
	case errors.As(err, &pm):
		// An old PEM key, encrypted, without a .pub beside it: OpenSSH asks for the
		// passphrase up front; offering it needs the key.
		d.printf("identity file %s is encrypted and has no .pub file; skipped", file)
		return nil
	}
	d.printf("identity file %s: %v", file, err)
	return nil
}

func readCert(file string) (*ssh.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, err
	}
	c, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, errors.New("not a certificate")
	}
	return c, nil
}
