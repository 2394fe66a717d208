package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultAlias is the Host alias of the client configuration written by [StartSSHD].
const DefaultAlias = "sp-test"

// sshdIDEnv is set through SetEnv in every session, so that stopping an SSHD finds the session
// processes that outlived their sshd parent.
const sshdIDEnv = "SOCKETPIPE_HARNESS_SSHD"

// sshdStartTimeout bounds waiting for sshd to listen; generous because CI machines are small
// and busy.
const sshdStartTimeout = 60 * time.Second

// SSHDOptions configures [StartSSHD]. The zero value is an sshd on 127.0.0.1, an ephemeral
// port, in the test's own network namespace.
type SSHDOptions struct {
	// ListenAddr is the IP address sshd listens on and the client configuration connects to;
	// "" means 127.0.0.1. It must be a literal IPv4 or IPv6 address.
	ListenAddr string
	// ExtraListenAddrs are more addresses sshd listens on, on the same port (reach them with
	// SSHArgsAt). known_hosts has an entry for each.
	ExtraListenAddrs []string
	// Port is the port to listen on; 0 picks a free one (retrying if another process takes it
	// before sshd binds it).
	Port int
	// Netns is the name of a network namespace (Host.Name) to run sshd in; "" for the test's own.
	Netns string
	// PathDirs come first in the sessions' PATH (SetEnv PATH=...), typically the directory
	// returned by BuildSocketpipe.
	PathDirs []string
	// KeepHome keeps root's real home directory as HOME in sessions. By default HOME is a clean
	// directory (SSHD.Home) that the test may fill, e.g. with a noisy .bashrc.
	KeepHome bool
	// Env is set in every session's environment with sshd_config's SetEnv (the client's
	// environment never reaches the session). Entries override PATH and HOME.
	Env map[string]string
	// ExtraConfig lines are added to sshd_config. sshd takes the first value it reads for a
	// keyword, so these lines go before the harness's own settings and win over them; lines from
	// the first "Match" on go to the end of the file. Use Env rather than SetEnv.
	ExtraConfig []string
	// AuthorizedKeys are more authorized_keys lines, after the line for the generated user key.
	AuthorizedKeys []string
	// Alias is the Host alias in ClientConfig; "" means DefaultAlias.
	Alias string
	// HostKeyTypes are the types (ssh-keygen -t) of the host keys sshd offers, in the order of
	// its HostKey lines; nil means ed25519 only. The first is SSHD.HostKey, the one known_hosts
	// holds; SSHD.HostKeys has them all.
	HostKeyTypes []string
}

// SSHD is a running OpenSSH server started by [StartSSHD]. It is stopped when the test ends.
type SSHD struct {
	Addr         string // host:port of ListenAddr, for net.Dial
	Host         string // ListenAddr
	Port         int
	Addrs        []string // every listen address (ListenAddr first, then ExtraListenAddrs)
	Netns        string   // the network namespace sshd runs in, "" for the test's own
	Dir          string   // the temporary directory holding keys, configuration and log
	Home         string   // HOME of the sessions
	UserKey      string   // path of the user's private key (ed25519, unencrypted)
	UserKeyPub   string   // the user's public key line
	HostKey      string   // the host's public key line, "ssh-ed25519 AAAA..."
	HostKeyFile  string   // path of the host's private key
	HostKeys     []string // every host key's public key line, in the order of HostKeyTypes
	KnownHosts   string   // known_hosts with the host key for every listen address and port
	ClientConfig string   // ssh_config: Host Alias with everything needed to log in
	Config       string   // path of sshd_config
	Alias        string   // the Host alias in ClientConfig
	LogFile      string   // sshd's standard error (-e), its log

	hostKeyFiles []string
	id           string
	cmd          *exec.Cmd
	exited       chan struct{}
	stopOnce     sync.Once
}

