package sshlogin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/skeema/knownhosts"
	"github.com/socketpipe/socketpipe/pkg/sshconfig"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError reports a host key that known_hosts does not vouch for: a changed key, a
// revoked key, or the key of an unknown host that could not be accepted.
type HostKeyError struct {
	// Host is the name looked up in known_hosts: "[127.0.0.1]:2222", "example.org" (port 22)
	// or the HostKeyAlias.
	Host string
	// Changed is set when known_hosts holds another key of the same type for Host: the
	// server's key changed, or someone is in the middle.
	Changed bool
	// Revoked is set when the key is marked @revoked.
	Revoked bool
	// File and Line locate the conflicting or revoking known_hosts line; "" and 0 for an
	// unknown host.
	File string
	Line int
	// KeyType ("ED25519", "RSA", ...) and Fingerprint ("SHA256:...") describe the key the
	// server offered.
	KeyType     string
	Fingerprint string
	// Reason says why the key of an unknown host was refused: "StrictHostKeyChecking yes",
	// "BatchMode", "no terminal to ask", "declined".
	Reason string
}

func (e *HostKeyError) Error() string {
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key for %s is revoked by known_hosts line %d (%s): offered %s key %s",
			e.Host, e.Line, e.File, e.KeyType, e.Fingerprint)
	case e.Changed:
		return fmt.Sprintf("host key for %s does not match known_hosts line %d (%s): offered %s key %s",
			e.Host, e.Line, e.File, e.KeyType, e.Fingerprint)
	}
	return fmt.Sprintf("host key for %s is not known (%s): offered %s key %s",
		e.Host, e.Reason, e.KeyType, e.Fingerprint)
}

// Hint says what the user can do about the error, for a "hint:" line.
func (e *HostKeyError) Hint() string {
	switch {
	case e.Revoked:
		return "the server offers a key marked as revoked; do not connect until its administrator replaces it"
	case e.Changed:
		// -f names the file: ssh-keygen -R alone edits only ~/.ssh/known_hosts.
		return fmt.Sprintf("if the host key really changed, remove the old key (ssh-keygen -f '%s' -R '%s', or delete line %d of %s) and connect again",
			e.File, e.Host, e.Line, e.File)
	}
	return fmt.Sprintf("check the fingerprint %s with the host's administrator, then add the key to known_hosts "+
		"(connect once with ssh, or with -o StrictHostKeyChecking=accept-new)", e.Fingerprint)
}

// keyTypeName is OpenSSH's name for a key type: "ED25519", "ECDSA", "RSA", "ED25519-CERT".
func keyTypeName(k ssh.PublicKey) string {
	if c, ok := k.(*ssh.Certificate); ok {
		return keyTypeName(c.Key) + "-CERT"
	}
	t := k.Type()
	switch {
	case t == ssh.KeyAlgoED25519:
		return "ED25519"
	case strings.HasPrefix(t, "ecdsa-"):
		return "ECDSA"
	case t == ssh.KeyAlgoRSA:
		return "RSA"
	case t == ssh.KeyAlgoDSA:
		return "DSA"
	case t == ssh.KeyAlgoSKED25519:
		return "ED25519-SK"
	case t == ssh.KeyAlgoSKECDSA256:
		return "ECDSA-SK"
	}
	return strings.ToUpper(t)
}

