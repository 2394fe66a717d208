package sshconfig

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	osuser "os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Env is what Resolve needs to know about the local side: where ~ is, who the local user is,
// the environment, and which OpenSSH release's reading of ssh_config to follow. DefaultEnv
// gives the running process's.
type Env struct {
	Home      string              // the local user's home directory: ~, %d and ~/.ssh/config
	User      string              // the local user name: %u and the default User
	UID       int                 // the local user id: %i
	LocalHost string              // the local host name as gethostname(2) gives it: %l (%L is its first label)
	Getenv    func(string) string // the environment, for ${VAR} in paths and Kerberos; nil: empty
	SystemDir string              // the directory of the system ssh_config; "" means /etc/ssh

	// OpenSSH names the release whose keywords, Match criteria and defaults apply ("9.2",
	// "10.0p2" or an `ssh -V` line). "" means the release of the ssh binary SSH names, asked
	// only when something in the configuration depends on the release, and remembered in
	// CacheDir; with no ssh binary, the newest release socketpipe knows (10.5).
	OpenSSH string
	SSH     string // the ssh binary to ask: a path or a name on PATH; "" is ssh on PATH, not socketpipe itself
	// CacheDir keeps the answers of ssh binaries (release and algorithm lists) between runs,
	// checked against the binary's inode, size and modification time; "" keeps none.
	CacheDir string

	// MatchExec runs the command of a Match exec criterion as ssh does: with $SHELL -c (or
	// /bin/sh), standard input and output on /dev/null; it reports whether the command exited
	// 0, and an error when it could not be run or was killed. nil leaves such a Match to ssh
	// (Config.ExecReason). Like ssh, Resolve runs the command only when the criteria before it
	// on the line matched, and again in a final pass (Match final, CanonicalizeHostname).
	MatchExec func(command string) (bool, error)
}

// DefaultEnv returns the Env of the running process. Like OpenSSH, it takes the home directory
// from the password database rather than $HOME, falling back to $HOME when there is none. It
// follows the ssh on PATH, caches its answers under the user's cache directory
// (socketpipe/openssh-releases.json) and runs Match exec commands with the user's shell.
func DefaultEnv() Env {
	env := Env{UID: os.Getuid(), Getenv: os.Getenv, MatchExec: shellMatchExec}
	if u, err := osuser.Current(); err == nil {
		env.Home, env.User = u.HomeDir, u.Username
	}
	if env.Home == "" {
		env.Home = os.Getenv("HOME")
	}
	if env.User == "" {
		env.User = os.Getenv("USER")
	}
	env.LocalHost, _ = os.Hostname()
	if d, err := os.UserCacheDir(); err == nil {
		env.CacheDir = filepath.Join(d, "socketpipe")
	}
	return env
}

// Get returns the value of the environment variable name, "" when Getenv is nil.
func (e Env) Get(name string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(name)
}

func (e Env) systemDir() string {
	if e.SystemDir == "" {
		return "/etc/ssh"
	}
	return e.SystemDir
}

// Flags of one config file, as OpenSSH's readconf has them.
const (
	confUser       = 1 << iota // user file (or -F): relative Includes are under ~/.ssh
	confNeverMatch             // included from an inactive block: nothing in it applies
	confCheckPerm              // refused if others may write it (user file and Includes)
)

const maxIncludeDepth = 16 // OpenSSH's READCONF_MAX_DEPTH

// A value as first given, with where it came from (for ExecReason).
type setting struct {
	args []string
	pos  string // "file line N" or "command line"
}

type resolver struct {
	env     Env
	inv     *Invocation
	hostArg string // the destination as typed: Match originalhost, %n, and Host in the first pass
	host    string // what Host patterns match: hostArg, or in the final pass the canonical name
	final   bool   // the final pass: Match final and canonical are true
	// wantFinal is set by a Match final (and CanonicalizeHostname): read the files again.
	wantFinal bool

	first     map[string]setting // first-value-wins keywords, by lowercase keyword
	ids       []pathEntry        // -i and IdentityFile, as written, in order
	certs     []pathEntry
	sendEnv   []string
	setEnv    []string
	setEnvSet bool
	ignore    string // IgnoreUnknown pattern list, once set

	rel        *ossh // the release followed, once something needed it
	idsGuessed bool  // the default identities are the newest release's, the release unasked
	notes      []string
	noted      map[string]bool
	execReason string
}

// Resolve applies the command line in inv over ssh_config as the local OpenSSH reads it and
// returns the configuration of the login. The command line comes first (-4/-6, -v/-q, -p,
// -l, -i, then the -o options in order), then ~/.ssh/config, then the system file (only the
// -F file instead, or nothing for -F none). For each keyword the first value found wins,
// except that IdentityFile, CertificateFile and SendEnv accumulate, and SetEnv takes the first
// line that applies. Host and every Match criterion, Include with globs, IgnoreUnknown, the
// final pass (Match final, CanonicalizeHostname) and the ~, %-token and ${VAR} expansions are
// OpenSSH's; so are the defaults (as ssh -G prints them), the hostname (lowercased, or an
// address in canonical form), the dropping of -i files that do not exist, and the refusal of
// a user file or Include that others may write.
//
// Which keywords and criteria exist, which tokens expand and what the defaults are depend on
// the OpenSSH release (see Env.OpenSSH): a keyword newer than the local ssh is an unknown
// keyword, as it is to that ssh. Apple's UseKeychain is accepted everywhere, as on macOS.
// Match command and sessiontype see inv.Command: a caller that will send a command of its own
// puts it there first.
//
// IdentityAgent is "" when not configured, otherwise as ssh -G prints it: "none",
// "SSH_AUTH_SOCK" or "$VAR" as written (the variable names the socket), or an expanded path.
// Config.ProxyJump is the value as written ("" for none).
//
// Resolve does not fail on what a configuration says: anything it cannot honour in-process,
// or that ssh itself would refuse, is reported in Config.ExecReason (naming the file and
// line, or the -o option) so that the caller executes the ssh binary, which will do the right
// thing or say what is wrong; the first such reason is kept. Resolve returns an error only for
// an Invocation without a host.
func Resolve(inv *Invocation, env Env) (*Config, error) {
	if inv == nil || inv.Host == "" {
		return nil, errors.New("no destination host to resolve")
	}
	r := &resolver{env: env, inv: inv, hostArg: inv.Host, host: inv.Host, first: map[string]setting{}}

	// The command line, in the order that lets OpenSSH's first-wins come out right (ParseArgs
	// already dropped -p/-l values that an earlier -o overrode). -4/-6 and -v/-q overwrite in
	// ssh, so they go first.
	const cl = "command line"
	if inv.AddressFamily != "" {
		r.first["addressfamily"] = setting{[]string{inv.AddressFamily}, cl}
	}
	switch {
	case inv.Quiet: // ParseArgs clears it when a -v follows
		r.first["loglevel"] = setting{[]string{"QUIET"}, cl}
	case inv.Verbose > 0:
		lv := [...]string{"DEBUG", "DEBUG2", "DEBUG3"}[min(inv.Verbose, 3)-1]
		r.first["loglevel"] = setting{[]string{lv}, cl}
	}
	if inv.Port > 0 {
		r.first["port"] = setting{[]string{strconv.Itoa(inv.Port)}, cl}
	}
	if inv.User != "" {
		r.first["user"] = setting{[]string{inv.User}, cl}
	}
	for _, id := range inv.Identities {
		// ssh checks -i files at once and drops, with a warning, those it cannot stat.
		p := r.env.ExpandTilde(id)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		addPath(&r.ids, p, fromDashI)
	}
	active := true
	for _, o := range inv.Options {
		r.apply(o[0], o[1], "command-line", 0, 0, &active, true, 0)
	}
	r.checkCommandLine()

	r.readConfigs()
	if host, ok := r.canonicalize(); ok && r.wantFinal {
		// ssh reads the files again with the canonical name: Host matches it, Match final and
		// canonical are true, and what the first pass set stays set.
		r.final, r.host = true, host
		r.first["hostname"] = setting{[]string{host}, "canonical host name"}
		r.readConfigs()
	}
	return r.finish(inv), nil
}