// StartSSHD starts /usr/sbin/sshd as root (-D -e, LogLevel VERBOSE) with a fresh ed25519 host
// key and user key, waits until it listens and answers with its banner, and stops it (and every
// session it started) when the test ends. The returned SSHD says how to reach it.
func StartSSHD(t testing.TB, opts SSHDOptions) *SSHD {
	t.Helper()
	Require(t, NeedRoot, NeedSSHD, NeedKeygen, NeedSSH)
	if opts.Netns != "" {
		Require(t, NeedIP)
	}
	s := &SSHD{
		Dir:   t.TempDir(),
		Netns: opts.Netns,
		Alias: opts.Alias,
		id:    randomHex(8),
	}
	if s.Alias == "" {
		s.Alias = DefaultAlias
	}
	s.Host = opts.ListenAddr
	if s.Host == "" {
		s.Host = "127.0.0.1"
	}
	s.Addrs = append([]string{s.Host}, opts.ExtraListenAddrs...)
	for i, a := range s.Addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			t.Fatalf("harness: sshd listen address %q is not an IP address", a)
		}
		s.Addrs[i] = ip.String() // the form sshd logs and ssh looks up in known_hosts
	}
	s.Host = s.Addrs[0]
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation directory
		t.Fatalf("harness: %v", err)
	}
	if err := s.makeKeys(opts); err != nil {
		t.Fatalf("harness: %v", err)
	}
	if opts.KeepHome {
		u, err := user.Current()
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		s.Home = u.HomeDir
	} else {
		s.Home = filepath.Join(s.Dir, "home")
		if err := os.Mkdir(s.Home, 0o755); err != nil {
			t.Fatalf("harness: %v", err)
		}
	}

	var lastErr error
	for attempt := 0; attempt < 8; attempt++ {
		port := opts.Port
		if port == 0 {
			p, err := freePort(s.Netns, s.Addrs)
			if err != nil {
				t.Fatalf("harness: %v", err)
			}
			port = p
		}
		err := s.start(opts, port)
		if err == nil {
			t.Cleanup(func() {
				s.Stop()
				if t.Failed() {
					t.Logf("sshd log (%s):\n%s", s.Config, s.Log())
				}
			})
			return s
		}
		lastErr = err
		if opts.Port != 0 || !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("harness: %v", lastErr)
	return nil
}

var errAddrInUse = errors.New("address already in use")

