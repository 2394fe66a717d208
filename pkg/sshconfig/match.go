package sshconfig

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// match evaluates the criteria of a Match line as OpenSSH's match_cfg_line does, left to
// right, each against the configuration as set so far. ok is false (and ExecReason set) when
// ssh would refuse the line, or when only ssh can evaluate it (Match exec without
// Env.MatchExec).
func (r *resolver) match(args []string, pos string) (matched, ok bool) {
	result := true
	n := 0
	for i := 0; i < len(args); i++ {
		oattr := args[i]
		if strings.HasPrefix(oattr, "#") {
			break
		}
		attr := oattr
		neg := strings.HasPrefix(attr, "!")
		if neg {
			attr = attr[1:]
		}
		// "host=pattern" is the same as "host pattern".
		var value string
		hasValue := false
		if k, v, cut := strings.Cut(attr, "="); cut {
			attr, value, hasValue = k, v, true
		}
		crit := strings.ToLower(attr)
		if crit == "all" {
			// "all" has no argument and may follow at most one other criterion.
			if n > 1 || hasValue || (i+1 < len(args) && !strings.HasPrefix(args[i+1], "#")) {
				r.exec(pos, "Match %s cannot be combined with other criteria", oattr)
				return false, false
			}
			return result && !neg, true
		}
		n++
		if since, newer := matchSince[crit]; newer && r.release().v < since {
			r.exec(pos, "unsupported Match criterion %s (OpenSSH %s has it; the local ssh is %s)", attr, releaseName(since), releaseName(r.release().v))
			return false, false
		}
		if crit == "canonical" || crit == "final" {
			if hasValue {
				r.exec(pos, "unsupported Match criterion %s", oattr)
				return false, false
			}
			if crit == "final" && (!neg || r.release().v < relUserTokensConfig) {
				r.wantFinal = true // before 10.1 a negated final asks for the pass too
			}
			if r.final == neg {
				result = false
			}
			continue
		}
		if _, supported := matchCriteria[crit]; !supported {
			r.exec(pos, "unsupported Match criterion %s", attr)
			return false, false
		}
		if !hasValue {
			if i+1 >= len(args) {
				r.exec(pos, "missing Match criteria for %s", attr)
				return false, false
			}
			i++
			value = args[i]
		}
		emptyOK := (crit == "tagged" || crit == "command") && r.release().v >= 1000
		if (value == "" && !emptyOK) || strings.HasPrefix(value, "#") {
			r.exec(pos, "missing Match criteria for %s", attr)
			return false, false
		}
		var m bool
		switch crit {
		case "host":
			host, err := r.matchHost()
			if err != nil {
				r.exec(pos, "HostName: %v", err)
				return false, false
			}
			m = matchPatternList(asciiLower(host), value, true) == 1
		case "originalhost":
			m = matchPatternList(asciiLower(r.hostArg), value, true) == 1
		case "user":
			m = matchPatternList(r.userSoFar(), value, false) == 1
		case "localuser":
			m = matchPatternList(r.env.User, value, false) == 1
		case "localnetwork":
			prefixes, err := parseCIDRList(value)
			if err != nil {
				r.exec(pos, "Match localnetwork: %v", err)
				return false, false
			}
			m = localNetworkMatches(prefixes)
		case "version":
			m = matchPatternList(r.release().release, value, false) == 1
		case "tagged":
			m = matchEmptyOrList(r.firstValue("tag"), value)
		case "command":
			m = matchEmptyOrList(strings.Join(r.inv.Command, " "), value)
		case "sessiontype":
			m = matchPatternList(r.sessionType(), value, false) == 1
		case "exec":
			cmd, err := r.expandEarly(value, false)
			if err != nil {
				r.exec(pos, "Match exec %q: %v", value, err)
				return false, false
			}
			if !result {
				continue // ssh runs nothing once a criterion before failed
			}
			if r.env.MatchExec == nil {
				r.exec(pos, "Match exec is not run in-process")
				return false, false
			}
			ran, err := r.env.MatchExec(cmd)
			if err != nil {
				r.exec(pos, "Match exec %q: %v", cmd, err)
				return false, false
			}
			m = ran
		}
		if m == neg {
			result = false
		}
	}
	if n == 0 {
		r.exec(pos, "Match without criteria")
		return false, false
	}
	return result, true
}

