package sshlogin

import (
	"bytes"
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
	// Reason says why the key of an unknown host, or of a host whose address known_hosts
	// holds another key for, was refused: "StrictHostKeyChecking yes", "BatchMode", "no
	// terminal to ask", "declined".
	Reason string
	// Under CheckHostIP, Addr is the address the connection reached ("10.0.0.5",
	// "[10.0.0.5]:2222") when known_hosts does not vouch for the key under it as it does
	// under Host: AddrChanged when it holds another key for Addr (at AddrFile, AddrLine),
	// AddrKnown when Addr holds the offered key while Host holds another.
	Addr        string
	AddrChanged bool
	AddrKnown   bool
	AddrFile    string
	AddrLine    int
}

// addrState says what known_hosts holds for Addr, in OpenSSH's words.
func (e *HostKeyError) addrState() string {
	switch {
	case e.AddrChanged:
		return "has a different value"
	case e.AddrKnown:
		return "is unchanged"
	}
	return "is unknown"
}

func (e *HostKeyError) Error() string {
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key for %s is revoked by known_hosts line %d (%s): offered %s key %s",
			e.Host, e.Line, e.File, e.KeyType, e.Fingerprint)
	case e.Changed && e.Addr != "":
		return fmt.Sprintf("host key for %s does not match known_hosts line %d (%s), and the key for its IP address %s %s (DNS spoofing, or the address and the key changed together): offered %s key %s",
			e.Host, e.Line, e.File, e.Addr, e.addrState(), e.KeyType, e.Fingerprint)
	case e.Changed:
		return fmt.Sprintf("host key for %s does not match known_hosts line %d (%s): offered %s key %s",
			e.Host, e.Line, e.File, e.KeyType, e.Fingerprint)
	case e.AddrChanged:
		return fmt.Sprintf("host key for %s differs from the key for its IP address %s in known_hosts line %d (%s) (%s): offered %s key %s",
			e.Host, e.Addr, e.AddrLine, e.AddrFile, e.Reason, e.KeyType, e.Fingerprint)
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
	case e.AddrChanged:
		return fmt.Sprintf("if the address %s now belongs to this host, remove its old key (ssh-keygen -f '%s' -R '%s', or delete line %d of %s) and connect again",
			e.Addr, e.AddrFile, e.Addr, e.AddrLine, e.AddrFile)
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

// hostStatus is what known_hosts says of a key for one name, as OpenSSH's HostStatus.
type hostStatus int

const (
	hostNew     hostStatus = iota // no key of this type is known for the name
	hostOK                        // the key is known for the name
	hostChanged                   // another key of the same type is known for the name
	hostRevoked                   // the key is marked @revoked
)

// hostLookup is the answer of known_hosts for one name: the status and, unless the name is
// new, the line that decided it; others lists the lines of keys of other types.
type hostLookup struct {
	status hostStatus
	file   string
	line   int
	key    ssh.PublicKey // the key on that line (hostChanged)
	others []string
}

// lookupHost asks known_hosts about key for name ("host:port"). An error is one that says
// neither yes nor no, such as a certificate that no @cert-authority line vouches for.
func lookupHost(check ssh.HostKeyCallback, name string, remote net.Addr, key ssh.PublicKey) (hostLookup, error) {
	err := check(name, remote, key)
	if err == nil {
		return hostLookup{status: hostOK}, nil
	}
	var rev *xknownhosts.RevokedError
	if errors.As(err, &rev) {
		return hostLookup{status: hostRevoked, file: rev.Revoked.Filename, line: rev.Revoked.Line}, nil
	}
	var ke *xknownhosts.KeyError
	if !errors.As(err, &ke) {
		return hostLookup{}, err
	}
	var l hostLookup
	for _, w := range ke.Want {
		if w.Key.Type() == key.Type() {
			l.status, l.file, l.line, l.key = hostChanged, w.Filename, w.Line, w.Key
			return l, nil
		}
		l.others = append(l.others, fmt.Sprintf("%s line %d", w.Filename, w.Line))
	}
	return l, nil
}

