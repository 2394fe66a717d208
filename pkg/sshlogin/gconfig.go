package sshlogin

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// OpenSSH 9.2's defaults and supported algorithms, as `ssh -G` and `ssh -Q` print them on
// Debian 12. A nil list in Config means these defaults.
const (
	sshDefCiphers     = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com"
	sshDefKex         = "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256"
	sshDefMACs        = "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1"
	sshDefHostKeyAlgs = "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256"

	sshAllCiphers     = "3des-cbc,aes128-cbc,aes192-cbc,aes256-cbc,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com"
	sshAllMACs        = "hmac-sha1,hmac-sha1-96,hmac-sha2-256,hmac-sha2-512,hmac-md5,hmac-md5-96,umac-64@openssh.com,umac-128@openssh.com,hmac-sha1-etm@openssh.com,hmac-sha1-96-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-md5-etm@openssh.com,hmac-md5-96-etm@openssh.com,umac-64-etm@openssh.com,umac-128-etm@openssh.com"
	sshAllKex         = "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha1,diffie-hellman-group-exchange-sha256,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,curve25519-sha256,curve25519-sha256@libssh.org,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com"
	sshAllHostKeyAlgs = "ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,webauthn-sk-ecdsa-sha2-nistp256@openssh.com,ssh-dss,ssh-dss-cert-v01@openssh.com,ssh-rsa,ssh-rsa-cert-v01@openssh.com,rsa-sha2-256,rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-512-cert-v01@openssh.com"
)

// The identity files OpenSSH 9.2 tries when none is configured, in its order.
var sshDefIdentityFiles = []string{
	"~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519",
	"~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss", "~/.ssh/id_dsa",
}

// assembleAlgorithms is OpenSSH's kex_assemble_names: "+list" appends to the defaults,
// "-list" removes the matching ones, "^list" puts them first, and a plain list replaces
// them; patterns are expanded against all supported algorithms.
func assembleAlgorithms(spec, def, all string) (string, error) {
	if spec == "" {
		return def, nil
	}
	var list string
	switch spec[0] {
	case '+':
		list = namesCat(def, spec[1:])
	case '-':
		var keep []string
		for _, a := range strings.Split(def, ",") {
			if matchPatternList(a, spec[1:], false) != 1 {
				keep = append(keep, a)
			}
		}
		return strings.Join(keep, ","), nil
	case '^':
		list = namesCat(spec[1:], def)
	default:
		list = spec
	}
	out := ""
	for _, p := range strings.Split(list, ",") {
		if strings.HasPrefix(p, "!") {
			return "", errors.New("negated algorithm patterns are not allowed here")
		}
		var m []string
		for _, a := range strings.Split(all, ",") {
			if matchPattern(a, p, false) {
				m = append(m, a)
			}
		}
		out = namesCat(out, strings.Join(m, ","))
	}
	if out == "" {
		return "", fmt.Errorf("no supported algorithm in %q", spec)
	}
	return out, nil
}