// hostKeyCheck returns the host key callback and the host key algorithms for cfg: known_hosts
// as OpenSSH reads it (UserKnownHostsFile and GlobalKnownHostsFile, missing files are fine),
// with the algorithms known_hosts holds for the host offered first.
func (c *Cmd) hostKeyCheck(cfg *sshconfig.Config, p *prompter, d *debug, hs *handshakeState) (ssh.HostKeyCallback, []string, error) {
	lookup := net.JoinHostPort(cfg.HostName, strconv.Itoa(cfg.Port))
	if cfg.HostKeyAlias != "" {
		lookup = net.JoinHostPort(cfg.HostKeyAlias, "22")
		d.printf("using hostkeyalias: %s", cfg.HostKeyAlias)
	}
	name := knownhosts.Normalize(lookup)
	var files []string
	for _, f := range slices.Concat(cfg.UserKnownHostsFiles, cfg.GlobalKnownHostsFiles) {
		if f == "" || f == "none" || f == "/dev/null" {
			continue
		}
		f = p.env.ExpandTilde(f)
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		}
	}
	db, err := knownhosts.NewDB(files...)
	if err != nil {
		return nil, nil, fmt.Errorf("known_hosts: %w", err)
	}
	var algos []string
	if len(cfg.HostKeyAlgorithms) > 0 {
		imp := slices.Concat(ssh.SupportedAlgorithms().HostKeys, ssh.InsecureAlgorithms().HostKeys)
		algos = implemented(configured(cfg.HostKeyAlgorithms, ssh.SupportedAlgorithms().HostKeys), imp)
	} else if known := db.HostKeyAlgorithms(lookup); len(known) > 0 {
		algos = known
		for _, a := range ssh.SupportedAlgorithms().HostKeys {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	check := db.HostKeyCallback()
	batch := p.batch
	var verify func(remote net.Addr, key ssh.PublicKey) error
	verify = func(remote net.Addr, key ssh.PublicKey) error {
		hs.hostKey = key
		err := check(lookup, remote, key)
		if err == nil {
			d.printf("Host '%s' is known and matches the %s host key.", name, keyTypeName(key))
			return nil
		}
		e := &HostKeyError{Host: name, KeyType: keyTypeName(key), Fingerprint: ssh.FingerprintSHA256(key)}
		var rev *xknownhosts.RevokedError
		if errors.As(err, &rev) {
			e.Revoked, e.File, e.Line = true, rev.Revoked.Filename, rev.Revoked.Line
			return e
		}
		var ke *xknownhosts.KeyError
		if !errors.As(err, &ke) {
			// A certificate that no @cert-authority line vouches for: check the plain key,
			// as OpenSSH does.
			if cert, ok := key.(*ssh.Certificate); ok {
				d.printf("No matching CA found. Retry with plain key")
				return verify(remote, cert.Key)
			}
			return fmt.Errorf("host key for %s: %w", name, err)
		}
		var others []string
		for _, w := range ke.Want {
			if w.Key.Type() == key.Type() {
				e.Changed, e.File, e.Line = true, w.Filename, w.Line
				break
			}
			others = append(others, fmt.Sprintf("%s line %d", w.Filename, w.Line))
		}
		if e.Changed {
			if cfg.StrictHostKeyChecking == "no" {
				d.warnf("Warning: the %s host key for '%s' differs from the key in %s:%d; continuing as StrictHostKeyChecking is no (password authentication disabled).",
					e.KeyType, name, e.File, e.Line)
				hs.keyChanged = true
				return nil
			}
			return e
		}
		if len(others) > 0 {
			d.printf("keys of other types are known for %s: %s", name, strings.Join(others, ", "))
		}
		switch cfg.StrictHostKeyChecking {
		case "no", "off":
			c.addKnownHost(cfg, name, key, d)
			return nil
		case "accept-new":
			c.addKnownHost(cfg, name, key, d)
			return nil
		case "yes", "true":
			e.Reason = "StrictHostKeyChecking yes"
			return e
		}
		if batch {
			e.Reason = "BatchMode"
			return e
		}
		if ok, reason := askHostKey(p, name, remote, key, len(others) > 0); !ok {
			e.Reason = reason
			return e
		}
		c.addKnownHost(cfg, name, key, d)
		return nil
	}
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		if err := verify(remote, key); err != nil {
			return err
		}
		if cfg.CheckHostIP {
			c.checkHostIP(cfg, check, remote, key, d)
		}
		return nil
	}, algos, nil
}