// isLoopback is OpenSSH's sockaddr_is_local: 127.0.0.0/8 and ::1, never checked under
// CheckHostIP.
func isLoopback(ip net.IP) bool {
	if v4 := ip.To4(); v4 != nil {
		return v4[0] == 127
	}
	return ip.Equal(net.IPv6loopback)
}

// hostKeyCheck returns the host key callback and the host key algorithms for cfg: known_hosts
// as OpenSSH reads it (UserKnownHostsFile and GlobalKnownHostsFile, missing files are fine),
// with the algorithms known_hosts holds for the host offered first. It decides as OpenSSH's
// check_host_key does, CheckHostIP included.
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
	v := &hostVerifier{c: c, cfg: cfg, p: p, d: d, hs: hs, check: db.HostKeyCallback(), lookup: lookup, name: name}
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		hs.hostKey = key
		v.setAddr(remote)
		return v.verify(remote, key, false)
	}, algos, nil
}

// hostVerifier checks one server's key.
type hostVerifier struct {
	c      *Cmd
	cfg    *sshconfig.Config
	p      *prompter
	d      *debug
	hs     *handshakeState
	check  ssh.HostKeyCallback
	lookup string // the name looked up: "host:port", or the HostKeyAlias with port 22
	name   string // the same as known_hosts writes it: "[host]:port" or "host"
	// Under CheckHostIP, the address the connection reached, as lookup and name are; ""
	// when OpenSSH would not check it: a loopback address, the host name is that address,
	// or the connection goes through a ProxyJump hop.
	ipLookup, ip string
}

func (v *hostVerifier) setAddr(remote net.Addr) {
	v.ipLookup, v.ip = "", ""
	ta, ok := remote.(*net.TCPAddr)
	if !v.cfg.CheckHostIP || !ok || ta.IP == nil || ta.IP.IsUnspecified() || v.hs.viaProxy {
		return
	}
	if isLoopback(ta.IP) {
		v.d.printf("CheckHostIP: not checking the loopback address %s", ta.IP)
		return
	}
	ipLookup := net.JoinHostPort(ta.IP.String(), strconv.Itoa(v.cfg.Port))
	ip := knownhosts.Normalize(ipLookup)
	if ip == v.cfg.HostName {
		return
	}
	v.ipLookup, v.ip = ipLookup, ip
}

