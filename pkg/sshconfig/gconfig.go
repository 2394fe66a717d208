package sshconfig

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// forKeyword gives the default and the supported list for an algorithm keyword.
func (l algLists) forKeyword(kw string) (def, all string) {
	switch kw {
	case "ciphers":
		return l.Ciphers, l.AllCiphers
	case "macs":
		return l.MACs, l.AllMACs
	case "kexalgorithms":
		return l.Kex, l.AllKex
	}
	return l.HostKeys, l.AllHostKeys
}

// commonLists holds, for each algorithm keyword, the algorithms every release in the table
// supports: a configuration that names only these is valid whichever ssh is local, and the
// release need not be asked.
var commonLists = func() map[string]map[string]bool {
	m := map[string]map[string]bool{}
	for _, kw := range []string{"ciphers", "macs", "kexalgorithms", "hostkeyalgorithms"} {
		var common map[string]bool
		for _, v := range osshReleases {
			_, all := tableLists(v).forKeyword(kw)
			have := map[string]bool{}
			for _, a := range strings.Split(all, ",") {
				if common == nil || common[a] {
					have[a] = true
				}
			}
			common = have
		}
		m[kw] = common
	}
	return m
}()

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
			if MatchPattern(a, p) {
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
// the keywords socketpipe honours, with values spelled as OpenSSH spells them: "true" for
// StrictHostKeyChecking yes, "none" for no ConnectTimeout, the default algorithm lists of the
// release the configuration was resolved for (see Env.OpenSSH) when none is configured; no
// "host" line for a release before 9.2. A Config not made by Resolve follows the ssh on PATH.
//
// Unlike ssh -G, identityfile and certificatefile are printed expanded (~ and % tokens), as
// socketpipe will open them; ssh prints them as written and expands them later.
func (c *Config) WriteG(w io.Writer) error {
	rel := c.release()
	lists := rel.algorithms(c.osshEnv.CacheDir)
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

	if rel.v >= relHostInG {
		kv("host", c.Host)
	}
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
	kv("ciphers", list(c.Ciphers, lists.Ciphers))
	kv("hostkeyalgorithms", list(c.HostKeyAlgorithms, lists.HostKeys))
	if c.HostKeyAlias != "" {
		kv("hostkeyalias", c.HostKeyAlias)
	}
	if c.IdentityAgent != "" {
		kv("identityagent", c.IdentityAgent)
	}
	kv("kexalgorithms", list(c.KexAlgorithms, lists.Kex))
	lv := c.LogLevel
	if lv == "QUIET" {
		lv = "SILENT"
	}
	kv("loglevel", lv)
	kv("macs", list(c.MACs, lists.MACs))
	if c.PreferredAuthentications != nil {
		kv("preferredauthentications", strings.Join(c.PreferredAuthentications, ","))
	}
	ids := c.IdentityFiles
	if c.defaultIDs {
		// Resolve listed the newest release's defaults without asking which ssh is local
		// (the files only some releases try do not exist): print the local release's.
		ids = nil
		for _, f := range defaultIdentityFiles(rel.v) {
			ids = append(ids, c.osshEnv.ExpandTilde(f))
		}
	}
	for _, f := range ids {
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
	hops, err := ParseProxyJump(s)
	if err != nil || len(hops) == 0 {
		return s
	}
	h := hops[len(hops)-1]
	var b strings.Builder
	if i := strings.LastIndexByte(s, ','); i > 0 {
		b.WriteString(s[:i+1])
	}
	if h.User != "" {
		b.WriteString(h.User + "@")
	}
	if strings.Contains(h.Host, ":") || strings.Trim(h.Host, "0123456789.") == "" {
		b.WriteString("[" + h.Host + "]")
	} else {
		b.WriteString(h.Host)
	}
	if h.Port > 0 {
		b.WriteString(":" + strconv.Itoa(h.Port))
	}
	return b.String()
}

// release is the OpenSSH release the configuration follows: the one Resolve asked, or asked now.
func (c *Config) release() *ossh {
	if c.rel == nil {
		c.rel = osshFor(c.osshEnv)
	}
	return c.rel
}