// checkHostIP does what OpenSSH's CheckHostIP does once the host key is verified: warn
// when known_hosts holds another key for the address the connection reached, and record
// the key for that address when it holds none.
func (c *Cmd) checkHostIP(cfg *sshconfig.Config, check ssh.HostKeyCallback, remote net.Addr, key ssh.PublicKey, d *debug) {
	ta, ok := remote.(*net.TCPAddr)
	if !ok || ta.IP == nil || ta.IP.IsUnspecified() || cfg.HostKeyAlias != "" || net.ParseIP(cfg.HostName) != nil {
		return
	}
	if cert, ok := key.(*ssh.Certificate); ok {
		key = cert.Key
	}
	ipName := knownhosts.Normalize(ta.String())
	err := check(ta.String(), remote, key)
	var ke *xknownhosts.KeyError
	switch {
	case err == nil:
	case errors.As(err, &ke) && len(ke.Want) > 0:
		for _, w := range ke.Want {
			if w.Key.Type() == key.Type() {
				d.warnf("Warning: the %s host key for '%s' differs from the key for the IP address '%s' (%s line %d).",
					keyTypeName(key), cfg.HostName, ipName, w.Filename, w.Line)
				c.logf("CheckHostIP: the key for %s differs from the one in %s line %d", ipName, w.Filename, w.Line)
				return
			}
		}
		fallthrough
	case errors.As(err, &ke):
		if len(cfg.UserKnownHostsFiles) > 0 && appendKnownHost(cfg.UserKnownHostsFiles[0], ipName, key, cfg.HashKnownHosts) == nil {
			d.warnf("Warning: Permanently added the %s host key for IP address '%s' to the list of known hosts.", keyTypeName(key), ipName)
		}
	}
}

// askHostKey asks on the terminal whether to trust an unknown host key, as OpenSSH asks.
func askHostKey(p *prompter, name string, remote net.Addr, key ssh.PublicKey, othersKnown bool) (bool, string) {
	fp := ssh.FingerprintSHA256(key)
	q := fmt.Sprintf("The authenticity of host '%s (%s)' can't be established.\n%s key fingerprint is %s.\n",
		name, remote, keyTypeName(key), fp)
	if othersKnown {
		q += "Keys of other types are already known for this host.\n"
	} else {
		q += "This key is not known by any other names.\n"
	}
	q += "Are you sure you want to continue connecting (yes/no/[fingerprint])? "
	for range 5 {
		a, err := p.askTTY(q)
		if err != nil {
			return false, "no terminal to ask"
		}
		switch a = strings.TrimSpace(a); {
		case strings.EqualFold(a, "yes"), a == fp:
			return true, ""
		case strings.EqualFold(a, "no"):
			return false, "declined"
		}
		q = "Please type 'yes', 'no' or the fingerprint: "
	}
	return false, "declined"
}

// addKnownHost appends the key to the first UserKnownHostsFile, hashed when HashKnownHosts
// is set. A failure is a warning, as in OpenSSH.
func (c *Cmd) addKnownHost(cfg *sshconfig.Config, name string, key ssh.PublicKey, d *debug) {
	if cert, ok := key.(*ssh.Certificate); ok {
		key = cert.Key
	}
	if len(cfg.UserKnownHostsFiles) == 0 || cfg.UserKnownHostsFiles[0] == "none" {
		d.warnf("Warning: no UserKnownHostsFile to add the host key of '%s' to.", name)
		return
	}
	file := cfg.UserKnownHostsFiles[0]
	err := appendKnownHost(file, name, key, cfg.HashKnownHosts)
	if err != nil {
		d.warnf("Failed to add the host to the list of known hosts (%s): %v", file, err)
		c.logf("could not add the %s host key of %s to %s: %v", keyTypeName(key), name, file, err)
		return
	}
	d.warnf("Warning: Permanently added '%s' (%s) to the list of known hosts.", name, keyTypeName(key))
	c.logf("added the %s host key %s of %s to %s", keyTypeName(key), ssh.FingerprintSHA256(key), name, file)
}

func appendKnownHost(file, name string, key ssh.PublicKey, hash bool) error {
	host := name
	if hash {
		host = xknownhosts.HashHostname(name)
	}
	line := host + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + "\n"
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// Start on a new line if the file does not end with one.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, st.Size()-1); err == nil && b[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