// verify decides on key as check_host_key does. fromCert is set for the plain key of a
// certificate that no @cert-authority line vouches for: OpenSSH then does not look the
// address up, and takes the name's answer for it.
func (v *hostVerifier) verify(remote net.Addr, key ssh.PublicKey, fromCert bool) error {
	cfg, d, name := v.cfg, v.d, v.name
	host, err := lookupHost(v.check, v.lookup, remote, key)
	if err != nil {
		if cert, ok := key.(*ssh.Certificate); ok {
			d.printf("No matching CA found. Retry with plain key")
			return v.verify(remote, cert.Key, true)
		}
		return fmt.Errorf("host key for %s: %w", name, err)
	}
	if _, ok := key.(*ssh.Certificate); ok && host.status != hostOK && host.status != hostRevoked {
		d.printf("No matching CA found. Retry with plain key")
		return v.verify(remote, key.(*ssh.Certificate).Key, true)
	}
	checkIP := v.ip != ""
	addr := host
	if checkIP && !fromCert {
		if _, isCert := key.(*ssh.Certificate); !isCert {
			if addr, err = lookupHost(v.check, v.ipLookup, remote, key); err != nil {
				return fmt.Errorf("host key for %s: %w", v.ip, err)
			}
		}
	}
	e := &HostKeyError{Host: name, KeyType: keyTypeName(key), Fingerprint: ssh.FingerprintSHA256(key)}
	strict := cfg.StrictHostKeyChecking
	switch host.status {
	case hostOK:
		d.printf("Host '%s' is known and matches the %s host key.", name, keyTypeName(key))
		if checkIP && addr.status == hostNew {
			v.addKnownHost([]string{v.ip}, key, true)
		}
	case hostNew:
		if len(host.others) > 0 {
			d.printf("keys of other types are known for %s: %s", name, strings.Join(host.others, ", "))
		}
		switch {
		case strict == "yes":
			e.Reason = "StrictHostKeyChecking yes"
			return e
		case strict == "ask" && v.p.batch:
			e.Reason = "BatchMode"
			return e
		case strict == "ask":
			if ok, reason := askHostKey(v.p, name, v.addrText(remote), key, len(host.others) > 0); !ok {
				e.Reason = reason
				return e
			}
		}
		names := []string{name}
		if checkIP && addr.status == hostNew {
			names = append(names, v.ip)
		}
		v.addKnownHost(names, key, false)
	case hostRevoked:
		e.Revoked, e.File, e.Line = true, host.file, host.line
		if strict != "no" {
			return e
		}
		d.errorf("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n" +
			"@       WARNING: REVOKED HOST KEY DETECTED!               @\n" +
			"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@")
		d.errorf("The %s host key for %s is marked as revoked (%s line %d).", e.KeyType, name, e.File, e.Line)
		v.continueUnsafe()
	case hostChanged:
		e.Changed, e.File, e.Line = true, host.file, host.line
		// OpenSSH's host_ip_differ: the address does not vouch for the key the name holds.
		if checkIP && !fromCert && (addr.status != hostChanged || !bytes.Equal(addr.key.Marshal(), host.key.Marshal())) {
			e.Addr, e.AddrFile, e.AddrLine = v.ip, addr.file, addr.line
			e.AddrChanged = addr.status == hostChanged
			e.AddrKnown = addr.status == hostOK
		}
		if strict != "no" {
			return e
		}
		if e.Addr != "" {
			d.errorf("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n" +
				"@       WARNING: POSSIBLE DNS SPOOFING DETECTED!          @\n" +
				"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@")
			d.errorf("The %s host key for %s has changed, and the key for the corresponding IP address %s %s.",
				e.KeyType, name, e.Addr, e.addrState())
		}
		d.errorf("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n" +
			"@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n" +
			"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@")
		d.errorf("The %s host key for '%s' differs from the key in %s:%d (offered %s); continuing as StrictHostKeyChecking is no.",
			e.KeyType, name, e.File, e.Line, e.Fingerprint)
		v.continueUnsafe()
		return nil
	}
	if checkIP && addr.status == hostChanged {
		// The name vouches for the key (or was just told to), the address does not.
		msg := fmt.Sprintf("Warning: the %s host key for '%s' differs from the key for the IP address '%s'\nOffending key for IP in %s:%d",
			e.KeyType, name, v.ip, addr.file, addr.line)
		e.Addr, e.AddrChanged, e.AddrFile, e.AddrLine = v.ip, true, addr.file, addr.line
		switch {
		case strict == "no":
			d.warnf("%s", msg)
		case strict == "ask" && v.p.batch:
			e.Reason = "BatchMode"
			return e
		case strict == "ask":
			if !askYesNo(v.p, msg+"\nAre you sure you want to continue connecting (yes/no)? ") {
				e.Reason = "declined"
				return e
			}
		default:
			e.Reason = "StrictHostKeyChecking " + strict
			return e
		}
	}
	return nil
}

// addrText is the address shown when asking about a new key, as OpenSSH shows it.
func (v *hostVerifier) addrText(remote net.Addr) string {
	if v.hs.viaProxy {
		return "<no hostip for proxy command>"
	}
	if ta, ok := remote.(*net.TCPAddr); ok {
		return knownhosts.Normalize(net.JoinHostPort(ta.IP.String(), strconv.Itoa(v.cfg.Port)))
	}
	return remote.String()
}