// readConfigs reads the configuration files of one pass.
func (r *resolver) readConfigs() {
	switch {
	case strings.EqualFold(r.inv.ConfigFile, "none"):
		// ssh -F none reads no file at all.
	case r.inv.ConfigFile != "":
		r.readFile(r.inv.ConfigFile, confUser, 0, true)
	default:
		r.readFile(filepath.Join(r.env.Home, ".ssh", "config"), confUser|confCheckPerm, 0, false)
		r.readFile(filepath.Join(r.env.systemDir(), "ssh_config"), 0, 0, false)
	}
}

// release is the OpenSSH release followed, found the first time something depends on it.
func (r *resolver) release() *ossh {
	if r.rel == nil {
		r.rel = osshFor(r.env)
		r.note("following OpenSSH %s: %s", releaseName(r.rel.v), r.rel.source)
	}
	return r.rel
}

func (r *resolver) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if r.noted[msg] {
		return
	}
	if r.noted == nil {
		r.noted = map[string]bool{}
	}
	r.noted[msg] = true
	r.notes = append(r.notes, msg)
}

func (r *resolver) exec(pos, format string, args ...any) {
	if r.execReason != "" {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if pos != "" {
		msg = pos + ": " + msg
	}
	r.execReason = msg
}

// checkCommandLine refuses, as OpenSSH 9.6 and later do, a destination or -l user with shell
// characters in it (they would end up in %-tokens).
func (r *resolver) checkCommandLine() {
	if !validHostnameChars(r.hostArg) || (r.inv.User != "" && !validUserChars(r.inv.User)) {
		if r.release().v >= relJumpToken {
			if !validHostnameChars(r.hostArg) {
				r.exec("command line", "hostname %q contains invalid characters", r.hostArg)
			} else {
				r.exec("command line", "remote username %q contains invalid characters", r.inv.User)
			}
		}
	}
}

// validHostnameChars is OpenSSH's valid_hostname (ssh.c, 9.6).
func validHostnameChars(s string) bool {
	if strings.HasPrefix(s, "-") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte("'`\"$\\;&<>|(){}", c) >= 0 || c == ' ' || c == '\t' || c == '\n' ||
			c == '\v' || c == '\f' || c == '\r' || c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// validUserChars is OpenSSH's valid_ruser (ssh.c, 9.6).
func validUserChars(s string) bool {
	if strings.HasPrefix(s, "-") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte("'`\";&<>|(){}", c) >= 0 {
			return false
		}
		if isSpace(c) && i+1 < len(s) && s[i+1] == '-' {
			return false
		}
		if c == '\\' && i+1 == len(s) {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// readFile reads one config file. A missing file is no error, except for -F.
func (r *resolver) readFile(name string, flags, depth int, mustExist bool) {
	b, err := os.ReadFile(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !mustExist {
			return
		}
		r.exec("", "cannot read config file %s: %v", name, errors.Unwrap(err))
		return
	}
	if flags&confCheckPerm != 0 {
		// OpenSSH refuses a file that someone else could have written.
		if st, err := os.Stat(name); err == nil {
			sys, ok := st.Sys().(*syscall.Stat_t)
			if st.Mode().Perm()&0o022 != 0 || ok && sys.Uid != 0 && int(sys.Uid) != r.env.UID {
				r.exec("", "bad owner or permissions on %s", name)
				return
			}
		}
	}
	active := flags&confNeverMatch == 0
	for i, line := range strings.Split(string(b), "\n") {
		if r.execReason != "" {
			// ssh will be run and read it all again: nothing here matters any more. (Files
			// that include themselves through globs would otherwise be read a number of
			// times exponential in the include depth.)
			return
		}
		kw, rest, ok := splitOption(line)
		if kw == "" || strings.HasPrefix(kw, "#") {
			continue
		}
		pos := fmt.Sprintf("%s line %d", name, i+1)
		if !ok {
			r.exec(pos, "no argument after keyword %q", kw)
			continue
		}
		r.apply(kw, rest, name, i+1, flags, &active, false, depth)
	}
}

// known says whether the release followed accepts kw (lowercase, aliases resolved), and if
// not, which release first did.
func (r *resolver) known(kw string) (kind, since int, ok bool) {
	kind, ok = keywords[kw]
	if !ok {
		return 0, 0, false
	}
	if since, newer := keywordSince[kw]; newer && r.release().v < since {
		return 0, since, false
	}
	return kind, 0, true
}

// apply processes one keyword line, as OpenSSH's process_config_line does.
func (r *resolver) apply(kw, rest, file string, line, flags int, active *bool, cmdline bool, depth int) {
	pos := fmt.Sprintf("%s line %d", file, line)
	if cmdline {
		pos = "command line (-o " + kw + ")"
	}
	args, err := argvSplit(rest)
	if err != nil {
		r.exec(pos, "invalid quotes")
		return
	}
	if len(args) == 0 {
		r.exec(pos, "no argument after keyword %q", kw)
		return
	}
	if canon, ok := keywordAlias[kw]; ok {
		kw = canon
	}
	if name, apple := appleKeywords[kw]; apple {
		if err := validate("batchmode", args); err != nil {
			r.exec(pos, "%s: %v", name, err)
		} else if *active && flags&confNeverMatch == 0 {
			r.note("%s (Apple's keyword, accepted on every system) has no effect in-process: keys come from files and the agent", name)
		}
		return
	}
	kind, since, known := r.known(kw)
	if !known {
		if r.ignore != "" && matchPatternList(kw, r.ignore, true) == 1 {
			return
		}
		if since > 0 {
			r.exec(pos, "unknown ssh_config keyword %q (OpenSSH %s has it; the local ssh is %s)", kw, releaseName(since), releaseName(r.release().v))
			return
		}
		r.exec(pos, "unknown ssh_config keyword %q", kw)
		return
	}

	switch kw {
	case "host":
		if cmdline {
			r.exec(pos, "Host is not allowed on the command line")
			return
		}
		*active = false
		if flags&confNeverMatch != 0 {
			return
		}
		for _, p := range args {
			if p == "" {
				r.exec(pos, "Host: empty argument")
				return
			}
			neg := strings.HasPrefix(p, "!")
			if neg {
				p = p[1:]
			}
			if MatchPattern(r.host, p) {
				if neg {
					*active = false
					return
				}
				*active = true
			}
		}
		return
	case "match":
		if cmdline {
			r.exec(pos, "Match is not allowed on the command line")
			return
		}
		m, ok := r.match(args, pos)
		*active = ok && m && flags&confNeverMatch == 0
		return
	case "include":
		if cmdline {
			r.exec(pos, "Include is not allowed on the command line")
			return
		}
		r.include(args, pos, flags, active, depth)
		return
	}

	if kind == kwIgnored {
		return
	}

	if kw == "proxyjump" {
		// OpenSSH reads the rest of the line, not words, and checks every hop's syntax.
		v, _, _ := strings.Cut(rest, "#")
		v = strings.TrimRight(v, " \t\r\n")
		args = []string{v}
		if !strings.EqualFold(v, "none") {
			if _, err := ParseProxyJump(v); err != nil {
				r.exec(pos, "invalid ProxyJump %q: %v", v, err)
				return
			}
		}
	}
	if err := validate(kw, args); err != nil {
		r.exec(pos, "%s: %v", keywordName(kw), err)
		return
	}
	if kw == "identityagent" {
		// OpenSSH expands ${VAR} here once, to refuse a variable that is not set.
		if _, err := r.dollarExpand(args[0]); err != nil {
			r.exec(pos, "IdentityAgent: %v", err)
			return
		}
	}
	if kw == "ciphers" || kw == "macs" || kw == "kexalgorithms" || kw == "hostkeyalgorithms" {
		if err := r.validAlgorithms(kw, args[0]); err != nil {
			r.exec(pos, "%s: %v", keywordName(kw), err)
			return
		}
	}
	if !*active {
		return
	}
	switch kw {
	case "identityfile":
		addPath(&r.ids, args[0], origin(flags, cmdline))
	case "certificatefile":
		addPath(&r.certs, args[0], origin(flags, cmdline))
	case "sendenv":
		for _, a := range args {
			if strings.HasPrefix(a, "-") {
				out := r.sendEnv[:0]
				for _, e := range r.sendEnv {
					if !MatchPattern(e, a[1:]) {
						out = append(out, e)
					}
				}
				r.sendEnv = out
				continue
			}
			r.sendEnv = append(r.sendEnv, a)
		}
	case "setenv":
		if r.setEnvSet {
			return
		}
		r.setEnvSet = true
		for _, a := range args {
			name, _, _ := strings.Cut(a, "=")
			dup := false
			for _, e := range r.setEnv {
				if n, _, _ := strings.Cut(e, "="); n == name {
					dup = true
				}
			}
			if !dup {
				r.setEnv = append(r.setEnv, a)
			}
		}
	case "localforward", "remoteforward", "dynamicforward":
		r.exec(pos, "%s is not supported in-process", keywordName(kw))
	case "refuseconnection":
		// ssh stops here with this message.
		r.exec(pos, "RefuseConnection: %s", args[0])
	case "ignoreunknown":
		if r.ignore == "" {
			r.ignore = args[0]
		}
	case "proxyjump", "proxycommand":
		// They compete: whichever comes first stops the other.
		if _, ok := r.first["proxy"]; !ok {
			r.first["proxy"] = setting{append([]string{kw}, args...), pos}
		}
	case "connecttimeout", "serveraliveinterval":
		// "none" is OpenSSH's unset value: a later line may still set it.
		if _, ok := r.first[kw]; !ok && !strings.EqualFold(args[0], "none") {
			r.first[kw] = setting{args, pos}
		}
	default:
		if _, ok := r.first[kw]; !ok {
			r.first[kw] = setting{args, pos}
		}
	}
}

// include reads the files an Include line names, as OpenSSH does: ~ only in user files, a
// relative path under ~/.ssh (user files) or /etc/ssh, globs sorted, and (from 9.9) %-tokens
// and ${VAR} expanded first, a path that cannot be expanded being skipped.
func (r *resolver) include(args []string, pos string, flags int, active *bool, depth int) {
	if depth+1 > maxIncludeDepth {
		r.exec(pos, "too many recursive configuration includes")
		return
	}
	for _, arg := range args {
		if strings.ContainsAny(arg, "%$") && r.release().v >= relIncludeTokens {
			p, err := r.expandEarly(arg, true)
			if err != nil {
				continue // ssh logs "Unable to expand user config file" and goes on
			}
			arg = p
		}
		if strings.HasPrefix(arg, "~") && flags&confUser == 0 {
			r.exec(pos, "bad include path %s", arg)
			return
		}
		path := arg
		switch {
		case strings.HasPrefix(arg, "~"):
			path = r.env.ExpandTilde(arg)
		case !filepath.IsAbs(arg) && flags&confUser != 0:
			path = filepath.Join(r.env.Home, ".ssh", arg)
		case !filepath.IsAbs(arg):
			path = filepath.Join(r.env.systemDir(), arg)
		}
		matches, err := filepath.Glob(path)
		if err != nil {
			r.exec(pos, "glob failed for %s", path)
			return
		}
		sort.Strings(matches)
		// Host and Match lines in an included file change only that file's state (readFile
		// keeps its own); from an inactive block nothing in it may match.
		f := flags | confCheckPerm
		if !*active {
			f |= confNeverMatch
		}
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.IsDir() {
				continue // ssh opens it and reads no line from it
			}
			r.readFile(m, f, depth+1, false)
		}
	}
}

// Where an identity or certificate file was named. OpenSSH drops a repeated file only when it
// comes from the same kind of place (its add_identity_file's userprovided: 1 for -i, 2 for -o,
// -F and the user file, 0 for the system file), so the same path may be listed twice.
const (
	fromSystem = iota
	fromDashI
	fromUser
)

type pathEntry struct {
	path   string
	origin int
}

func origin(flags int, cmdline bool) int {
	if cmdline || flags&confUser != 0 {
		return fromUser
	}
	return fromSystem
}

func addPath(list *[]pathEntry, p string, origin int) {
	for _, e := range *list {
		if e.path == p && e.origin == origin {
			return
		}
	}
	*list = append(*list, pathEntry{p, origin})
}

// ExpandTilde expands a leading ~ or ~/ with Home, and ~user with that user's home directory
// (Home when user is User), as ssh expands the paths it opens.
func (e Env) ExpandTilde(p string) string {
	if !strings.HasPrefix(p, "~") {
		return p
	}
	name, rest, _ := strings.Cut(p[1:], "/")
	home := e.Home
	if name != "" && name != e.User {
		u, err := osuser.Lookup(name)
		if err != nil {
			return p
		}
		home = u.HomeDir
	}
	if rest == "" && !strings.Contains(p, "/") {
		return home
	}
	return strings.TrimSuffix(home, "/") + "/" + rest
}

// finish turns the first values into a Config, with OpenSSH's defaults and expansions.
func (r *resolver) finish(inv *Invocation) *Config {
	c := &Config{
		Host:                         inv.Host,
		Port:                         22,
		User:                         r.env.User,
		StrictHostKeyChecking:        "ask",
		ConnectionAttempts:           1,
		ServerAliveCountMax:          3,
		AddressFamily:                "any",
		PasswordAuthentication:       true,
		KbdInteractiveAuthentication: true,
		PubkeyAuthentication:         true,
		LogLevel:                     "INFO",
	}
	get := func(kw string) (string, bool) {
		s, ok := r.first[kw]
		if !ok {
			return "", false
		}
		return s.args[0], true
	}
	flag := func(kw string, dst *bool) {
		if v, ok := get(kw); ok {
			*dst = parseFlag(v)
		}
	}

	c.HostName = inv.Host
	if v, ok := get("hostname"); ok {
		if r.final {
			c.HostName = v // the canonical name, already expanded
		} else if h, err := percentExpand(v, map[byte]string{'h': inv.Host}); err != nil {
			r.exec(r.first["hostname"].pos, "HostName: %v", err)
		} else {
			c.HostName = h
		}
	}
	if v, ok := get("addressfamily"); ok {
		c.AddressFamily = strings.ToLower(v)
	}
	c.HostName = canonicalHost(c.HostName, c.AddressFamily)
	if v, ok := get("port"); ok {
		c.Port, _ = parsePort(v)
	}
	if v, ok := get("user"); ok {
		c.User = v
	}
	flag("identitiesonly", &c.IdentitiesOnly)
	flag("checkhostip", &c.CheckHostIP)
	flag("hashknownhosts", &c.HashKnownHosts)
	flag("batchmode", &c.BatchMode)
	flag("passwordauthentication", &c.PasswordAuthentication)
	flag("kbdinteractiveauthentication", &c.KbdInteractiveAuthentication)
	if v, ok := get("pubkeyauthentication"); ok {
		c.PubkeyAuthentication = strings.ToLower(v) != "no" && strings.ToLower(v) != "false"
	}
	if v, ok := get("stricthostkeychecking"); ok {
		c.StrictHostKeyChecking = map[string]string{
			"yes": "yes", "true": "yes", "no": "no", "false": "no", "off": "no",
			"ask": "ask", "accept-new": "accept-new",
		}[strings.ToLower(v)]
	}
	if v, ok := get("hostkeyalias"); ok {
		c.HostKeyAlias = asciiLower(v) // ssh lowercases it before use (and before -G)
	}
	if v, ok := get("connecttimeout"); ok {
		if secs, _ := parseTime(v); secs > 0 {
			c.ConnectTimeout = time.Duration(secs) * time.Second
		}
	}
	if v, ok := get("connectionattempts"); ok {
		c.ConnectionAttempts, _ = strtonum(v, 0, 1<<31-1)
	}
	if v, ok := get("serveraliveinterval"); ok {
		if secs, _ := parseTime(v); secs > 0 {
			c.ServerAliveInterval = time.Duration(secs) * time.Second
		}
	} else if c.BatchMode {
		c.ServerAliveInterval = 300 * time.Second // OpenSSH's default in batch mode
	}
	if v, ok := get("serveralivecountmax"); ok {
		c.ServerAliveCountMax, _ = strtonum(v, 0, 1<<31-1)
	}
	if v, ok := get("bindaddress"); ok {
		c.BindAddress = v
	}
	if v, ok := get("preferredauthentications"); ok {
		c.PreferredAuthentications = strings.Split(v, ",")
	}
	if v, ok := get("loglevel"); ok {
		c.LogLevel = strings.ToUpper(v)
		if c.LogLevel == "DEBUG1" {
			c.LogLevel = "DEBUG"
		}
		if c.LogLevel == "SILENT" {
			c.LogLevel = "QUIET"
		}
	}
	for _, a := range []struct {
		kw  string
		dst *[]string
	}{
		{"ciphers", &c.Ciphers}, {"kexalgorithms", &c.KexAlgorithms},
		{"macs", &c.MACs}, {"hostkeyalgorithms", &c.HostKeyAlgorithms},
	} {
		if v, ok := get(a.kw); ok {
			if !strings.ContainsAny(v[:1], "+-^") && !strings.ContainsAny(v, "*?") {
				// A plain list is the list: no defaults or patterns to look up.
				*a.dst = strings.Split(namesCat("", v), ",")
				continue
			}
			def, all := r.lists().forKeyword(a.kw)
			list, err := assembleAlgorithms(v, def, all)
			if err != nil {
				r.exec(r.first[a.kw].pos, "%s: %v", keywordName(a.kw), err)
				continue
			}
			*a.dst = strings.Split(list, ",")
		}
	}
	c.SetEnv = r.setEnv
	c.SendEnv = r.sendEnv

	if s, ok := r.first["proxy"]; ok {
		switch {
		case strings.EqualFold(s.args[1], "none"):
		case s.args[0] == "proxycommand":
			r.exec(s.pos, "ProxyCommand is not supported in-process")
		default:
			c.ProxyJump = s.args[1]
		}
	}

	port := strconv.Itoa(c.Port)
	short, _, _ := strings.Cut(r.env.LocalHost, ".")
	alias := inv.Host
	if c.HostKeyAlias != "" {
		alias = c.HostKeyAlias
	}
	jump := ""
	if c.ProxyJump != "" {
		if hops, err := ParseProxyJump(c.ProxyJump); err == nil && len(hops) > 0 {
			jump = hops[len(hops)-1].Host
		}
	}
	tokens := map[byte]string{
		'L': short, 'i': strconv.Itoa(r.env.UID), 'k': alias, 'l': r.env.LocalHost,
		'n': inv.Host, 'p': port, 'u': r.env.User, 'h': c.HostName, 'd': r.env.Home,
	}
	r.expandUser(c, tokens, jump)
	tokens['r'] = c.User
	// %C hashes the jump host too from 9.6, and %j is 9.6's: the release matters only when a
	// ProxyJump is set or %j is used.
	hashed := r.env.LocalHost + c.HostName + port + c.User
	if jump != "" && r.release().v >= relJumpToken {
		hashed += jump
	}
	sum := sha1.Sum([]byte(hashed))
	tokens['C'] = hex.EncodeToString(sum[:])
	withJ := func(p string) map[byte]string {
		if hasToken(p, 'j') && r.release().v >= relJumpToken {
			t := maps.Clone(tokens)
			t['j'] = jump
			return t
		}
		return tokens
	}
	expand := func(kw, p string) string {
		p = r.env.ExpandTilde(p)
		out, err := percentExpand(p, withJ(p))
		if err == nil {
			out, err = r.dollarExpand(out)
		}
		if err != nil {
			pos := ""
			if s, ok := r.first[kw]; ok {
				pos = s.pos
			}
			r.exec(pos, "%s: %v", keywordName(kw), err)
			return p
		}
		return out
	}

	for _, id := range r.ids {
		c.IdentityFiles = append(c.IdentityFiles, expand("identityfile", id.path))
	}
	if len(r.ids) == 0 {
		for _, id := range r.defaultIdentities() {
			c.IdentityFiles = append(c.IdentityFiles, expand("identityfile", id))
		}
	}
	for _, f := range r.certs {
		c.CertificateFiles = append(c.CertificateFiles, expand("certificatefile", f.path))
	}
	if s, ok := r.first["userknownhostsfile"]; ok {
		for _, f := range s.args {
			c.UserKnownHostsFiles = append(c.UserKnownHostsFiles, expand("userknownhostsfile", f))
		}
	} else {
		for _, f := range []string{"~/.ssh/known_hosts", "~/.ssh/known_hosts2"} {
			c.UserKnownHostsFiles = append(c.UserKnownHostsFiles, expand("userknownhostsfile", f))
		}
	}
	if s, ok := r.first["globalknownhostsfile"]; ok {
		c.GlobalKnownHostsFiles = s.args
	} else {
		c.GlobalKnownHostsFiles = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	}
	if v, ok := get("identityagent"); ok {
		switch {
		case v == "SSH_AUTH_SOCK", strings.HasPrefix(v, "$") && !strings.HasPrefix(v, "${"), v == "none":
			// As written: the agent code reads the variable when it connects.
			c.IdentityAgent = v
		default:
			c.IdentityAgent = expand("identityagent", v)
		}
	}

	r.execSettings(c, withJ(r.firstValue("controlpath")))
	c.ExecReason = r.execReason
	c.Notes = r.notes
	c.rel = r.rel
	c.osshEnv = r.env
	c.defaultIDs = r.idsGuessed
	return c
}

// expandUser applies to User what OpenSSH 10 does: %-tokens (but %r and %C) and ${VAR}
// expanded, in 10.0 for every User and from 10.1 for one from a configuration file or -o,
// and the result refused if it has shell characters (10.0: always; 10.1: when expanded).
// Earlier releases take User as written. The release is asked only for a User with "%" or
// "$" or shell characters in it.
func (r *resolver) expandUser(c *Config, tokens map[byte]string, jump string) {
	s, ok := r.first["user"]
	if !ok || (!strings.ContainsAny(c.User, "%$") && validUserChars(c.User)) {
		return
	}
	v := r.release().v
	if v < relUserTokens {
		return
	}
	fromConfig := s.pos != "command line"
	u := c.User
	if v < relUserTokensConfig || fromConfig {
		t := maps.Clone(tokens)
		t['j'] = jump
		var err error
		u, err = percentExpand(c.User, t)
		if err == nil {
			u, err = r.dollarExpand(u)
		}
		if err != nil {
			r.exec(s.pos, "User: %v", err)
			return
		}
	}
	if (v < relUserTokensConfig || !fromConfig || u != c.User) && !validUserChars(u) {
		r.exec(s.pos, "remote username %q contains invalid characters", u)
		return
	}
	c.User = u
}

// hasToken says whether s uses the %-token t (not %%t).
func hasToken(s string, t byte) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '%' {
			if s[i+1] == t {
				return true
			}
			i++
		}
	}
	return false
}

// lists are the algorithm lists of the release followed.
func (r *resolver) lists() algLists {
	return r.release().algorithms(r.env.CacheDir)
}

// defaultIdentities are the identity files ssh tries when none is configured. They differ
// between releases only in files few people have (DSA, XMSS, ML-DSA keys): unless one of them
// exists, the list of the newest release is as good as the local one's and no ssh is asked.
func (r *resolver) defaultIdentities() []string {
	if r.rel == nil && r.env.OpenSSH == "" {
		need := false
		for _, f := range releaseDependentIdentities {
			if _, err := os.Stat(filepath.Join(r.env.Home, ".ssh", f)); err == nil {
				need = true
			}
		}
		if !need {
			r.idsGuessed = true
			return defaultIdentityFiles(osshNewest)
		}
	}
	return defaultIdentityFiles(r.release().v)
}

// execSettings sets ExecReason for settings whose value asks for something only ssh can do.
func (r *resolver) execSettings(c *Config, tokens map[byte]string) {
	is := func(kw string, bad func(v string) bool) {
		if s, ok := r.first[kw]; ok && bad(s.args[0]) {
			r.exec(s.pos, "%s %s is not supported in-process", keywordName(kw), strings.Join(s.args, " "))
		}
	}
	notNone := func(v string) bool { return !strings.EqualFold(v, "none") }
	yes := func(v string) bool { return parseFlag(v) }

	// Multiplexing. With ControlMaster other than no, ssh would become a master, ask, or reuse
	// one: exec. With ControlMaster no, a ControlPath only makes ssh try an existing master
	// first: exec when something exists at the expanded path, else connecting directly is
	// what ssh would do too. A path that cannot be expanded here also sends it to ssh.
	is("controlmaster", func(v string) bool { return !strings.EqualFold(v, "no") && !strings.EqualFold(v, "false") })
	if s, ok := r.first["controlpath"]; ok && notNone(s.args[0]) {
		p, err := percentExpand(r.env.ExpandTilde(s.args[0]), tokens)
		if err == nil {
			p, err = r.dollarExpand(p)
		}
		switch _, serr := os.Lstat(p); {
		case err != nil:
			r.exec(s.pos, "ControlPath %s: %v", s.args[0], err)
		case serr == nil:
			r.exec(s.pos, "ControlPath %s: a master may be listening there", p)
		}
	}
	if s, ok := r.first["localcommand"]; ok && notNone(s.args[0]) {
		if p, ok := r.first["permitlocalcommand"]; ok && parseFlag(p.args[0]) {
			r.exec(s.pos, "LocalCommand with PermitLocalCommand yes is not supported in-process")
		}
	}
	is("knownhostscommand", notNone)
	is("pkcs11provider", notNone)
	is("securitykeyprovider", func(v string) bool { return v != "internal" && v != "$SSH_SK_PROVIDER" })
	is("hostbasedauthentication", yes)
	is("remotecommand", notNone)
	is("requesttty", func(v string) bool { return strings.EqualFold(v, "force") })
	is("sessiontype", func(v string) bool { return !strings.EqualFold(v, "default") })
	is("forkafterauthentication", yes)
	is("tunnel", func(v string) bool { return !strings.EqualFold(v, "no") && !strings.EqualFold(v, "false") })
	is("bindinterface", func(string) bool { return true })
	is("verifyhostkeydns", func(v string) bool { return !strings.EqualFold(v, "no") && !strings.EqualFold(v, "false") })
	is("nohostauthenticationforlocalhost", yes)
	is("revokedhostkeys", notNone)
	is("gssapikeyexchange", yes)
	// GSSAPI can only succeed with Kerberos credentials. Debian and Ubuntu ship
	// "GSSAPIAuthentication yes" for every host, so without a credential cache it changes
	// nothing: ssh would try it, fail at once and go on.
	if s, ok := r.first["gssapiauthentication"]; ok && parseFlag(s.args[0]) && r.kerberosCredentials() {
		r.exec(s.pos, "GSSAPIAuthentication yes with Kerberos credentials is not supported in-process")
	}
}

// kerberosCredentials says whether a Kerberos credential cache may exist for this user.
func (r *resolver) kerberosCredentials() bool {
	if r.env.Get("KRB5CCNAME") != "" {
		return true
	}
	if _, err := os.Stat(fmt.Sprintf("/tmp/krb5cc_%d", r.env.UID)); err == nil {
		return true
	}
	if b, err := os.ReadFile("/etc/krb5.conf"); err == nil && strings.Contains(string(b), "default_ccache_name") {
		return true
	}
	return false
}

// dollarExpand replaces ${NAME} with the environment variable, as OpenSSH's dollar_expand.
func (r *resolver) dollarExpand(s string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		name := s[i+2 : i+end]
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid environment variable %q", name)
		}
		v := r.env.Get(name)
		if v == "" {
			return "", fmt.Errorf("environment variable %q not set", name)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// percentExpand replaces %x tokens; an unknown token is an error, as in OpenSSH.
func percentExpand(s string, tokens map[byte]string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i >= len(s) {
			return "", fmt.Errorf("invalid format %q: ends in %%", s)
		}
		if s[i] == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := tokens[s[i]]
		if !ok {
			return "", fmt.Errorf("unknown key %%%c in %q", s[i], s)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// argvSplit splits the arguments of a config line as OpenSSH's argv_split does: white space
// separates, single and double quotes group, backslash escapes quotes, backslash and space,
// and a word starting with # ends the line.
func argvSplit(s string) ([]string, error) {
	var args []string
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' {
			continue
		}
		if s[i] == '#' {
			break
		}
		var arg []byte
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || (quote == 0 && s[i+1] == ' ')):
				i++
				arg = append(arg, s[i])
			case quote == 0 && (c == ' ' || c == '\t'):
				goto done
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
			case quote != 0 && c == quote:
				quote = 0
			default:
				arg = append(arg, c)
			}
		}
		if quote != 0 {
			return nil, errors.New("invalid quotes")
		}
	done:
		args = append(args, string(arg))
	}
	return args, nil
}

