package sshlogin

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ArgError is a command line that ssh itself would refuse. Msg is in ssh's own words
// ("unknown option -- z", "Bad port 'x'"), so a drop-in for ssh can print it as ssh would and
// exit 255.
type ArgError struct {
	Msg string
}

func (e *ArgError) Error() string { return "sshlogin: " + e.Msg }

// UnsupportedError reports ssh options that socketpipe cannot honour in-process (port
// forwarding, a terminal, control masters, -G, ...). ParseArgs returns it together with a
// complete Invocation: a caller that serves some of them itself (socketpipe --ssh answers -G)
// may go on; any other caller executes the real ssh binary with the original words.
type UnsupportedError struct {
	Option  string   // the first such option, as typed: "-L"
	Options []string // all of them, in order, each once
}

func (e *UnsupportedError) Error() string {
	if len(e.Options) > 1 {
		return fmt.Sprintf("sshlogin: ssh options %s cannot be honoured in-process", strings.Join(e.Options, " "))
	}
	return fmt.Sprintf("sshlogin: ssh option %s cannot be honoured in-process", e.Option)
}

// ErrAgentForwarding is returned for -A: agent forwarding stays off, since nothing socketpipe
// runs needs it and x/crypto's agent client lacks OpenSSH's session binding.
var ErrAgentForwarding = &ArgError{Msg: "agent forwarding (-A) is not supported: it stays off, nothing socketpipe runs needs it"}

// The option letters of OpenSSH 9.2's getopt string, with whether each takes an argument.
const (
	optFlag = iota + 1
	optArg
)

var sshOptions = func() map[byte]int {
	const spec = "1246ab:c:e:fgi:kl:m:no:p:qstvxAB:CD:E:F:GI:J:KL:MNO:Q:R:S:TVw:W:XYy"
	m := make(map[byte]int)
	for i := 0; i < len(spec); i++ {
		kind := optFlag
		if i+1 < len(spec) && spec[i+1] == ':' {
			kind = optArg
		}
		m[spec[i]] = kind
		if kind == optArg {
			i++
		}
	}
	return m
}()

// Options that need ssh itself: forwarding, terminals, multiplexing, logging elsewhere, queries,
// and the algorithm and escape options that socketpipe's own -m and -e shadow.
const unsupportedLetters = "BDEGIKLMNOQRSVWXYcefgmstwy"

