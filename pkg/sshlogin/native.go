package sshlogin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketpipe/socketpipe/internal/platform"
	"github.com/socketpipe/socketpipe/pkg/sshconfig"
	"golang.org/x/crypto/ssh"
)

// hop is one SSH server on the way: the target, reached through via (nil: dialled directly).
type hop struct {
	cfg *sshconfig.Config
	via *hop
}

// maxJumps bounds ProxyJump chains (and loops through configuration files).
const maxJumps = 8

// resolveChain resolves the ProxyJump hops of cfg, each with its own configuration, as
// OpenSSH does with "-J a,b": the target is reached through b, and b through a; a's own
// ProxyJump, if it has one, applies. It returns a reason to execute ssh instead when some
// hop cannot be honoured in-process.
func resolveChain(inv *sshconfig.Invocation, cfg *sshconfig.Config, env sshconfig.Env, depth int) (*hop, string, error) {
	if cfg.ExecReason != "" {
		if depth > 0 {
			return nil, fmt.Sprintf("ProxyJump host %s: %s", cfg.Host, cfg.ExecReason), nil
		}
		return nil, cfg.ExecReason, nil
	}
	if reason := algorithmsReason(cfg); reason != "" {
		if depth > 0 {
			return nil, fmt.Sprintf("ProxyJump host %s: %s", cfg.Host, reason), nil
		}
		return nil, reason, nil
	}
	h := &hop{cfg: cfg}
	jump := cfg.ProxyJump
	if jump == "" || jump == "none" {
		return h, "", nil
	}
	if depth >= maxJumps {
		return nil, "", fmt.Errorf("more than %d ProxyJump hops (a loop in the configuration?)", maxJumps)
	}
	jumps, err := sshconfig.ParseProxyJump(jump)
	if err != nil {
		return nil, "", fmt.Errorf("ProxyJump %q: %w", jump, err)
	}
	hops := strings.Split(jump, ",") // as ParseProxyJump splits it
	last := hops[len(hops)-1]
	j := jumps[len(jumps)-1]
	hinv := &sshconfig.Invocation{Host: j.Host, User: j.User, Port: j.Port,
		ConfigFile: inv.ConfigFile, Verbose: inv.Verbose, Quiet: inv.Quiet}
	if len(hops) > 1 {
		hinv.Options = append(hinv.Options, [2]string{"proxyjump", strings.Join(hops[:len(hops)-1], ",")})
	}
	hcfg, err := sshconfig.Resolve(hinv, env)
	if err != nil {
		return nil, "", fmt.Errorf("ProxyJump host %s: %w", last, err)
	}
	if len(hops) == 1 && hcfg.ProxyJump == jump {
		hcfg.ProxyJump = "" // a Host * ProxyJump would otherwise jump to itself
	}
	via, reason, err := resolveChain(hinv, hcfg, env, depth+1)
	if err != nil || reason != "" {
		return nil, reason, err
	}
	h.via = via
	return h, "", nil
}

// algorithmsReason is a reason to execute ssh when a configured algorithm list names none
// that x/crypto implements: in-process, the handshake could only fail.
func algorithmsReason(cfg *sshconfig.Config) string {
	sup, insec := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	for _, l := range []struct {
		name      string
		conf, imp []string
	}{
		{"Ciphers", cfg.Ciphers, slices.Concat(sup.Ciphers, insec.Ciphers)},
		{"KexAlgorithms", cfg.KexAlgorithms, slices.Concat(sup.KeyExchanges, insec.KeyExchanges)},
		{"MACs", cfg.MACs, slices.Concat(sup.MACs, insec.MACs)},
		{"HostKeyAlgorithms", cfg.HostKeyAlgorithms, slices.Concat(sup.HostKeys, insec.HostKeys)},
	} {
		list := configured(l.conf, l.imp)
		if len(l.conf) > 0 && !slices.ContainsFunc(list, func(a string) bool { return slices.Contains(l.imp, a) }) {
			return fmt.Sprintf("%s %s: none of them is implemented in-process", l.name, strings.Join(list, ","))
		}
	}
	return ""
}

// implemented keeps the algorithms x/crypto implements, so that a list of only foreign ones
// is not taken as "the defaults".
func implemented(list, imp []string) []string {
	return slices.DeleteFunc(list, func(a string) bool { return !slices.Contains(imp, a) })
}