// MatchPattern is OpenSSH's match_pattern, which Host, Match and SendEnv patterns and
// algorithm lists use: * matches any run of bytes, ? any one byte, over the whole of s.
func MatchPattern(s, p string) bool {
	for {
		if p == "" {
			return s == ""
		}
		if p[0] == '*' {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if (p[0] == '?' || i < len(s) && s[i] == p[0]) && MatchPattern(s[i:], p) {
					return true
				}
			}
			return false
		}
		if s == "" || (p[0] != '?' && p[0] != s[0]) {
			return false
		}
		s, p = s[1:], p[1:]
	}
}

// matchPatternList is OpenSSH's match_pattern_list: 1 if some pattern of the comma-separated
// list matches and no negated one does, -1 if a negated one matches, 0 otherwise.
func matchPatternList(s, list string, lower bool) int {
	if lower {
		s, list = strings.ToLower(s), strings.ToLower(list)
	}
	got := 0
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if MatchPattern(s, p) {
			if neg {
				return -1
			}
			got = 1
		}
	}
	return got
}

func parseFlag(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "true":
		return true
	}
	return false
}

// parseTime is OpenSSH's convtime: seconds, or a sequence of numbers with s, m, h, d or w.
// "none" is 0.
func parseTime(s string) (int, error) {
	if strings.EqualFold(s, "none") {
		return 0, nil
	}
	if s == "" {
		return 0, errors.New("empty time")
	}
	total := 0
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid time value")
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return 0, err
		}
		mult := 1
		s = s[i:]
		if s != "" {
			switch s[0] {
			case 's', 'S':
			case 'm', 'M':
				mult = 60
			case 'h', 'H':
				mult = 3600
			case 'd', 'D':
				mult = 86400
			case 'w', 'W':
				mult = 604800
			default:
				return 0, fmt.Errorf("invalid time value")
			}
			s = s[1:]
		}
		total += n * mult
		if total > 1<<31-1 {
			return 0, fmt.Errorf("time value too large")
		}
	}
	return total, nil
}

