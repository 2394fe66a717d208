package plumb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/internal/seal"
	"github.com/socketpipe/socketpipe/internal/version"
	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
	"github.com/socketpipe/socketpipe/pkg/sshchan"
)

// Client is the local half of a run: it speaks to the remote half over the control channel,
// makes the data connection and runs the local commands on it.
type Client struct {
	Input  []string // local input generation command; nil: see StdinToRemote
	Remote []string // remote command, run verbatim with execvp
	Output []string // local output processing command; nil: the data goes to Stdout
	Shell  bool     // run Remote[0] through the remote user's shell (ssh's semantics)

	// StdinToRemote sends Stdin to the remote command when there is no Input; otherwise the
	// remote command reads end of file at once.
	StdinToRemote bool
	Stdin         *os.File // socketpipe's own standard input, also the input command's
	Stdout        *os.File // socketpipe's own standard output: the data when there is no Output
	Stderr        *os.File // the local commands' standard error

	Mode    string               // rendezvous mode; "" is auto
	Host    string               // -h: the address the remote half dials back
	Timeout time.Duration        // wait for the data connection; 0 forever
	Ports   rendezvous.PortRange // restrict listening ports
	Encrypt bool                 // -e
	Cipher  string               // -e cipher; "" chooses
	// Streams is how many data connections the data is striped over (--streams, 1 to
	// rendezvous.MaxStreams); 0 chooses by the path (chooseStreams): one, zero-copy, unless
	// one stream's window cannot fill the path at its round trip.
	Streams int

	// What the login knows about its connection; nil when unknown.
	LocalAddr  net.Addr // this host's end of the login connection
	RemoteAddr net.Addr // the address the login connection reached
	// LoginHost, when RemoteAddr is unknown (an executed ssh, ProxyJump), is the host the
	// login reaches (ssh_config's HostName): the client dials the remote half only at an
	// address it or Host resolves to. "" (another login command): no reverse dial.
	LoginHost string
	// Native is true when the login is an in-process SSH connection, whose session is a clean
	// 8-bit channel that auto mode may fall back to.
	Native bool
	// Forward, when set, opens direct-tcpip channels of the login's SSH connection (a native
	// login's *ssh.Client): ssh mode then carries the data over several of them (sshlink.go)
	// rather than in frames on the login's session.
	Forward sshchan.Dialer

	// Liveness is how soon a dead link or peer ends the run (keepalive on the data socket,
	// pings on the control channel); zero fields are rendezvous's defaults.
	Liveness rendezvous.Liveness

	// Logf receives the -v story; nil is silent.
	Logf func(format string, args ...any)

	// Watch, if set, is called when the transfer starts with a Meter of its progress, valid
	// (and safe to read from another goroutine) until Run returns.
	Watch func(*Meter)
}

// Report is what a run did: the data connection and how each stage ended.
type Report struct {
	Mode          string   // back, reverse or ssh ("" if no data connection was made)
	Why           string   // why that mode
	Stages        []*Stage // input, remote, output in order (nil entries for absent stages)
	ToRemote      int64    // data bytes sent to the remote command (kernel counts in plain mode)
	FromRemote    int64    // data bytes received from the remote command
	Uncounted     bool     // plain mode on a system whose TCP byte counts cannot be read: ToRemote and FromRemote are unknown (0)
	Encrypted     bool     // -e encrypted the data connection
	Streams       int      // how many data connections the data was striped over (0 in ssh mode)
	Channels      int      // ssh mode: how many SSH channels carried the data (0: frames on the login's session)
	TCP           *TCPInfo // the data connection at its end; nil unless plain TCP
	Setup         time.Duration
	Transfer      time.Duration
	RemoteVersion string // the remote half's version, made printable
}

// Status is the run's exit status by pipefail, and the stage that decided it (nil for 0).
func (r *Report) Status() (int, *Stage) { return Pipefail(r.Stages) }

// StageError describes the failed stage that decides a run's status.
func (r *Report) StageError() error {
	if _, s := r.Status(); s != nil {
		return errors.New(s.describe())
	}
	return nil
}