// ParseArgs takes apart an ssh command line (the words after "ssh") the way OpenSSH 9.2's
// getopt does: options before the destination, and again after it unless "--" came first;
// the first word after that is the start of the remote command.
//
// Where ssh keeps the first value given (-p, -l, user@host, -o Key=Value), ParseArgs does too:
// Invocation.Port and Invocation.User are left empty when an earlier -o Port or -o User already
// set them, so Resolve can apply Port and User before Options. -b, which ssh lets override
// everything, becomes the first BindAddress in Options; -J becomes a ProxyJump in Options.
// Quiet is left set only when -q came after the last -v, since ssh's log level is the later
// of the two.
//
// A command line ssh would refuse gives an *ArgError. Options that ssh accepts but socketpipe
// cannot honour in-process give an *UnsupportedError with the complete Invocation.
func ParseArgs(args []string) (*Invocation, error) {
	inv := &Invocation{}
	var (
		unsupported  []string
		seenUnsupp   = map[string]bool{}
		bind         string
		userSet      bool // a user was given (first wins)
		portSet      bool
		jumpSet      bool
		optsOrUser   bool // -o User seen: a later -l/user@ loses
		hostSeen     bool
		optTermAtArg = -1 // index of the host word when "--" came right before it
	)
	setUser := func(u string) {
		if !userSet {
			userSet = true
			inv.User = u
		}
	}
	setPort := func(p int) {
		if !portSet {
			portSet = true
			inv.Port = p
		}
	}
	i := 0
	parseOptions := func() error {
		for i < len(args) {
			a := args[i]
			if a == "--" {
				i++
				if !hostSeen {
					optTermAtArg = i
				}
				return nil
			}
			if len(a) < 2 || a[0] != '-' {
				return nil
			}
			i++
			for j := 1; j < len(a); j++ {
				c := a[j]
				kind := sshOptions[c]
				if kind == 0 {
					return &ArgError{Msg: "unknown option -- " + string(c)}
				}
				var val string
				if kind == optArg {
					if j+1 < len(a) {
						val = a[j+1:]
					} else if i < len(args) {
						val = args[i]
						i++
					} else {
						return &ArgError{Msg: "option requires an argument -- " + string(c)}
					}
				}
				opt := "-" + string(c)
				switch {
				case c == 'A':
					return ErrAgentForwarding
				case c == '1':
					return &ArgError{Msg: "SSH protocol v.1 is no longer supported"}
				case strings.IndexByte(unsupportedLetters, c) >= 0:
					if !seenUnsupp[opt] {
						seenUnsupp[opt] = true
						unsupported = append(unsupported, opt)
					}
				case c == '4':
					inv.AddressFamily = "inet"
				case c == '6':
					inv.AddressFamily = "inet6"
				case c == 'q':
					inv.Quiet = true
				case c == 'v':
					// The later of -q and -v sets ssh's log level: Quiet means -q came last.
					inv.Verbose++
					inv.Quiet = false
				case c == 'C':
					inv.Compression = true
				case c == 'T', c == 'n', c == 'x', c == 'a', c == 'k', c == '2':
					inv.Flags = append(inv.Flags, opt)
				case c == 'p':
					p, ok := parsePort(val)
					if !ok {
						return &ArgError{Msg: fmt.Sprintf("Bad port '%s'", val)}
					}
					setPort(p)
				case c == 'l':
					if !optsOrUser {
						setUser(val)
					}
				case c == 'i':
					inv.Identities = append(inv.Identities, val)
				case c == 'F':
					inv.ConfigFile = val
				case c == 'b':
					bind = val
				case c == 'J':
					if jumpSet {
						return &ArgError{Msg: "Only a single -J option is permitted (use commas to separate multiple jump hops)"}
					}
					jumpSet = true
					inv.Options = append(inv.Options, [2]string{"proxyjump", val})
				case c == 'o':
					kw, v, ok := splitOption(val)
					if kw == "" {
						break
					}
					if !ok {
						return &ArgError{Msg: fmt.Sprintf("command-line line 0: no argument after keyword \"%s\"", kw)}
					}
					switch kw {
					case "user":
						if !userSet {
							optsOrUser = true
						}
					case "port":
						portSet = true
					case "proxyjump":
						jumpSet = true
					}
					inv.Options = append(inv.Options, [2]string{kw, v})
				}
				if kind == optArg {
					break
				}
			}
		}
		return nil
	}

	if err := parseOptions(); err != nil {
		return nil, err
	}
	if i >= len(args) {
		return nil, &ArgError{Msg: "missing destination host (usage: ssh [options] destination [command [argument ...]])"}
	}
	dest := args[i]
	i++
	hostSeen = true
	if u, h, p, isURI, err := parseSSHURI(dest); isURI {
		if err != nil {
			return nil, &ArgError{Msg: fmt.Sprintf("bad ssh URI %q: %v", dest, err)}
		}
		if u != "" && !optsOrUser {
			setUser(u)
		}
		if p > 0 {
			setPort(p)
		}
		inv.Host = h
	} else if at := strings.LastIndexByte(dest, '@'); at >= 0 {
		if at == 0 {
			return nil, &ArgError{Msg: fmt.Sprintf("empty user name in %q", dest)}
		}
		if !optsOrUser {
			setUser(dest[:at])
		}
		inv.Host = dest[at+1:]
	} else {
		inv.Host = dest
	}
	if optTermAtArg != i-1 {
		if err := parseOptions(); err != nil {
			return nil, err
		}
	}
	if i < len(args) {
		inv.Command = append([]string(nil), args[i:]...)
	}

	if inv.Host == "" {
		return nil, &ArgError{Msg: "missing destination host"}
	}
	if !validHostname(inv.Host) {
		return nil, &ArgError{Msg: "hostname contains invalid characters"}
	}
	user := inv.User
	for _, o := range inv.Options {
		if o[0] == "user" && !userSet {
			if w, err := argvSplit(o[1]); err == nil && len(w) > 0 {
				user = w[0]
			}
			break
		}
	}
	if user != "" && !validRemoteUser(user) {
		return nil, &ArgError{Msg: "remote username contains invalid characters"}
	}
	if bind != "" {
		inv.Options = append([][2]string{{"bindaddress", bind}}, inv.Options...)
	}
	if len(unsupported) > 0 {
		return inv, &UnsupportedError{Option: unsupported[0], Options: unsupported}
	}
	return inv, nil
}