// validate checks a honoured keyword's value as OpenSSH would, so that a value ssh refuses
// sends the login to ssh (which says what is wrong) rather than being half-understood.
func validate(kw string, args []string) error {
	one := func() error {
		if len(args) > 1 {
			return fmt.Errorf("garbage at end of line")
		}
		return nil
	}
	v := args[0]
	switch kw {
	case "port":
		if _, ok := parsePort(v); !ok {
			return fmt.Errorf("bad port %q", v)
		}
		return one()
	case "connectionattempts", "serveralivecountmax":
		n, ok := strtonum(v, 0, 1<<31-1)
		if !ok {
			return fmt.Errorf("bad number %q", v)
		}
		if kw == "connectionattempts" && n == 0 {
			return fmt.Errorf("invalid number of ConnectionAttempts")
		}
		return one()
	case "connecttimeout", "serveraliveinterval":
		if _, err := parseTime(v); err != nil {
			return fmt.Errorf("%v %q", err, v)
		}
		return one()
	case "identitiesonly", "checkhostip", "hashknownhosts", "batchmode", "passwordauthentication",
		"kbdinteractiveauthentication", "gssapiauthentication", "gssapikeyexchange",
		"hostbasedauthentication", "permitlocalcommand", "forkafterauthentication",
		"nohostauthenticationforlocalhost":
		switch strings.ToLower(v) {
		case "yes", "no", "true", "false":
			return one()
		}
		return fmt.Errorf("unsupported option %q", v)
	case "pubkeyauthentication":
		switch strings.ToLower(v) {
		case "yes", "no", "true", "false", "unbound", "host-bound":
			return one()
		}
		return fmt.Errorf("unsupported option %q", v)
	case "stricthostkeychecking":
		switch strings.ToLower(v) {
		case "yes", "no", "true", "false", "off", "ask", "accept-new":
			return one()
		}
		return fmt.Errorf("unsupported option %q", v)
	case "addressfamily":
		switch strings.ToLower(v) {
		case "any", "inet", "inet6":
			return one()
		}
		return fmt.Errorf("unsupported option %q", v)
	case "loglevel":
		switch strings.ToUpper(v) {
		case "QUIET", "SILENT", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3":
			return one()
		}
		return fmt.Errorf("unsupported log level %q", v)
	case "setenv":
		for _, a := range args {
			if !strings.Contains(a, "=") {
				return fmt.Errorf("invalid environment %q", a)
			}
		}
	case "canonicalizehostname":
		switch strings.ToLower(v) {
		case "yes", "no", "true", "false", "always":
			return one()
		}
		return fmt.Errorf("unsupported option %q", v)
	case "canonicalizefallbacklocal":
		switch strings.ToLower(v) {
		case "yes", "no", "true", "false":
			return one()
		}
		return fmt.Errorf("unsupported option %q", v)
	case "canonicalizemaxdots":
		if _, ok := strtonum(v, 0, 1<<31-1); !ok {
			return fmt.Errorf("bad number %q", v)
		}
		return one()
	case "canonicaldomains":
		for i, a := range args {
			if strings.EqualFold(a, "none") && len(args) > 1 {
				return fmt.Errorf("\"none\" must appear alone")
			}
			if !validDomain(a) {
				return fmt.Errorf("invalid domain name %q (argument %d)", a, i+1)
			}
		}
	case "canonicalizepermittedcnames":
		for _, a := range args {
			if strings.EqualFold(a, "none") {
				if len(args) > 1 {
					return fmt.Errorf("\"none\" must appear alone")
				}
				continue
			}
			if a == "*" {
				continue
			}
			if _, t, ok := strings.Cut(a, ":"); !ok || t == "" {
				return fmt.Errorf("invalid permitted CNAME %q", a)
			}
		}
	case "sendenv":
		for _, a := range args {
			if a == "" || strings.Contains(a, "=") {
				return fmt.Errorf("invalid environment name %q", a)
			}
		}
	case "ciphers", "macs", "kexalgorithms", "hostkeyalgorithms":
		return one() // the names are checked by resolver.validAlgorithms
	case "userknownhostsfile", "globalknownhostsfile", "preferredauthentications":
		return nil
	case "identityagent", "hostname", "user",
		"hostkeyalias", "bindaddress", "identityfile", "certificatefile":
		return one()
	}
	return nil
}