// SIGPIPEGrace is how long the remote command's stream may take to end after the local output
// went away, before the remote command is given SIGPIPE (see Client.Run).
const SIGPIPEGrace = time.Second

// ErrRemoteVanished is returned when the remote half ended without reporting the status of the
// remote command: the stream may be incomplete.
var ErrRemoteVanished = errors.New("the remote half ended without reporting the remote command's status")

// ErrLostContact is returned when the other half stopped answering pings while the remote
// command ran: the link or the remote host is down, and the stream may be incomplete.
var ErrLostContact = errors.New("lost contact with the remote half")

func (c *Client) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// Run runs the pipeline. r and w are the control channel: the remote half's standard output
// and standard input. The Report is never nil. A non-nil error is socketpipe's own failure
// (login, protocol, data connection); otherwise Report.Status gives the exit status.
func (c *Client) Run(ctx context.Context, r io.Reader, w io.Writer) (*Report, error) {
	start := time.Now()
	rep := &Report{Stages: make([]*Stage, 3)}
	if c.Input != nil {
		rep.Stages[0] = &Stage{Name: StageInput, Argv: c.Input}
	}
	rep.Stages[1] = &Stage{Name: StageRemote, Argv: c.Remote}
	if c.Output != nil {
		rep.Stages[2] = &Stage{Name: StageOutput, Argv: c.Output}
	}
	mode := c.Mode
	if mode == "" {
		mode = rendezvous.ModeAuto
	}
	if c.Streams < 0 || c.Streams > rendezvous.MaxStreams {
		return rep, fmt.Errorf("--streams %d: want 1 to %d", c.Streams, rendezvous.MaxStreams)
	}
	if c.Streams > 1 && mode == rendezvous.ModeSSH {
		return rep, errors.New("--streams stripes a direct data connection: ssh mode (-m ssh) carries the data over the login's SSH connection")
	}
	offer := 0
	if mode != rendezvous.ModeSSH {
		offer = rendezvous.MaxStreams
	}
	cipherName := ""
	if c.Encrypt && mode != rendezvous.ModeSSH {
		var err error
		if cipherName, err = seal.ChooseCipher(c.Cipher); err != nil {
			return rep, err
		}
	}
	secret, err := rendezvous.NewSecret()
	if err != nil {
		return rep, err
	}
	rc := &rendezvous.Client{Mode: mode, Secret: secret, Ports: c.Ports, Timeout: c.Timeout,
		SSHFallback: c.Native, Logf: c.Logf}
	if c.Host != "" {
		rc.BackHost = c.Host
		rc.BackIP = bindableIP(ctx, c.Host)
	}
	if rc.BackIP == nil {
		rc.BackIP = addrIP(c.LocalAddr)
	}
	rc.ReverseIP = addrIP(c.RemoteAddr)
	for _, h := range []string{c.LoginHost, c.Host} {
		if rc.ReverseIP == nil && h != "" {
			rc.ReverseHosts = append(rc.ReverseHosts, h)
		}
	}
	var backAddr string
	if rc.BackIP != nil {
		// Known before the login answers (native, or -h): tell the remote half at once.
		if backAddr, err = rc.ListenBack(); err != nil {
			return rep, err
		}
	}
	defer func() {
		if rc.Listener != nil {
			rc.Listener.Close()
		}
	}()

	ctl := wire.NewConn(r, w)
	req := &wire.Message{
		Type: wire.MsgRequest, Version: version.String(), Protocol: wire.Protocol,
		Argv: c.Remote, Shell: c.Shell, NoDelay: c.relaysStdio(), Mode: mode, Secret: secret,
		TimeoutMS: c.Timeout.Milliseconds(), Encrypt: c.Encrypt && mode != rendezvous.ModeSSH,
		Cipher: cipherName, Addr: backAddr,
		PortLow: c.Ports.Low, PortHigh: c.Ports.High,
		PingMS:  c.Liveness.WithDefaults().PingInterval.Milliseconds(),
		Streams: offer, Channels: c.offerChannels(mode),
	}
	if err := ctl.Send(req); err != nil {
		// The login ended before it read anything. What it printed may still say why: a
		// remote half of another protocol answers before it reads, and may be gone already.
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		hello, herr := recvHello(hctx, ctl)
		cancel()
		if herr == nil && hello.Type == wire.MsgHello && hello.Protocol != wire.Protocol {
			return rep, &VersionError{Local: version.String(), LocalProtocol: wire.Protocol, Remote: hello.Version, RemoteProtocol: hello.Protocol}
		}
		return rep, &wire.BannerError{Banner: ctl.Banner, Err: fmt.Errorf("sending the request to the remote half: %w", err)}
	}
	hello, err := recvHello(ctx, ctl)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = &wire.BannerError{Banner: ctl.Banner, Err: err}
		}
		return rep, err
	}
	if hello.Type == wire.MsgError {
		return rep, &rendezvous.RemoteError{Msg: hello.Error}
	}
	if hello.Type != wire.MsgHello {
		return rep, fmt.Errorf("the remote half sent %s instead of its hello", quote.Word(hello.Type))
	}
	rep.RemoteVersion = quote.Printable(hello.Version, 64)
	if hello.Protocol != wire.Protocol {
		return rep, &VersionError{Local: version.String(), LocalProtocol: wire.Protocol, Remote: hello.Version, RemoteProtocol: hello.Protocol}
	}
	c.logf("remote half: socketpipe %s, pid %d, after %v", rep.RemoteVersion, hello.PID, time.Since(start).Round(time.Millisecond))
	if len(ctl.Banner) > 0 {
		c.logf("login printed %d bytes before the remote half started (skipped)", len(ctl.Banner))
	}
	rd := newCtlReader(ctl)

	// With an executed login the local address is known only now, from SSH_CONNECTION.
	if backAddr == "" && rc.BackIP == nil && (mode == rendezvous.ModeAuto || mode == rendezvous.ModeBack) {
		if ip := sshConnectionIP(hello.SSHConnection, 0); ip != nil && canBind(ip) {
			rc.BackIP = ip
		}
		if rc.BackIP != nil || mode == rendezvous.ModeBack {
			a, err := rc.ListenBack()
			if err != nil {
				return rep, err
			}
			if err := ctl.Send(&wire.Message{Type: wire.MsgListen, Addr: a}); err != nil {
				return rep, err
			}
		}
	}
	res, err := rc.Run(ctx, ctl, hello, rd.msgs)
	if err != nil {
		if errors.Is(err, rendezvous.ErrTimeout) || errors.Is(err, rendezvous.ErrControlClosed) {
			if rd.err != nil {
				err = fmt.Errorf("%w (%w)", err, rd.err)
			}
		}
		return rep, err
	}
	rep.Mode, rep.Why = res.Mode, res.Why
	c.logf("data connection: %s (%s) after %v", res.Mode, res.Why, time.Since(start).Round(time.Millisecond))
	rep.Setup = time.Since(start)

	var l *link
	if res.Mode == rendezvous.ModeSSH {
		if c.Encrypt {
			c.logf("-e adds nothing in ssh mode: the SSH connection already encrypts")
		}
		if c.Streams > 1 {
			c.logf("data connection: --streams does not apply to ssh mode: one stream")
		}
		if l, err = c.sshLink(ctx, hello, ctl, rd.msgs, secret); err != nil {
			return rep, err
		}
		rep.Channels = len(l.conns)
	} else {
		ps, err := c.makeStreams(ctx, rc, res, hello, ctl, rd.msgs)
		if err != nil {
			res.Proven.Conn.Close()
			return rep, err
		}
		rep.Streams = len(ps)
		if l, err = newLink(res, ps, secret, c.Encrypt, cipherName, true, c.Liveness); err != nil {
			return rep, err
		}
		if c.Encrypt {
			c.logf("data connection: encrypted with %s", cipherName)
		}
	}
	defer l.close()
	xferStart := time.Now()
	if c.Watch != nil {
		c.Watch(&Meter{l: l, start: xferStart})
	}
	l.watchData(time.Duration(hello.PingMS)*time.Millisecond, c.Liveness.WithDefaults())
	dead, stopPings := rd.heartbeat(time.Duration(hello.PingMS) * time.Millisecond)
	err = c.transfer(ctx, l, rd, rep, dead)
	stopPings()
	rep.Transfer = time.Since(xferStart)
	l.count(rep, err == nil) // before l.close: the kernel's counts die with the socket
	return rep, err
}