func (s *SSHD) makeKeys(opts SSHDOptions) error {
	types := opts.HostKeyTypes
	if len(types) == 0 {
		types = []string{"ed25519"}
	}
	for _, typ := range types {
		f := filepath.Join(s.Dir, "ssh_host_"+typ+"_key")
		pub, err := keygen(typ, "socketpipe-test-host", f)
		if err != nil {
			return err
		}
		s.hostKeyFiles = append(s.hostKeyFiles, f)
		s.HostKeys = append(s.HostKeys, pub)
	}
	s.HostKeyFile, s.HostKey = s.hostKeyFiles[0], s.HostKeys[0]
	s.UserKey = filepath.Join(s.Dir, "id_ed25519")
	pub, err := keygen("ed25519", "socketpipe-test-user", s.UserKey)
	if err != nil {
		return err
	}
	s.UserKeyPub = pub
	lines := append([]string{s.UserKeyPub}, opts.AuthorizedKeys...)
	return os.WriteFile(filepath.Join(s.Dir, "authorized_keys"), []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

// keygen makes an unencrypted key pair of type typ at path and returns the public key line.
func keygen(typ, comment, path string) (string, error) {
	out, err := exec.Command("ssh-keygen", "-q", "-t", typ, "-N", "", "-C", comment, "-f", path).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ssh-keygen -t %s: %v: %s", typ, err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(pub)), nil
}

// Authorize adds an authorized_keys line (a public key line, with options if any) for root;
// it counts from the next login on.
func (s *SSHD) Authorize(t testing.TB, line string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(s.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.TrimSpace(line) + "\n"); err != nil {
		t.Fatalf("harness: %v", err)
	}
}

// freePort finds a port that is free on every address, inside netns.
func freePort(netns string, addrs []string) (int, error) {
	for try := 0; try < 20; try++ {
		l, err := listenIn(netns, "tcp", net.JoinHostPort(addrs[0], "0"))
		if err != nil {
			return 0, fmt.Errorf("finding a free port on %s: %w", addrs[0], err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		free := true
		for _, a := range addrs[1:] {
			l2, err := listenIn(netns, "tcp", net.JoinHostPort(a, strconv.Itoa(port)))
			if err != nil {
				free = false
				break
			}
			l2.Close()
		}
		l.Close()
		if free {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free on all of %v", addrs)
}

// start writes the configuration for port and runs sshd until it is ready or has failed.
func (s *SSHD) start(opts SSHDOptions, port int) error {
	s.Port = port
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
	s.Config = filepath.Join(s.Dir, "sshd_config")
	s.KnownHosts = filepath.Join(s.Dir, "known_hosts")
	s.ClientConfig = filepath.Join(s.Dir, "ssh_config")
	cfg, err := s.serverConfig(opts)
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.Config, []byte(cfg), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(s.KnownHosts, []byte(s.knownHosts()), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(s.ClientConfig, []byte(s.clientConfig()), 0o600); err != nil {
		return err
	}

	argv := []string{SSHDPath, "-D", "-e", "-f", s.Config}
	if s.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", s.Netns}, argv...)
	}
	// sshd writes its log straight into a file rather than a pipe we copy from: whatever sshd
	// logged before a client saw its effect (an authentication, say) is then already readable.
	s.LogFile = filepath.Join(s.Dir, fmt.Sprintf("sshd-%d.log", port))
	logFile, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()

	cmd := exec.Command(argv[0], argv[1:]...)
	// A clean environment: nothing of the test process (a marker, say) must make sshd's own
	// processes look like part of a run. The id lets Stop find every process sshd started.
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", sshdIDEnv + "=" + s.id}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// If the test binary dies (a -timeout panic skips every Cleanup), sshd goes too.
	cmd.SysProcAttr = dieWithTest()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting sshd: %w", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		cmd.Wait()
		close(s.exited)
	}()

	if err := s.waitReady(); err != nil {
		s.kill()
		if strings.Contains(s.Log(), "Address already in use") {
			return fmt.Errorf("sshd on port %d: %w", port, errAddrInUse)
		}
		return fmt.Errorf("sshd (%s) did not start: %v\nsshd log:\n%s", s.Config, err, s.Log())
	}
	return nil
}

// waitReady waits for the real conditions: sshd logs that it listens on every address, and a
// connection to the first one gets an SSH banner.
func (s *SSHD) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), sshdStartTimeout)
	defer cancel()
	want := make([]string, len(s.Addrs))
	for i, a := range s.Addrs {
		want[i] = fmt.Sprintf("Server listening on %s port %d.", a, s.Port)
	}
	err := s.waitLog(ctx, s.exited, func(log string) bool {
		for _, w := range want {
			if !strings.Contains(log, w) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	c, err := dialIn(ctx, s.Netns, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("sshd logged that it listens, but: %w", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(sshdStartTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("no SSH banner from %s: %q, %v", s.Addr, line, err)
	}
	return nil
}

func (s *SSHD) serverConfig(opts SSHDOptions) (string, error) {
	env := map[string]string{
		"PATH":    strings.Join(append(append([]string(nil), opts.PathDirs...), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), ":"),
		sshdIDEnv: s.id,
	}
	if !opts.KeepHome {
		env["HOME"] = s.Home
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	var setenv []string
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "= \t\"\\\n") || strings.ContainsAny(v, "\"\\\n") {
			return "", fmt.Errorf("environment variable %q=%q cannot be written to sshd_config's SetEnv", k, v)
		}
		setenv = append(setenv, strconv.Quote(k+"="+v))
	}
	sort.Strings(setenv)

	var head, tail []string
	for i, l := range opts.ExtraConfig {
		if f := strings.Fields(l); len(f) > 0 && strings.EqualFold(f[0], "Match") {
			tail = opts.ExtraConfig[i:]
			break
		}
		head = append(head, l)
	}

	var b strings.Builder
	b.WriteString("# Written by the socketpipe test harness.\n")
	for _, l := range head {
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, "Port %d\n", s.Port)
	for _, a := range s.Addrs {
		fmt.Fprintf(&b, "ListenAddress %s\n", net.JoinHostPort(a, strconv.Itoa(s.Port)))
	}
	for _, f := range s.hostKeyFiles {
		fmt.Fprintf(&b, "HostKey %s\n", f)
	}
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", filepath.Join(s.Dir, "authorized_keys"))
	b.WriteString(`PidFile none
UsePAM no
PermitRootLogin yes
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel VERBOSE
PrintMotd no
PrintLastLog no
X11Forwarding no
UseDNS no
MaxStartups 200
MaxSessions 200
Subsystem sftp internal-sftp
`)
	if sshdVersionAtLeast(9, 8) {
		// Newer sshd blocks sources that misbehave; hostile-peer tests misbehave on purpose.
		b.WriteString("PerSourcePenalties no\n")
	}
	fmt.Fprintf(&b, "SetEnv %s\n", strings.Join(setenv, " "))
	for _, l := range tail {
		b.WriteString(l + "\n")
	}
	return b.String(), nil
}

// knownHostsPattern is how OpenSSH writes a host in known_hosts: bare for port 22, else [host]:port.
func knownHostsPattern(host string, port int) string {
	if port == 22 {
		return host
	}
	return "[" + host + "]:" + strconv.Itoa(port)
}

func (s *SSHD) knownHosts() string {
	var b strings.Builder
	for _, a := range s.Addrs {
		fmt.Fprintf(&b, "%s %s\n", knownHostsPattern(a, s.Port), s.HostKey)
	}
	return b.String()
}

func (s *SSHD) clientConfig() string {
	return fmt.Sprintf(`# Written by the socketpipe test harness.
Host %s
	HostName %s
	Port %d
	User root
	IdentityFile %s
	IdentitiesOnly yes
	IdentityAgent none
	UserKnownHostsFile %s
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	UpdateHostKeys no
	BatchMode yes
	ConnectTimeout 30
	ControlMaster no
	ControlPath none
	LogLevel ERROR
`, s.Alias, s.Host, s.Port, s.UserKey, s.KnownHosts)
}

// SSHArgs is the ssh command line that logs in to this sshd: {"ssh", "-F", ClientConfig, Alias}.
// Append the remote command's words.
func (s *SSHD) SSHArgs() []string {
	return []string{"ssh", "-F", s.ClientConfig, s.Alias}
}

// SSHArgsAt is SSHArgs connecting to another of the listen addresses (ExtraListenAddrs).
func (s *SSHD) SSHArgsAt(addr string) []string {
	return []string{"ssh", "-F", s.ClientConfig, "-o", "HostName=" + addr, s.Alias}
}

// Command returns an exec.Cmd running `ssh -F ClientConfig Alias remote...` in the test's own
// network namespace (for another host, use Host.Command with SSHArgs). ssh joins the remote words
// with spaces and the remote login shell parses them, as always with ssh.
func (s *SSHD) Command(ctx context.Context, remote ...string) *exec.Cmd {
	argv := append(s.SSHArgs(), remote...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// Run runs remote through ssh, fails the test if ssh fails, and returns its standard output.
func (s *SSHD) Run(t testing.TB, remote ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := s.Command(ctx, remote...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("harness: ssh %s %q: %v\nstderr: %s", s.Alias, remote, err, stderr.Bytes())
	}
	return string(out)
}

// Log returns what sshd has logged so far. It begins with the "Server listening" lines and the
// connection the harness made to see sshd's banner.
func (s *SSHD) Log() string {
	b, _ := os.ReadFile(s.LogFile)
	return string(b)
}

var acceptedRE = regexp.MustCompile(`(?m)^Accepted \S+ for \S+ from `)

// AuthCount is the number of successful user authentications sshd has logged
// ("Accepted publickey for root from ...").
func (s *SSHD) AuthCount() int { return len(acceptedRE.FindAllStringIndex(s.Log(), -1)) }

// WaitLog waits up to within for sshd's log to contain substr.
func (s *SSHD) WaitLog(substr string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return s.waitLog(ctx, nil, func(l string) bool { return strings.Contains(l, substr) })
}

// PID is the process id of the listening sshd.
func (s *SSHD) PID() int { return s.cmd.Process.Pid }

// SessionProcesses returns the processes sshd has started and that still run: its
// per-connection sshd processes and the sessions' commands (not the listener itself).
func (s *SSHD) SessionProcesses() []Process {
	var ps []Process
	for _, pid := range descendants(s.PID()) {
		ps = append(ps, Process{PID: pid, Cmdline: cmdline(pid)})
	}
	return ps
}

// Stop kills sshd and every process it started (sessions included), and waits for them. The
// test's cleanup calls it; calling it again does nothing.
func (s *SSHD) Stop() { s.stopOnce.Do(s.kill) }

func (s *SSHD) kill() {
	// Per-connection sshd processes leave the listener's process group (setsid) and overwrite
	// their environment with the process title, so they are found as the listener's
	// descendants; session processes reparented away from a dead sshd still carry the id that
	// SetEnv gave them.
	select {
	case <-s.exited:
	default:
		killTree(s.cmd.Process.Pid)
	}
	<-s.exited
	KillMarked(sshdIDEnv + "=" + s.id)
}

// waitLog polls sshd's log until ok(log) holds, ctx ends, or exited is closed.
func (s *SSHD) waitLog(ctx context.Context, exited <-chan struct{}, ok func(string) bool) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok(s.Log()) {
			return nil
		}
		select {
		case <-tick.C:
		case <-exited:
			if ok(s.Log()) {
				return nil
			}
			return errors.New("sshd exited")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var sshdVersion struct {
	once         sync.Once
	major, minor int
}

// sshdVersionAtLeast reports whether `sshd -V` says OpenSSH_major.minor or later.
func sshdVersionAtLeast(major, minor int) bool {
	sshdVersion.once.Do(func() {
		out, _ := exec.Command(SSHDPath, "-V").CombinedOutput()
		m := regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`).FindSubmatch(out)
		if m != nil {
			sshdVersion.major, _ = strconv.Atoi(string(m[1]))
			sshdVersion.minor, _ = strconv.Atoi(string(m[2]))
		}
	})
	return sshdVersion.major > major || sshdVersion.major == major && sshdVersion.minor >= minor
}