// keywordName gives a lowercase keyword OpenSSH's capitals, for messages.
func keywordName(kw string) string {
	if n, ok := keywordNames[kw]; ok {
		return n
	}
	return kw
}

// What socketpipe does with each ssh_config keyword of the OpenSSH releases it knows (and of
// Debian's and Fedora's GSSAPI key exchange patch); keywordSince says which are newer than 9.0.
const (
	kwHonoured = iota + 1 // resolved into Config, or checked for values only ssh can serve
	kwIgnored             // no effect on a non-interactive command over a socketpipe login
)

var keywords = map[string]int{
	"host": kwHonoured, "match": kwHonoured, "include": kwHonoured, "ignoreunknown": kwHonoured,

	"hostname": kwHonoured, "port": kwHonoured, "user": kwHonoured, "identityfile": kwHonoured,
	"identitiesonly": kwHonoured, "identityagent": kwHonoured, "certificatefile": kwHonoured,
	"userknownhostsfile": kwHonoured, "globalknownhostsfile": kwHonoured,
	"stricthostkeychecking": kwHonoured, "hostkeyalgorithms": kwHonoured, "hostkeyalias": kwHonoured,
	"checkhostip": kwHonoured, "hashknownhosts": kwHonoured, "batchmode": kwHonoured,
	"connecttimeout": kwHonoured, "connectionattempts": kwHonoured,
	"serveraliveinterval": kwHonoured, "serveralivecountmax": kwHonoured,
	"addressfamily": kwHonoured, "bindaddress": kwHonoured, "preferredauthentications": kwHonoured,
	"passwordauthentication": kwHonoured, "kbdinteractiveauthentication": kwHonoured,
	"pubkeyauthentication": kwHonoured, "ciphers": kwHonoured, "kexalgorithms": kwHonoured,
	"macs": kwHonoured, "setenv": kwHonoured, "sendenv": kwHonoured, "proxyjump": kwHonoured,
	"loglevel": kwHonoured,

	// Values checked in execSettings.
	"proxycommand": kwHonoured, "controlmaster": kwHonoured, "controlpath": kwHonoured,
	"localcommand": kwHonoured, "permitlocalcommand": kwHonoured, "knownhostscommand": kwHonoured,
	"pkcs11provider": kwHonoured, "securitykeyprovider": kwHonoured,
	"gssapiauthentication": kwHonoured, "gssapikeyexchange": kwHonoured,
	"hostbasedauthentication": kwHonoured,
	"remotecommand":           kwHonoured, "requesttty": kwHonoured, "sessiontype": kwHonoured,
	"forkafterauthentication": kwHonoured, "tunnel": kwHonoured, "bindinterface": kwHonoured,
	"verifyhostkeydns": kwHonoured, "nohostauthenticationforlocalhost": kwHonoured,
	"revokedhostkeys": kwHonoured,
	"localforward":    kwHonoured, "remoteforward": kwHonoured, "dynamicforward": kwHonoured,
	"refuseconnection": kwHonoured,

	// Canonicalization: done in-process where it needs no DNS (canonicalize).
	"canonicalizehostname": kwHonoured, "canonicaldomains": kwHonoured,
	"canonicalizefallbacklocal": kwHonoured, "canonicalizemaxdots": kwHonoured,
	"canonicalizepermittedcnames": kwHonoured,

	// Tag is what Match tagged compares.
	"tag": kwHonoured,

	// Agent and X11 forwarding stay off; the rest is interactive use, logging, tuning, or
	// only matters with something above that already sends the login to ssh.
	"forwardagent": kwIgnored, "forwardx11": kwIgnored, "forwardx11trusted": kwIgnored,
	"forwardx11timeout": kwIgnored, "xauthlocation": kwIgnored, "exitonforwardfailure": kwIgnored,
	"gatewayports": kwIgnored, "clearallforwardings": kwIgnored, "permitremoteopen": kwIgnored,
	"addkeystoagent": kwIgnored, "escapechar": kwIgnored, "compression": kwIgnored,
	"tcpkeepalive": kwIgnored, "numberofpasswordprompts": kwIgnored, "syslogfacility": kwIgnored,
	"logverbose": kwIgnored, "casignaturealgorithms": kwIgnored, "enablesshkeysign": kwIgnored,
	"rekeylimit": kwIgnored, "controlpersist": kwIgnored, "tunneldevice": kwIgnored,
	"visualhostkey": kwIgnored, "ipqos": kwIgnored, "stdinnull": kwIgnored,
	"proxyusefdpass": kwIgnored, "streamlocalbindmask": kwIgnored,
	"streamlocalbindunlink": kwIgnored, "fingerprinthash": kwIgnored, "updatehostkeys": kwIgnored,
	"hostbasedacceptedalgorithms": kwIgnored, "pubkeyacceptedalgorithms": kwIgnored,
	"requiredrsasize": kwIgnored, "enableescapecommandline": kwIgnored,
	"kbdinteractivedevices": kwIgnored, "gssapidelegatecredentials": kwIgnored,
	"gssapiclientidentity": kwIgnored, "gssapiserveridentity": kwIgnored,
	"gssapirenewalforcesrekey": kwIgnored, "gssapitrustdns": kwIgnored,
	"gssapikexalgorithms": kwIgnored,
	// Newer than 9.0 (keywordSince): interactive use, or no effect on a non-interactive
	// command whose session socketpipe keeps busy.
	"obscurekeystroketiming": kwIgnored, "channeltimeout": kwIgnored, "versionaddendum": kwIgnored,
	"warnweakcrypto": kwIgnored,

	// Deprecated or unsupported in every release in the table: ssh warns and goes on.
	"protocol": kwIgnored, "cipher": kwIgnored, "fallbacktorsh": kwIgnored,
	"globalknownhostsfile2": kwIgnored, "userknownhostsfile2": kwIgnored,
	"rhostsauthentication": kwIgnored, "useroaming": kwIgnored, "usersh": kwIgnored,
	"useprivilegedport": kwIgnored, "useblacklistedkeys": kwIgnored,
	"rsaauthentication": kwIgnored, "rhostsrsaauthentication": kwIgnored,
	"compressionlevel": kwIgnored, "kerberosauthentication": kwIgnored,
	"kerberostgtpassing": kwIgnored, "afstokenpassing": kwIgnored,
}