// relaysStdio reports whether socketpipe relays its own standard input and output to the
// remote command, for a program that runs it as its transport (--ssh).
func (c *Client) relaysStdio() bool {
	return c.Input == nil && c.Output == nil && c.StdinToRemote && c.Stdin != nil
}

// recvHello reads the remote half's first message, giving up when ctx ends: a login command
// that was killed may have left a child holding its output open, and the read would then never
// end. The reading goroutine ends when the caller closes the login.
func recvHello(ctx context.Context, ctl *wire.Conn) (*wire.Message, error) {
	type recv struct {
		m   *wire.Message
		err error
	}
	ch := make(chan recv, 1)
	go func() {
		m, err := ctl.Recv()
		ch <- recv{m, err}
	}()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func isBrokenPipe(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed)
}

// VersionError is a protocol mismatch between the two halves.
type VersionError struct {
	Local, Remote                 string
	LocalProtocol, RemoteProtocol int
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("version mismatch: local socketpipe %s speaks protocol %d, remote socketpipe %s speaks protocol %d",
		quote.Printable(e.Local, 64), e.LocalProtocol, quote.Printable(e.Remote, 64), e.RemoteProtocol)
}

func addrIP(a net.Addr) net.IP {
	if t, ok := a.(*net.TCPAddr); ok && t != nil {
		return t.IP
	}
	return nil
}