// splitOption splits the argument of -o into a lowercased keyword and the rest of the line,
// as OpenSSH's readconf does: the keyword ends at white space, a quote or '='; then white
// space and at most one '=' are skipped.
func splitOption(s string) (kw, rest string, ok bool) {
	s = strings.TrimLeft(s, " \t\r\n")
	s = strings.TrimRight(s, " \t\r\n\f")
	end := strings.IndexAny(s, " \t\r\n\"=")
	if end < 0 {
		return strings.ToLower(s), "", false
	}
	kw = strings.ToLower(s[:end])
	rest = s[end:]
	if rest[0] == '"' {
		// A quoted word right after the keyword: OpenSSH keeps it quoted for argv_split.
		return kw, rest, true
	}
	rest = strings.TrimLeft(rest, " \t\r\n")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t\r\n")
	}
	return kw, rest, rest != ""
}

// parsePort is OpenSSH's a2port: a decimal number from 1 to 65535.
func parsePort(s string) (int, bool) {
	p, err := strconv.Atoi(s)
	if err != nil || p <= 0 || p > 65535 || strings.TrimSpace(s) != s || strings.HasPrefix(s, "+") {
		return 0, false
	}
	return p, true
}

// parseSSHURI recognises ssh://[user@]host[:port] as OpenSSH's parse_ssh_uri does. isURI is
// false for anything that does not start with "ssh://".
func parseSSHURI(s string) (user, host string, port int, isURI bool, err error) {
	if len(s) < 6 || !strings.EqualFold(s[:6], "ssh://") {
		return "", "", 0, false, nil
	}
	rest := s[6:]
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		u := rest[:at]
		if strings.IndexByte(u, ';') >= 0 {
			return "", "", 0, true, fmt.Errorf("connection parameters are not supported")
		}
		if user, err = url.PathUnescape(u); err != nil || user == "" {
			return "", "", 0, true, fmt.Errorf("bad user")
		}
		rest = rest[at+1:]
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", "", 0, true, fmt.Errorf("unterminated [")
		}
		host, rest = rest[1:end], rest[end+1:]
	} else {
		end := strings.IndexAny(rest, ":/")
		if end < 0 {
			end = len(rest)
		}
		host, rest = rest[:end], rest[end:]
	}
	if host == "" {
		return "", "", 0, true, fmt.Errorf("missing host")
	}
	if strings.HasPrefix(rest, ":") {
		end := strings.IndexByte(rest, '/')
		if end < 0 {
			end = len(rest)
		}
		p, ok := parsePort(rest[1:end])
		if !ok {
			return "", "", 0, true, fmt.Errorf("bad port")
		}
		port, rest = p, rest[end:]
	}
	if rest != "" {
		return "", "", 0, true, fmt.Errorf("a path is not allowed")
	}
	return user, host, port, true, nil
}

// validHostname is OpenSSH's check of a destination typed on the command line (CVE-2023-51385).
func validHostname(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte("'`\"$\\;&<>|(){},", c) >= 0 || isSpaceC(c) || c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// validRemoteUser is OpenSSH's check of a user name given on the command line.
func validRemoteUser(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || strings.IndexByte("'`\";&<>|(){}", c) >= 0 {
			return false
		}
		if isSpaceC(c) && i+1 < len(s) && s[i+1] == '-' {
			return false
		}
		if c == '\\' && i+1 == len(s) {
			return false
		}
	}
	return true
}

func isSpaceC(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