// OpenSSH's aliases of keywords.
var keywordAlias = map[string]string{
	"challengeresponseauthentication": "kbdinteractiveauthentication",
	"skeyauthentication":              "kbdinteractiveauthentication",
	"tisauthentication":               "kbdinteractiveauthentication",
	"dsaauthentication":               "pubkeyauthentication",
	"identityfile2":                   "identityfile",
	"keepalive":                       "tcpkeepalive",
	"smartcarddevice":                 "pkcs11provider",
	"pubkeyacceptedkeytypes":          "pubkeyacceptedalgorithms",
	"hostbasedkeytypes":               "hostbasedacceptedalgorithms",
}

var keywordNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"Host", "Match", "Include", "IgnoreUnknown", "HostName", "Port",
		"User", "IdentityFile", "IdentitiesOnly", "IdentityAgent", "CertificateFile",
		"UserKnownHostsFile", "GlobalKnownHostsFile", "StrictHostKeyChecking", "HostKeyAlgorithms",
		"HostKeyAlias", "CheckHostIP", "HashKnownHosts", "BatchMode", "ConnectTimeout",
		"ConnectionAttempts", "ServerAliveInterval", "ServerAliveCountMax", "AddressFamily",
		"BindAddress", "PreferredAuthentications", "PasswordAuthentication",
		"KbdInteractiveAuthentication", "PubkeyAuthentication", "Ciphers", "KexAlgorithms", "MACs",
		"SetEnv", "SendEnv", "ProxyJump", "LogLevel", "ProxyCommand", "ControlMaster",
		"ControlPath", "LocalCommand", "PermitLocalCommand", "KnownHostsCommand", "PKCS11Provider",
		"SecurityKeyProvider", "GSSAPIAuthentication", "GSSAPIKeyExchange",
		"HostbasedAuthentication", "CanonicalizeHostname", "RemoteCommand", "RequestTTY",
		"SessionType", "ForkAfterAuthentication", "Tunnel", "BindInterface", "VerifyHostKeyDNS",
		"NoHostAuthenticationForLocalhost", "RevokedHostKeys", "LocalForward", "RemoteForward",
		"DynamicForward", "RefuseConnection", "CanonicalDomains", "CanonicalizeFallbackLocal",
		"CanonicalizeMaxDots", "CanonicalizePermittedCNAMEs", "Tag"} {
		m[strings.ToLower(n)] = n
	}
	return m
}()