// The Match criteria that take an argument (release limits in matchSince).
var matchCriteria = map[string]bool{
	"host": true, "originalhost": true, "user": true, "localuser": true, "exec": true,
	"localnetwork": true, "tagged": true, "version": true, "command": true, "sessiontype": true,
}

// matchEmptyOrList matches Match tagged and command: an empty value matches only an empty
// argument, otherwise the argument is a pattern list.
func matchEmptyOrList(have, list string) bool {
	if have == "" {
		return list == ""
	}
	return matchPatternList(have, list, false) == 1
}

func (r *resolver) firstValue(kw string) string {
	if s, ok := r.first[kw]; ok {
		return s.args[0]
	}
	return ""
}

// userSoFar is the remote user as far as the configuration has set it: the first User, or
// else the local user, who is the default remote user.
func (r *resolver) userSoFar() string {
	if u := r.firstValue("user"); u != "" {
		return u
	}
	return r.env.User
}

// matchHost is the host Match host compares: in the first pass HostName as set so far with %h
// expanded (else the destination), in the final pass the canonical name.
func (r *resolver) matchHost() (string, error) {
	if s, ok := r.first["hostname"]; ok {
		if r.final {
			return s.args[0], nil
		}
		return percentExpand(s.args[0], map[byte]string{'h': r.hostArg})
	}
	return r.hostArg, nil
}

// sessionType is what Match sessiontype compares: "subsystem" or "none" from SessionType, else
// "exec" with a remote command and "shell" without.
func (r *resolver) sessionType() string {
	switch t := strings.ToLower(r.firstValue("sessiontype")); t {
	case "subsystem", "none":
		return t
	}
	if len(r.inv.Command) > 0 {
		return "exec"
	}
	return "shell"
}

// jumpHost is %j: the host of the last ProxyJump hop as set so far, "" without one.
func (r *resolver) jumpHost() string {
	s, ok := r.first["proxy"]
	if !ok || s.args[0] != "proxyjump" || strings.EqualFold(s.args[1], "none") {
		return ""
	}
	hops, err := ParseProxyJump(s.args[1])
	if err != nil || len(hops) == 0 {
		return ""
	}
	return hops[len(hops)-1].Host
}

// expandEarly expands the %-tokens of a Match exec command (and, for include, ${VAR} of an
// Include path) with the configuration as set so far, as readconf.c does before the options
// are complete: the port and user so far or their defaults, the host as Match host sees it.
func (r *resolver) expandEarly(s string, include bool) (string, error) {
	port := "22"
	if p := r.firstValue("port"); p != "" {
		if n, ok := parsePort(p); ok {
			port = strconv.Itoa(n)
		}
	}
	host, err := r.matchHost()
	if err != nil {
		return "", err
	}
	user := r.userSoFar()
	alias := host
	if a := r.firstValue("hostkeyalias"); a != "" {
		alias = a
	}
	short, _, _ := strings.Cut(r.env.LocalHost, ".")
	hashed := r.env.LocalHost + host + port + user
	tokens := map[byte]string{
		'L': short, 'd': r.env.Home, 'h': host, 'k': alias, 'l': r.env.LocalHost,
		'n': r.hostArg, 'p': port, 'r': user, 'u': r.env.User, 'i': strconv.Itoa(r.env.UID),
	}
	// %j and the jump host in %C are 9.6's: ask the release only when they matter.
	if j := r.jumpHost(); (hasToken(s, 'j') || j != "" && hasToken(s, 'C')) && r.release().v >= relJumpToken {
		tokens['j'] = j
		hashed += j
	}
	sum := sha1.Sum([]byte(hashed))
	tokens['C'] = hex.EncodeToString(sum[:])
	out, err := percentExpand(s, tokens)
	if err == nil && include {
		out, err = r.dollarExpand(out)
	}
	return out, err
}

