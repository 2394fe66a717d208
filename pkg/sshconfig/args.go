package sshconfig

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

func (e *ArgError) Error() string { return e.Msg }

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
		return fmt.Sprintf("ssh options %s cannot be honoured in-process", strings.Join(e.Options, " "))
	}
	return fmt.Sprintf("ssh option %s cannot be honoured in-process", e.Option)
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
	// -P is not in ssh's usage, but 9.2 still accepts (and ignores) it.
	const spec = "1246ab:c:e:fgi:kl:m:no:p:qstvxAB:CD:E:F:GI:J:KL:MNO:PQ:R:S:TVw:W:XYy"
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
				case c == 'T', c == 'n', c == 'x', c == 'a', c == 'k', c == '2', c == 'P':
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

// parsePort is OpenSSH's a2port: a decimal number from 1 to 65535, as strtonum reads it.
func parsePort(s string) (int, bool) {
	p, ok := strtonum(s, 0, 65535)
	return p, ok && p > 0
}

// strtonum reads a decimal integer as OpenBSD's strtonum does (leading white space and a sign
// allowed, nothing after the digits) and checks it is within [min, max].
func strtonum(s string, min, max int64) (int, bool) {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "+"), "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || n > max {
		return 0, false
	}
	return int(n), true
}

// parseSSHURI recognises ssh://[user[;params]@]host[:port][/] as OpenSSH's parse_ssh_uri does:
// the user is URL-decoded, connection parameters are ignored, the host must be a valid domain
// name (so no IPv6 address), and there may be no path. isURI is false for anything that does
// not start with "ssh://" (in lower case).
func parseSSHURI(s string) (user, host string, port int, isURI bool, err error) {
	rest, ok := strings.CutPrefix(s, "ssh://")
	if !ok {
		return "", "", 0, false, nil
	}
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		u, _, _ := strings.Cut(rest[:at], ";")
		if u == "" {
			return "", "", 0, true, fmt.Errorf("empty user")
		}
		if user, err = url.QueryUnescape(u); err != nil {
			return "", "", 0, true, fmt.Errorf("bad user")
		}
		rest = rest[at+1:]
	}
	end := strings.IndexAny(rest, ":/")
	if end < 0 {
		end = len(rest)
	}
	host, rest = rest[:end], rest[end:]
	if !validDomain(host) {
		return "", "", 0, true, fmt.Errorf("bad host %q", host)
	}
	if p, ok := strings.CutPrefix(rest, ":"); ok {
		ps, after, _ := strings.Cut(p, "/")
		if port, ok = parsePort(ps); !ok {
			return "", "", 0, true, fmt.Errorf("bad port")
		}
		rest = after
	} else {
		rest = strings.TrimPrefix(rest, "/")
	}
	if rest != "" {
		return "", "", 0, true, fmt.Errorf("a path is not allowed")
	}
	return user, host, port, true, nil
}

// validDomain is OpenSSH's valid_domain: letters, digits, '-', '_' and single dots, starting
// with a letter or digit.
func validDomain(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' && i+1 < len(s) && s[i+1] == '.' {
			return false
		}
		if c != '.' && c != '-' && c != '_' && !isAlnum(c) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// A JumpHost is one hop of a ProxyJump: [user@]host[:port] or ssh://[user@]host[:port].
type JumpHost struct {
	User, Host string
	Port       int // 0: not given
}

// ParseProxyJump checks a ProxyJump value (hops separated by commas, the last one nearest the
// destination) as OpenSSH's parse_jump does and returns its hops.
func ParseProxyJump(s string) ([]JumpHost, error) {
	var hops []JumpHost
	for _, h := range strings.Split(s, ",") {
		if u, host, port, isURI, err := parseSSHURI(h); isURI {
			if err != nil {
				return nil, err
			}
			hops = append(hops, JumpHost{u, host, port})
			continue
		}
		var hop JumpHost
		if at := strings.LastIndexByte(h, '@'); at >= 0 {
			if at == 0 {
				return nil, fmt.Errorf("empty user in %q", h)
			}
			hop.User, h = h[:at], h[at+1:]
		}
		var rest string
		if strings.HasPrefix(h, "[") {
			end := strings.IndexByte(h, ']')
			if end < 0 {
				return nil, fmt.Errorf("unterminated [ in %q", h)
			}
			hop.Host, rest = h[1:end], h[end+1:]
			if rest != "" && rest[0] != ':' {
				return nil, fmt.Errorf("bad hop %q", h)
			}
		} else {
			end := strings.IndexByte(h, ':')
			if end < 0 {
				end = len(h)
			}
			hop.Host, rest = h[:end], h[end:]
		}
		if hop.Host == "" || strings.Contains(hop.Host, "/") {
			return nil, fmt.Errorf("bad host in %q", h)
		}
		if p, ok := strings.CutPrefix(rest, ":"); ok && p != "" {
			if hop.Port, ok = parsePort(p); !ok {
				return nil, fmt.Errorf("bad port in %q", h)
			}
		}
		hops = append(hops, hop)
	}
	return hops, nil
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

// DropOptions returns an ssh command line (the words after "ssh", up to and including the
// destination and the options after it, without the remote command) without the options
// whose letters are in letters, and their values: DropOptions(args, "es") removes -e and -s
// for a caller that serves them itself. Bundles are taken apart as ssh's getopt does
// ("-Tenone" is -T and -e none; "-ls" is -l s, kept).
func DropOptions(args []string, letters string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		w := args[i]
		if w == "--" {
			return append(out, args[i:]...)
		}
		if len(w) < 2 || w[0] != '-' {
			out = append(out, w) // the destination
			continue
		}
		kept := []byte{'-'}
		for j := 1; j < len(w); j++ {
			c := w[j]
			drop := strings.IndexByte(letters, c) >= 0
			if sshOptions[c] != optArg {
				if !drop {
					kept = append(kept, c)
				}
				continue
			}
			// The value is the rest of the word, or else the next word.
			val, next := w[j+1:], false
			if val == "" && i+1 < len(args) {
				val, next = args[i+1], true
			}
			if !drop {
				kept = append(kept, w[j:]...)
			}
			if len(kept) > 1 {
				out = append(out, string(kept))
			}
			kept = kept[:1]
			if next {
				if !drop {
					out = append(out, val)
				}
				i++
			}
			break
		}
		if len(kept) > 1 {
			out = append(out, string(kept))
		}
	}
	return out
}