// canonicalHost is what ssh does to the destination after HostName: a name is lowercased
// (ASCII only, as C's tolower); an address keeps its case, and is rewritten in its canonical
// numeric form when that differs other than in case ("127.1" is "127.0.0.1", "0:0::1" is "::1").
func canonicalHost(host, family string) string {
	fast := strings.ContainsAny(host, "%:") || strings.Trim(host, "0123456789.") == ""
	canon, ok := numericAddr(host, family)
	if !fast && !ok {
		return asciiLower(host)
	}
	if ok && !strings.EqualFold(canon, host) {
		return canon
	}
	return host
}

// numericAddr parses host as getaddrinfo(AI_NUMERICHOST) does: IPv4 in inet_aton's forms
// (one to four parts, decimal, octal or hex) or IPv6 without a zone, in the address family.
func numericAddr(host, family string) (string, bool) {
	if host == "" || strings.Contains(host, "%") {
		return "", false
	}
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		if err != nil || family == "inet" {
			return "", false
		}
		return a.String(), true
	}
	if family == "inet6" {
		return "", false
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return "", false
	}
	var vals []uint64
	for _, p := range parts {
		base := 10
		switch {
		case strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X"):
			base, p = 16, p[2:]
			if p == "" {
				p = "0" // "0x" alone is 0 to inet_aton
			}
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil || p == "" || strings.ContainsAny(p, "+-_") {
			return "", false
		}
		vals = append(vals, v)
	}
	var addr uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 255 {
			return "", false
		}
		addr |= v << (24 - 8*i)
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return "", false
	}
	addr |= last
	return netip.AddrFrom4([4]byte{byte(addr >> 24), byte(addr >> 16), byte(addr >> 8), byte(addr)}).String(), true
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// validAlgorithms checks an algorithm list as OpenSSH's readconf does: a "-" list is not
// checked; otherwise every name must be supported, and only HostKeyAlgorithms may use
// wildcards (each matching some algorithm). Names every release supports pass without asking
// which release is local.
func (r *resolver) validAlgorithms(kw, spec string) error {
	if strings.HasPrefix(spec, "-") {
		return nil
	}
	list := spec
	if strings.HasPrefix(spec, "+") || strings.HasPrefix(spec, "^") {
		list = spec[1:]
	}
	common := commonLists[kw]
	wild := func(name string) bool { return kw == "hostkeyalgorithms" && strings.ContainsAny(name, "*?") }
	in := func(name string, all []string) bool {
		for _, a := range all {
			if a == name || wild(name) && MatchPattern(a, name) {
				return true
			}
		}
		return false
	}
	for _, name := range strings.Split(list, ",") {
		if common[name] || wild(name) && in(name, sortedKeys(common)) {
			continue
		}
		_, all := r.lists().forKeyword(kw)
		if !in(name, strings.Split(all, ",")) {
			return fmt.Errorf("unsupported algorithm %q in %q (OpenSSH %s)", name, spec, releaseName(r.release().v))
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