// continueUnsafe goes on with a key known_hosts does not vouch for, as OpenSSH does under
// StrictHostKeyChecking no: without the authentication a man in the middle could use.
func (v *hostVerifier) continueUnsafe() {
	v.hs.keyChanged = true
	if v.cfg.PasswordAuthentication {
		v.d.errorf("Password authentication is disabled to avoid man-in-the-middle attacks.")
	}
	if v.cfg.KbdInteractiveAuthentication {
		v.d.errorf("Keyboard-interactive authentication is disabled to avoid man-in-the-middle attacks.")
	}
}

// askYesNo asks a yes/no question on the terminal, as OpenSSH's confirm does without a
// fingerprint: an empty answer or no terminal is no.
func askYesNo(p *prompter, q string) bool {
	for range 5 {
		a, err := p.askTTY(q)
		if err != nil {
			return false
		}
		switch a = strings.TrimSpace(a); {
		case a == "" || strings.EqualFold(a, "no"):
			return false
		case strings.EqualFold(a, "yes"):
			return true
		}
		q = "Please type 'yes' or 'no': "
	}
	return false
}

// askHostKey asks on the terminal whether to trust an unknown host key, as OpenSSH asks.
func askHostKey(p *prompter, name, addr string, key ssh.PublicKey, othersKnown bool) (bool, string) {
	fp := ssh.FingerprintSHA256(key)
	q := fmt.Sprintf("The authenticity of host '%s (%s)' can't be established.\n%s key fingerprint is %s.\n",
		name, addr, keyTypeName(key), fp)
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

// addKnownHost records the key for names in the first UserKnownHostsFile, as OpenSSH
// does: one line "name,address" (or a hashed line for each when HashKnownHosts is set).
// ipOnly is set when only the address is new, under CheckHostIP. A failure is a warning.
func (v *hostVerifier) addKnownHost(names []string, key ssh.PublicKey, ipOnly bool) {
	cfg, d, c := v.cfg, v.d, v.c
	if cert, ok := key.(*ssh.Certificate); ok {
		key = cert.Key
	}
	shown := strings.Join(names, ",")
	if len(cfg.UserKnownHostsFiles) == 0 || cfg.UserKnownHostsFiles[0] == "none" {
		if ipOnly {
			d.warnf("%s host key for IP address '%s' not in list of known hosts.", keyTypeName(key), shown)
			return
		}
		d.warnf("Warning: no UserKnownHostsFile to add the host key of '%s' to.", shown)
		return
	}
	file := v.p.env.ExpandTilde(cfg.UserKnownHostsFiles[0])
	err := appendKnownHost(file, names, key, cfg.HashKnownHosts)
	switch {
	case err != nil && ipOnly:
		d.warnf("Failed to add the %s host key for IP address '%s' to the list of known hosts (%s): %v", keyTypeName(key), shown, file, err)
	case err != nil:
		d.warnf("Failed to add the host to the list of known hosts (%s): %v", file, err)
	case ipOnly:
		d.warnf("Warning: Permanently added the %s host key for IP address '%s' to the list of known hosts.", keyTypeName(key), shown)
	default:
		d.warnf("Warning: Permanently added '%s' (%s) to the list of known hosts.", shown, keyTypeName(key))
	}
	if err != nil {
		c.logf("could not add the %s host key of %s to %s: %v", keyTypeName(key), shown, file, err)
		return
	}
	c.logf("added the %s host key %s of %s to %s", keyTypeName(key), ssh.FingerprintSHA256(key), shown, file)
}

func appendKnownHost(file string, names []string, key ssh.PublicKey, hash bool) error {
	k := " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + "\n"
	line := strings.Join(names, ",") + k
	if hash {
		line = ""
		for _, n := range names {
			line += xknownhosts.HashHostname(n) + k
		}
	}
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