// namesCat appends to a the names of b that a does not have.
func namesCat(a, b string) string {
	have := map[string]bool{}
	var out []string
	for _, n := range strings.Split(a, ",") {
		if n != "" && !have[n] {
			have[n] = true
			out = append(out, n)
		}
	}
	for _, n := range strings.Split(b, ",") {
		if n != "" && !have[n] {
			have[n] = true
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// WriteG writes the configuration in the format of `ssh -G` (a lowercase keyword, a space and
// the value, one a line; identityfile, certificatefile, sendenv and setenv once per value) for
// the keywords socketpipe honours, with values spelled as OpenSSH 9.2 spells them: "true" for
// StrictHostKeyChecking yes, "none" for no ConnectTimeout, the default algorithm lists when
// none is configured.
//
// Unlike ssh -G, identityfile and certificatefile are printed expanded (~ and % tokens), as
// socketpipe will open them; ssh prints them as written and expands them later.
func (c *Config) WriteG(w io.Writer) error {
	bw := bufio.NewWriter(w)
	kv := func(k, v string) { fmt.Fprintf(bw, "%s %s\n", k, v) }
	yn := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	list := func(l []string, def string) string {
		if l == nil {
			return def
		}
		return strings.Join(l, ",")
	}

	kv("host", c.Host)
	kv("user", c.User)
	kv("hostname", c.HostName)
	kv("port", strconv.Itoa(c.Port))
	kv("addressfamily", c.AddressFamily)
	kv("batchmode", yn(c.BatchMode))
	kv("checkhostip", yn(c.CheckHostIP))
	kv("hashknownhosts", yn(c.HashKnownHosts))
	kv("identitiesonly", yn(c.IdentitiesOnly))
	kv("kbdinteractiveauthentication", yn(c.KbdInteractiveAuthentication))
	kv("passwordauthentication", yn(c.PasswordAuthentication))
	kv("pubkeyauthentication", strconv.FormatBool(c.PubkeyAuthentication))
	shkc := c.StrictHostKeyChecking
	switch shkc {
	case "yes":
		shkc = "true"
	case "no":
		shkc = "false"
	}
	kv("stricthostkeychecking", shkc)
	kv("connectionattempts", strconv.Itoa(c.ConnectionAttempts))
	kv("serveralivecountmax", strconv.Itoa(c.ServerAliveCountMax))
	kv("serveraliveinterval", strconv.Itoa(int(c.ServerAliveInterval.Seconds())))
	if c.BindAddress != "" {
		kv("bindaddress", c.BindAddress)
	}
	kv("ciphers", list(c.Ciphers, sshDefCiphers))
	kv("hostkeyalgorithms", list(c.HostKeyAlgorithms, sshDefHostKeyAlgs))
	if c.HostKeyAlias != "" {
		kv("hostkeyalias", c.HostKeyAlias)
	}
	if c.IdentityAgent != "" {
		kv("identityagent", c.IdentityAgent)
	}
	kv("kexalgorithms", list(c.KexAlgorithms, sshDefKex))
	lv := c.LogLevel
	if lv == "QUIET" {
		lv = "SILENT"
	}
	kv("loglevel", lv)
	kv("macs", list(c.MACs, sshDefMACs))
	if c.PreferredAuthentications != nil {
		kv("preferredauthentications", strings.Join(c.PreferredAuthentications, ","))
	}
	for _, f := range c.IdentityFiles {
		kv("identityfile", f)
	}
	for _, f := range c.CertificateFiles {
		kv("certificatefile", f)
	}
	kv("globalknownhostsfile", strings.Join(c.GlobalKnownHostsFiles, " "))
	kv("userknownhostsfile", strings.Join(c.UserKnownHostsFiles, " "))
	for _, e := range c.SendEnv {
		kv("sendenv", e)
	}
	for _, e := range c.SetEnv {
		kv("setenv", e)
	}
	if c.ConnectTimeout > 0 {
		kv("connecttimeout", strconv.Itoa(int(c.ConnectTimeout.Seconds())))
	} else {
		kv("connecttimeout", "none")
	}
	if c.ProxyJump != "" && !strings.EqualFold(c.ProxyJump, "none") {
		kv("proxyjump", formatJump(c.ProxyJump))
	}
	return bw.Flush()
}

// formatJump spells a ProxyJump as ssh -G does: the hops before the last as written, the last
// one parsed, as [user@]host[:port] with an address in brackets.
func formatJump(s string) string {
	hops, err := parseProxyJump(s)
	if err != nil || len(hops) == 0 {
		return s
	}
	h := hops[len(hops)-1]
	var b strings.Builder
	if i := strings.LastIndexByte(s, ','); i > 0 {
		b.WriteString(s[:i+1])
	}
	if h.user != "" {
		b.WriteString(h.user + "@")
	}
	if strings.Contains(h.host, ":") || strings.Trim(h.host, "0123456789.") == "" {
		b.WriteString("[" + h.host + "]")
	} else {
		b.WriteString(h.host)
	}
	if h.port > 0 {
		b.WriteString(":" + strconv.Itoa(h.port))
	}
	return b.String()
}