// nativeRun is a remote command running on an in-process SSH connection.
type nativeRun struct {
	client *ssh.Client
	hops   []*ssh.Client // jump hosts, innermost last
	local  net.Addr
	remote net.Addr
	ka     *keepalive

	ch       ssh.Channel
	execDone chan struct{}  // the answer to the exec request came
	execErr  error          // the server refused the exec request
	copies   sync.WaitGroup // stdin, stdout and stderr copies
	exited   chan struct{}  // closed when the channel's requests end
	status   *ExitError     // nil: exit status 0 or none
	gotExit  bool
	connDone chan struct{}
	connErr  error
	hostKey  ssh.PublicKey // the target's
	userKey  ssh.PublicKey // the key the target accepted; nil for another method

	// For more sessions on the connection (Cmd.Session).
	cfg    *sshconfig.Config
	env    sshconfig.Env
	d      *debug
	shared bool // a further session: close ends only the channel
}

// startNative logs in through the chain and starts the remote command.
func (c *Cmd) startNative(ctx context.Context, inv *sshconfig.Invocation, chain *hop, env sshconfig.Env) (*nativeRun, error) {
	t0 := time.Now()
	d := c.newDebug(chain.cfg)
	for _, id := range inv.Identities {
		// Resolve drops the -i files it cannot find; ssh warns about them.
		if _, err := os.Stat(env.ExpandTilde(id)); err != nil {
			d.warnf("Warning: Identity file %s not accessible: %v.", id, errors.Unwrap(err))
		}
	}
	if inv.Compression {
		c.logf("ssh -C: compression is not available in-process; ignored")
		d.printf("Compression (-C) is not available in-process; ignored")
	}
	n := &nativeRun{cfg: chain.cfg, env: env, d: d}
	client, conn, err := c.connect(ctx, chain, env, d, n)
	if err != nil {
		n.closeHops()
		return nil, err
	}
	n.client = client
	if chain.via == nil {
		n.local, n.remote = conn.LocalAddr(), conn.RemoteAddr()
	}
	n.connDone = make(chan struct{})
	go func() {
		n.connErr = client.Wait()
		close(n.connDone)
	}()
	c.mu.Lock()
	c.endpoint = &Endpoint{User: chain.cfg.User, HostName: chain.cfg.HostName, Port: chain.cfg.Port, HostKey: n.hostKey, UserKey: n.userKey}
	c.mu.Unlock()
	command := c.Command
	if c.NativeCommand != nil {
		if command, err = c.NativeCommand(); err != nil {
			n.close()
			return nil, err
		}
	}
	if len(inv.Command) > 0 {
		command = strings.Join(append(slices.Clone(inv.Command), command), " ")
	}
	if err := n.startSession(ctx, c, chain.cfg, env, command, d); err != nil {
		n.close()
		return nil, err
	}
	c.logf("remote command started, %v after the start of the login", time.Since(t0).Round(time.Microsecond))
	return n, nil
}