// canonicalize does what ssh does between its two readings of the configuration: the host
// name with HostName applied, lowercased (an address in canonical form), then
// CanonicalizeHostname. Canonicalization that needs the resolver (CanonicalDomains, a
// trailing dot, CanonicalizePermittedCNAMEs) is left to ssh; what remains in-process is the
// final pass. ok is false when ssh must take over.
func (r *resolver) canonicalize() (host string, ok bool) {
	host, err := r.matchHost()
	if err != nil {
		r.exec(r.first["hostname"].pos, "HostName: %v", err)
		return "", false
	}
	family := strings.ToLower(r.firstValue("addressfamily"))
	if family == "" {
		family = "any"
	}
	_, wasAddr := numericAddr(host, family)
	host = canonicalHost(host, family)
	mode := "no"
	if s, set := r.first["canonicalizehostname"]; set {
		mode = map[string]string{"yes": "yes", "true": "yes", "no": "no", "false": "no", "always": "always"}[strings.ToLower(s.args[0])]
	}
	proxy, hasProxy := r.first["proxy"]
	direct := !hasProxy || strings.EqualFold(proxy.args[1], "none")
	pos := r.first["canonicalizehostname"].pos
	fast := strings.ContainsAny(host, "%:") || strings.Trim(host, "0123456789.") == ""
	if mode != "no" && !wasAddr && !fast && (direct || mode == "always") {
		maxDots := 1
		if s, set := r.first["canonicalizemaxdots"]; set {
			maxDots, _ = strtonum(s.args[0], 0, 1<<31-1)
		}
		domains := r.first["canonicaldomains"].args
		switch {
		case strings.HasSuffix(host, "."):
			r.exec(pos, "CanonicalizeHostname %s: resolving %q is left to ssh's resolver", mode, host)
			return "", false
		case strings.Count(host, ".") > maxDots:
			// Sufficiently qualified: not canonicalized.
		case len(domains) > 0 && !strings.EqualFold(domains[0], "none"):
			r.exec(pos, "CanonicalizeHostname %s with CanonicalDomains: resolving %q is left to ssh's resolver", mode, host)
			return "", false
		case strings.EqualFold(r.firstValue("canonicalizefallbacklocal"), "no"), strings.EqualFold(r.firstValue("canonicalizefallbacklocal"), "false"):
			r.exec(pos, "CanonicalizeHostname %s with CanonicalizeFallbackLocal no: ssh cannot resolve %q", mode, host)
			return "", false
		}
	}
	if s, set := r.first["canonicalizepermittedcnames"]; set && !strings.EqualFold(s.args[0], "none") && !wasAddr && (direct || mode == "always") {
		r.exec(s.pos, "CanonicalizePermittedCNAMEs: following CNAMEs is left to ssh's resolver")
		return "", false
	}
	if mode != "no" {
		r.wantFinal = true
	}
	return host, true
}

// parseCIDRList checks a Match localnetwork list as OpenSSH's addr_match_cidr_list does:
// comma-separated addresses or address/prefix-length, no negation.
func parseCIDRList(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range strings.Split(list, ",") {
		if e == "" || len(e) > 49 || strings.Trim(e, "0123456789abcdefABCDEF.:/") != "" {
			return nil, fmt.Errorf("list entry %q invalid", e)
		}
		var p netip.Prefix
		var err error
		if strings.Contains(e, "/") {
			p, err = netip.ParsePrefix(e)
			if err == nil && p.Masked() != p {
				err = errors.New("address has bits set beyond the prefix length")
			}
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(e)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return nil, fmt.Errorf("list entry %q invalid: %v", e, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// localNetworkMatches says whether an address of an interface that is up lies in one of the
// prefixes (getifaddrs in OpenSSH).
func localNetworkMatches(prefixes []netip.Prefix) bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			for _, p := range prefixes {
				if p.Contains(ip) {
					return true
				}
			}
		}
	}
	return false
}

// shellMatchExec runs a Match exec command as OpenSSH's execute_in_shell does: $SHELL -c, or
// /bin/sh; standard input and output on /dev/null, standard error inherited.
func shellMatchExec(command string) (bool, error) {
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	cmd := exec.Command(shell, "-c", command)
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.Exited():
		return false, nil
	}
	return false, err
}
