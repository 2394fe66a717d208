package sshconfig

import "time"

// Invocation is an ssh command line taken apart: what the user typed after "ssh",
// before any configuration file is read.
type Invocation struct {
	Host          string      // the destination as typed, without user@ (an alias, a name or an address)
	User          string      // from user@host or -l; "" if not given
	Port          int         // from -p or ssh://host:port; 0 if not given
	ConfigFile    string      // -F; "" for the default files
	Identities    []string    // -i, in order
	Options       [][2]string // -o, in order, keyword lowercased, e.g. {"port", "2222"}
	AddressFamily string      // "inet" for -4, "inet6" for -6, "" if neither
	Verbose       int         // count of -v
	Quiet         bool        // -q
	Compression   bool        // -C (ignored with a note)
	Command       []string    // the remote command words after the host, if any
	Flags         []string    // other accepted no-op flags, as typed (-T, -n, -x, -a, -k)
}

// Config is the resolved configuration of one ssh login: the command line applied over
// ssh_config with OpenSSH's semantics (first value wins, command line first). Field values are
// what `ssh -G` would print for the same keywords.
type Config struct {
	Host                         string // the destination as typed (what Host patterns match)
	HostName                     string
	Port                         int
	User                         string
	IdentityFiles                []string // expanded: ~ and %d %u %h %r %p %l %%
	IdentitiesOnly               bool
	IdentityAgent                string // "" means SSH_AUTH_SOCK; "none" disables the agent
	CertificateFiles             []string
	UserKnownHostsFiles          []string
	GlobalKnownHostsFiles        []string
	StrictHostKeyChecking        string   // "yes", "no", "accept-new" or "ask"
	HostKeyAlgorithms            []string // nil: the defaults (ordered from known_hosts)
	HostKeyAlias                 string
	CheckHostIP                  bool
	HashKnownHosts               bool
	BatchMode                    bool
	ConnectTimeout               time.Duration // 0: none
	ConnectionAttempts           int
	ServerAliveInterval          time.Duration // 0: off
	ServerAliveCountMax          int
	AddressFamily                string // "any", "inet" or "inet6"
	BindAddress                  string
	PreferredAuthentications     []string
	PasswordAuthentication       bool
	KbdInteractiveAuthentication bool
	PubkeyAuthentication         bool
	Ciphers                      []string // nil: the defaults
	KexAlgorithms                []string // nil: the defaults
	MACs                         []string // nil: the defaults
	SetEnv                       []string // NAME=value
	SendEnv                      []string // name patterns
	ProxyJump                    string   // "" or "none": direct; otherwise [user@]host[:port],...
	LogLevel                     string   // "QUIET", "INFO", "VERBOSE", "DEBUG", "DEBUG2", "DEBUG3"

	// ExecReason is non-empty when this login cannot be honoured in-process and the ssh binary
	// must be executed instead (ProxyCommand, Match exec without Env.MatchExec,
	// ControlMaster/ControlPath reuse, LocalCommand, KnownHostsCommand, PKCS11Provider,
	// SecurityKeyProvider, GSSAPI, canonicalization through DNS, an unknown option, a config
	// file the parser cannot read). It says why, for -v, naming file and line where there is one.
	ExecReason string

	// Notes are what a -v run should say about how the configuration was read: the OpenSSH
	// release followed and where it came from (when something depended on it), and keywords
	// accepted without effect in-process (Apple's UseKeychain).
	Notes []string

	rel        *ossh // the release resolved for; nil until something needs it
	osshEnv    Env   // to find the release later (WriteG)
	defaultIDs bool  // IdentityFiles are the defaults, listed without asking the release
}