// connect dials h (through its jump hosts) and logs in.
func (c *Cmd) connect(ctx context.Context, h *hop, env sshconfig.Env, d *debug, n *nativeRun) (*ssh.Client, net.Conn, error) {
	cfg := h.cfg
	addr := net.JoinHostPort(cfg.HostName, strconv.Itoa(cfg.Port))
	var conn net.Conn
	var err error
	t0 := time.Now()
	if h.via != nil {
		jc, _, err := c.connect(ctx, h.via, env, d, n)
		if err != nil {
			return nil, nil, err
		}
		n.hops = append(n.hops, jc)
		d.printf("Connecting to %s [%s] port %d via %s.", cfg.Host, cfg.HostName, cfg.Port, h.via.cfg.Host)
		conn, err = jc.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("connect to %s through %s: %w", addr, h.via.cfg.Host, err)
		}
	} else {
		d.printf("Connecting to %s [%s] port %d.", cfg.Host, cfg.HostName, cfg.Port)
		conn, err = dial(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
	}
	d.printf("Connection established.")
	if h.via != nil {
		c.logf("connected to %s (%s) through %s in %v", cfg.Host, addr, h.via.cfg.Host, time.Since(t0).Round(time.Microsecond))
	} else {
		c.logf("connected to %s (%s) in %v", cfg.Host, conn.RemoteAddr(), time.Since(t0).Round(time.Microsecond))
	}

	var ka *keepalive
	if cfg.ServerAliveInterval > 0 {
		ka = newKeepalive(conn, cfg)
		conn = ka.conn
	}
	t1 := time.Now()
	client, hs, err := c.handshake(ctx, conn, cfg, env, d, h.via != nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	n.hostKey, n.userKey = hs.hostKey, hs.userKey // the target's: it is connected last
	c.logf("logged in to %s in %v", cfg.Host, time.Since(t1).Round(time.Microsecond))
	if ka != nil {
		ka.start(client, d)
		n.ka = ka // the target's, set last
	}
	return client, conn, nil
}

// dial makes the TCP connection as ssh would: AddressFamily, BindAddress, ConnectTimeout
// per attempt and ConnectionAttempts, one second apart.
func dial(ctx context.Context, cfg *sshconfig.Config) (net.Conn, error) {
	network := "tcp"
	switch cfg.AddressFamily {
	case "inet":
		network = "tcp4"
	case "inet6":
		network = "tcp6"
	}
	dl := net.Dialer{Timeout: cfg.ConnectTimeout}
	if cfg.BindAddress != "" {
		ip := net.ParseIP(cfg.BindAddress)
		if ip == nil {
			a, err := net.DefaultResolver.LookupIPAddr(ctx, cfg.BindAddress)
			if err != nil || len(a) == 0 {
				return nil, fmt.Errorf("BindAddress %s: %w", cfg.BindAddress, err)
			}
			ip = a[0].IP
		}
		dl.LocalAddr = &net.TCPAddr{IP: ip}
	}
	addr := net.JoinHostPort(cfg.HostName, strconv.Itoa(cfg.Port))
	attempts := max(cfg.ConnectionAttempts, 1)
	var err error
	for i := range attempts {
		var conn net.Conn
		conn, err = dl.DialContext(ctx, network, addr)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil || i == attempts-1 {
			break
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, context.Cause(ctx))
	}
	return nil, fmt.Errorf("connect to %s: %w", addr, err)
}

// handshake runs the SSH key exchange and authentication on conn, giving up when ctx ends.
func (c *Cmd) handshake(ctx context.Context, conn net.Conn, cfg *sshconfig.Config, env sshconfig.Env, d *debug, viaProxy bool) (*ssh.Client, *handshakeState, error) {
	batch := c.BatchMode || cfg.BatchMode
	p := &prompter{ctx: ctx, env: env, batch: batch, stderr: c.Stderr}
	hs := &handshakeState{viaProxy: viaProxy}
	hk, algos, err := c.hostKeyCheck(cfg, p, d, hs)
	if err != nil {
		return nil, nil, err
	}
	auth := newAuthState(c, cfg, env, p, d, hs)
	defer auth.done()
	cc := &ssh.ClientConfig{
		User:              cfg.User,
		HostKeyCallback:   hk,
		HostKeyAlgorithms: algos,
		AuthCallback:      auth.pick,
		ClientVersion:     "SSH-2.0-socketpipe",
		BannerCallback: func(msg string) error {
			if !d.quiet && c.Stderr != nil {
				io.WriteString(c.Stderr, serverText(msg))
			}
			return nil
		},
	}
	cc.Ciphers = configured(cfg.Ciphers, defaultCiphers())
	cc.KeyExchanges = configured(cfg.KexAlgorithms, ssh.SupportedAlgorithms().KeyExchanges)
	cc.MACs = configured(cfg.MACs, ssh.SupportedAlgorithms().MACs)

	// The handshake runs apart, so that an end of ctx returns at once even while a prompt
	// or an agent holds the authentication up.
	type result struct {
		sc    ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
		err   error
	}
	done := make(chan result, 1)
	go func() {
		sc, chans, reqs, err := ssh.NewClientConn(conn, net.JoinHostPort(cfg.HostName, strconv.Itoa(cfg.Port)), cc)
		done <- result{sc, chans, reqs, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		conn.Close()
		p.abandon()
		go func() {
			if r := <-done; r.err == nil {
				r.sc.Close()
			}
		}()
		return nil, nil, fmt.Errorf("login to %s: %w", cfg.Host, context.Cause(ctx))
	}
	sc, chans, reqs, err := r.sc, r.chans, r.reqs, r.err
	if err != nil {
		return nil, nil, auth.wrap(err)
	}
	d.printf("Authenticated to %s ([%s]:%d) using %q.", cfg.Host, cfg.HostName, cfg.Port, auth.used)
	c.logf("authenticated as %s with %s", cfg.User, auth.usedDesc())
	if auth.used == "publickey" && auth.usedKey != nil {
		hs.userKey = auth.usedKey.pub
	}
	return ssh.NewClient(sc, chans, reqs), hs, nil
}

// defaultCiphers prefers AES-GCM when the CPU has AES instructions (the relay through SSH
// moves bulk data on this connection) and ChaCha20-Poly1305 otherwise.
func defaultCiphers() []string {
	gcm := []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM}
	chacha := []string{ssh.CipherChaCha20Poly1305}
	ctr := []string{ssh.CipherAES128CTR, ssh.CipherAES192CTR, ssh.CipherAES256CTR}
	if platform.HasAESGCM() {
		return slices.Concat(gcm, chacha, ctr)
	}
	return slices.Concat(chacha, gcm, ctr)
}

// configured is an algorithm list from the configuration (Resolve has applied its +, - and ^
// to OpenSSH's defaults), or defaults when it names none.
func configured(list, defaults []string) []string {
	if len(list) == 0 {
		return slices.Clone(defaults)
	}
	return list
}

// startSession opens a session channel, sends the environment without waiting for replies
// (as OpenSSH does), and starts the command.
func (n *nativeRun) startSession(ctx context.Context, c *Cmd, cfg *sshconfig.Config, env sshconfig.Env, command string, d *debug) error {
	ch, reqs, err := n.client.OpenChannel("session", nil)
	if err != nil {
		return fmt.Errorf("open session on %s: %w", cfg.Host, err)
	}
	n.ch = ch
	for _, kv := range sessionEnv(cfg, env) {
		d.printf("Sending env %s = %s", kv[0], kv[1])
		msg := ssh.Marshal(struct{ Name, Value string }{kv[0], kv[1]})
		if _, err := ch.SendRequest("env", false, msg); err != nil {
			return fmt.Errorf("session on %s: %w", cfg.Host, err)
		}
	}
	n.exited = make(chan struct{})
	go n.handleRequests(reqs)

	// As OpenSSH does, do not wait for the answer to exec before sending input: that
	// saves a round trip. A refusal closes the channel and Wait reports it.
	req, what := "exec", "the remote command"
	if c.Subsystem {
		req, what = "subsystem", "subsystem "+command
		d.printf("Sending subsystem: %s", command)
	} else {
		d.printf("Sending command: %s", command)
	}
	n.execDone = make(chan struct{})
	go func() {
		defer close(n.execDone)
		ok, err := ch.SendRequest(req, true, ssh.Marshal(struct{ Command string }{command}))
		if err == nil && !ok {
			n.execErr = &RefusedError{Host: cfg.Host, What: what}
			d.printf("%s request failed on channel 0", req)
			ch.Close()
		}
	}()

	// Standard input.
	switch {
	case c.stdinPipe != nil:
		c.stdinPipe.set(channelWriter{ch})
	case c.Stdin != nil:
		go func() {
			io.Copy(ch, c.Stdin)
			ch.CloseWrite()
		}()
	default:
		ch.CloseWrite()
	}
	// Standard output and error.
	switch {
	case c.stdoutPipe != nil:
		c.stdoutPipe.set(ch)
	default:
		n.copy(c.Stdout, ch)
	}
	stderr := c.Stderr
	if c.RemoteStderr != nil {
		stderr = c.RemoteStderr
	}
	n.copy(stderr, ch.Stderr())
	return nil
}

func (n *nativeRun) copy(w io.Writer, r io.Reader) {
	if w == nil {
		w = io.Discard
	}
	n.copies.Add(1)
	go func() {
		defer n.copies.Done()
		io.Copy(w, r)
	}()
}

// channelWriter closes only the write half of the channel: end of file to the remote.
type channelWriter struct{ ch ssh.Channel }

func (w channelWriter) Write(p []byte) (int, error) { return w.ch.Write(p) }
func (w channelWriter) Close() error                { return w.ch.CloseWrite() }

// signalNumbers are the signals RFC 4254 names, for 128+n statuses.
var signalNumbers = map[string]int{
	"ABRT": 6, "ALRM": 14, "FPE": 8, "HUP": 1, "ILL": 4, "INT": 2, "KILL": 9,
	"PIPE": 13, "QUIT": 3, "SEGV": 11, "TERM": 15, "USR1": 10, "USR2": 12,
}

// handleRequests collects the exit status or signal from the session's requests.
func (n *nativeRun) handleRequests(reqs <-chan *ssh.Request) {
	defer close(n.exited)
	for r := range reqs {
		switch r.Type {
		case "exit-status":
			var m struct{ Status uint32 }
			if ssh.Unmarshal(r.Payload, &m) == nil {
				n.gotExit = true
				if m.Status != 0 {
					n.status = &ExitError{Status: int(m.Status)}
				}
			}
		case "exit-signal":
			var m struct {
				Signal     string
				CoreDumped bool
				Error      string
				Lang       string
			}
			if ssh.Unmarshal(r.Payload, &m) == nil {
				n.gotExit = true
				st := 128
				if num, ok := signalNumbers[m.Signal]; ok {
					st += num
				}
				n.status = &ExitError{Status: st, Signal: m.Signal, Msg: m.Error}
			}
		}
		if r.WantReply {
			r.Reply(false, nil)
		}
	}
}

func (n *nativeRun) wait() error {
	<-n.exited
	n.copies.Wait()
	<-n.execDone // the channel has ended, so the exec request has its answer or failed
	if n.execErr != nil {
		return n.execErr
	}
	if n.gotExit {
		if n.status != nil {
			return n.status
		}
		return nil
	}
	if n.ka != nil {
		if err := n.ka.err(); err != nil {
			return err
		}
	}
	// The channel ended without an exit status: either the connection died or the server
	// closed the channel. The connection's end is reported just after its channels end.
	select {
	case <-n.connDone:
		if n.ka != nil {
			if err := n.ka.err(); err != nil {
				return err
			}
		}
		return fmt.Errorf("connection lost: %w", connErr(n.connErr))
	case <-time.After(100 * time.Millisecond):
	}
	return fmt.Errorf("remote command ended without an exit status: %w", &ssh.ExitMissingError{})
}

func connErr(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}

func (n *nativeRun) close() error {
	if n.shared {
		if n.ch == nil {
			return nil
		}
		return n.ch.Close()
	}
	var err error
	if n.client != nil {
		err = n.client.Close()
	}
	n.closeHops()
	return err
}

func (n *nativeRun) closeHops() {
	for i := len(n.hops) - 1; i >= 0; i-- {
		n.hops[i].Close()
	}
}

// sessionEnv is SetEnv, then the variables SendEnv selects from the local environment.
func sessionEnv(cfg *sshconfig.Config, env sshconfig.Env) [][2]string {
	var out [][2]string
	for _, kv := range cfg.SetEnv {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out = append(out, [2]string{k, v})
		}
	}
	if len(cfg.SendEnv) == 0 {
		return out
	}
	for _, kv := range environ(env) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		send := slices.ContainsFunc(cfg.SendEnv, func(p string) bool { return sshconfig.MatchPattern(k, p) })
		if send && !slices.ContainsFunc(out, func(e [2]string) bool { return e[0] == k }) {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

// keepalive sends keepalive@openssh.com requests when the server has been silent for
// ServerAliveInterval, and closes the connection when ServerAliveCountMax of them in a row
// find it still silent, so that a dead peer is noticed while data flows.
type keepalive struct {
	conn     *activityConn
	interval time.Duration
	max      int
	stopped  chan struct{}
	once     sync.Once
	failed   atomic.Pointer[error]
}

// activityConn records when data last arrived.
type activityConn struct {
	net.Conn
	last atomic.Int64
}

func (a *activityConn) Read(p []byte) (int, error) {
	n, err := a.Conn.Read(p)
	if n > 0 {
		a.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func newKeepalive(conn net.Conn, cfg *sshconfig.Config) *keepalive {
	ac := &activityConn{Conn: conn}
	ac.last.Store(time.Now().UnixNano())
	return &keepalive{conn: ac, interval: cfg.ServerAliveInterval, max: max(cfg.ServerAliveCountMax, 1), stopped: make(chan struct{})}
}

func (k *keepalive) start(client *ssh.Client, d *debug) {
	go func() {
		client.Wait()
		k.once.Do(func() { close(k.stopped) })
	}()
	go func() {
		t := time.NewTicker(k.interval)
		defer t.Stop()
		missed := 0
		checked := time.Now().UnixNano()
		for {
			select {
			case <-k.stopped:
				return
			case <-t.C:
			}
			now, seen := time.Now().UnixNano(), k.conn.last.Load()
			if seen > checked {
				missed = 0 // the server spoke since the last tick
			}
			checked = now
			if time.Duration(now-seen) < k.interval {
				continue
			}
			missed++
			if missed > k.max {
				err := fmt.Errorf("timeout, server %s not responding (%d keepalives unanswered, ServerAliveInterval %v)",
					k.conn.RemoteAddr(), k.max, k.interval)
				k.failed.Store(&err)
				d.printf("Timeout, server %s not responding.", k.conn.RemoteAddr())
				k.conn.Close()
				return
			}
			go client.SendRequest("keepalive@openssh.com", true, nil)
		}
	}()
}

func (k *keepalive) err() error {
	if p := k.failed.Load(); p != nil {
		return *p
	}
	return nil
}