// bindableIP resolves host and returns the first of its addresses this host can listen on.
func bindableIP(ctx context.Context, host string) net.IP {
	if ip := net.ParseIP(host); ip != nil {
		if canBind(ip) {
			return ip
		}
		return nil
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if canBind(ip) {
			return ip
		}
	}
	return nil
}

func canBind(ip net.IP) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// sshConnectionIP returns field i (0: client, 2: server) of SSH_CONNECTION
// ("client_ip client_port server_ip server_port").
func sshConnectionIP(s string, i int) net.IP {
	f := strings.Fields(s)
	if len(f) != 4 {
		return nil
	}
	return net.ParseIP(f[i])
}

// makeStreams decides how many data connections to stripe over (Streams, or the chooser on the
// first connection's round trip and the hosts' windows), tells the remote half, and makes the
// others. A remote half that cannot stripe (it did not accept the offer) gets one.
func (c *Client) makeStreams(ctx context.Context, rc *rendezvous.Client, res *rendezvous.Result, hello *wire.Message, ctl *wire.Conn, msgs <-chan *wire.Message) ([]*rendezvous.Proven, error) {
	n := c.Streams
	switch {
	case hello.Streams < 1:
		if n > 1 {
			return nil, fmt.Errorf("--streams %d: the remote half (socketpipe %s) makes only one data connection", n, quote.Printable(hello.Version, 64))
		}
		n = 1
		c.logf("data connection: one stream: the remote half does not stripe")
	case n > 0:
		n = min(n, hello.Streams)
		c.logf("data connection: %s, as --streams asks", streamCount(n))
	default:
		rtt, w := connRTT(res.Proven.Conn), usableWindow(hello)
		n = chooseStreams(rtt, w)
		c.logf("data connection: %s", streamsStory(n, rtt, w))
	}
	if hello.Streams > 0 {
		if err := ctl.Send(&wire.Message{Type: wire.MsgStreams, Streams: n}); err != nil {
			return nil, err
		}
	}
	return rc.Streams(ctx, res, n, msgs)
}
