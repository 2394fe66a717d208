package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/internal/wire"
)

// Modes of making the data connection (-m).
const (
	ModeAuto    = "auto"    // back and reverse at once; native login falls back to ssh
	ModeBack    = "back"    // the remote half connects to the client (the original's way)
	ModeReverse = "reverse" // the client connects to the remote half
	ModeSSH     = "ssh"     // the data flows over the login session itself
)

// CheckMode validates a -m argument.
func CheckMode(m string) error {
	switch m {
	case ModeAuto, ModeBack, ModeReverse, ModeSSH:
		return nil
	}
	return fmt.Errorf("unknown mode %s: want auto, back, reverse or ssh", quote.Word(m))
}

// FallbackDelay is how long auto mode waits for a direct connection before it falls back to
// the SSH connection, when that fallback is allowed.
const FallbackDelay = 3 * time.Second

// Result is the data connection a rendezvous settled on.
type Result struct {
	Mode   string  // back, reverse or ssh
	Proven *Proven // nil in ssh mode
	Why    string  // for -v: why this mode

	// addr is the address the winning side dialled, where the other connections of
	// --streams are dialled too; listener, the listener that took it (the other side's).
	addr     string
	listener *Listener
}

// ErrTimeout is returned when no data connection was made within the timeout.
var ErrTimeout = errors.New("no data connection within the timeout")

// ErrControlClosed is returned when the control channel ended while the client was making the
// data connection: the remote half or the login went away.
var ErrControlClosed = errors.New("the control channel closed while making the data connection")

// A RemoteError is an error message sent by the other half.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return quote.Printable(e.Msg, 512) }

// Client makes the data connection from the client's side.
type Client struct {
	Mode    string
	Secret  []byte
	Ports   PortRange
	Timeout time.Duration // how long to wait for a direct connection; 0: forever

	// BackIP is the local address to listen on for connect-back; nil when not known.
	BackIP net.IP
	// BackHost, if set, is the host (-h) the remote half is told to dial instead of BackIP.
	BackHost string
	// ReverseIP, if set, is the only host the client dials in reverse mode: the address the
	// SSH connection actually reached (a native login). The remote half's address gives only
	// the port.
	ReverseIP net.IP
	// ReverseHosts, when ReverseIP is nil (an executed login, ProxyJump), are the names or
	// addresses the user gave (the login's host name, -h): the client dials the address the
	// remote half names only if it is one they resolve to. With neither, the client does not
	// dial at all: the remote half's word is all it would have.
	ReverseHosts []string
	// StreamsTimeout bounds the making of the other connections of --streams once the
	// first is made; 0 is the constant StreamsTimeout.
	StreamsTimeout time.Duration
	// SSHFallback allows auto mode to fall back to ssh mode after FallbackDelay.
	SSHFallback bool
	// Logf, if set, receives the -v story.
	Logf func(format string, args ...any)

	// Listener is set once the client listens (for tests and -v).
	Listener *Listener

	allowed  []net.IP // ReverseHosts resolved, once
	resolved bool
}

// MaxReverseDials bounds the reverse dials of one rendezvous. The remote half names one
// address in its hello; whatever it names beyond this many, or twice, is not dialled.
const MaxReverseDials = 4

// reverseTarget checks the address the remote half asks to be dialled at and returns the one
// to dial, or why it is not dialled. Only the port is the remote half's choice (within
// --ports, if given); the host is the one the SSH connection reached, or one of ReverseHosts.
func (c *Client) reverseTarget(ctx context.Context, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("bad address %s from the remote half", quote.Word(addr))
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("bad port in the address %s from the remote half", quote.Word(addr))
	}
	if c.Ports.Low != 0 && (p < c.Ports.Low || p > c.Ports.High) {
		return "", fmt.Errorf("the remote half listens at port %d, outside --ports %d-%d", p, c.Ports.Low, c.Ports.High)
	}
	if c.ReverseIP != nil {
		return net.JoinHostPort(c.ReverseIP.String(), port), nil
	}
	if len(c.ReverseHosts) == 0 {
		return "", errors.New("the host the login reached is not known (the login is not ssh, or its arguments could not be read), so the address the remote half names is not dialled")
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "", fmt.Errorf("the remote half names %s, not an address", quote.Word(host))
	}
	if !c.resolved {
		c.resolved = true
		for _, h := range c.ReverseHosts {
			if a := net.ParseIP(h); a != nil {
				c.allowed = append(c.allowed, a)
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, ProofTimeout)
			ips, err := net.DefaultResolver.LookupIP(rctx, "ip", h)
			cancel()
			if err != nil {
				c.logf("data connection: resolving %s: %v", quote.Word(h), err)
			}
			c.allowed = append(c.allowed, ips...)
		}
	}
	for _, a := range c.allowed {
		if a.Equal(ip) {
			return net.JoinHostPort(ip.String(), port), nil
		}
	}
	names := make([]string, len(c.ReverseHosts))
	for i, h := range c.ReverseHosts {
		names[i] = quote.Word(h)
	}
	return "", fmt.Errorf("the remote half listens at %s, which is not an address of %s", ip, strings.Join(names, " or "))
}

func (c *Client) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// ListenBack starts the connect-back listener when the mode wants one and an address is known,
// and returns the address to tell the remote half ("" when not listening).
func (c *Client) ListenBack() (string, error) {
	if c.Mode != ModeAuto && c.Mode != ModeBack {
		return "", nil
	}
	if c.BackIP == nil {
		if c.Mode == ModeBack {
			return "", errors.New("back mode: the local address the remote host can reach is not known (give it with -h)")
		}
		return "", nil
	}
	l, err := Listen(c.BackIP, c.Ports, c.Secret, RoleClient)
	if err != nil {
		if c.Mode == ModeBack {
			return "", err
		}
		c.logf("data connection: not listening for connect-back: %v", err)
		return "", nil
	}
	c.Listener = l
	port := l.Addr().Port
	host := c.BackHost
	if host == "" {
		host = c.BackIP.String()
	}
	c.logf("data connection: listening for connect-back on %s (remote dials %s)", l.Addr(), net.JoinHostPort(host, fmt.Sprint(port)))
	return net.JoinHostPort(host, fmt.Sprint(port)), nil
}

// Run waits for the data connection after the hello. ctl is used to send messages; msgs
// delivers the remote half's control messages and is closed when the control channel ends.
func (c *Client) Run(ctx context.Context, ctl *wire.Conn, hello *wire.Message, msgs <-chan *wire.Message) (*Result, error) {
	if c.Mode == ModeSSH {
		return &Result{Mode: ModeSSH, Why: "asked for with -m ssh"}, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	type attempt struct {
		p      *Proven
		mode   string
		target string
		err    error
	}
	results := make(chan attempt, 4)
	var wg sync.WaitGroup
	var res *Result
	defer func() {
		// Stop every other attempt and close what it made; the kept connection was
		// committed and is the caller's, and so is the listener that took it, for the
		// other connections of --streams (Streams closes it).
		cancel()
		if c.Listener != nil && (res == nil || res.listener == nil) {
			c.Listener.Close()
		}
		wg.Wait()
		for {
			select {
			case a := <-results:
				if a.p != nil {
					a.p.Conn.Close()
				}
			default:
				return
			}
		}
	}()

	var backCh <-chan *Proven
	if c.Listener != nil {
		backCh = c.Listener.Proven()
	}
	reasons := map[string]string{}
	dialled := map[string]bool{}
	pendingDials := 0
	// dialReverse starts a dial of the remote half at addr, if the client may dial it.
	dialReverse := func(addr string) error {
		if c.Mode != ModeAuto && c.Mode != ModeReverse {
			return nil
		}
		target, err := c.reverseTarget(ctx, addr)
		switch {
		case err != nil:
		case dialled[target]:
			err = fmt.Errorf("the remote half names %s again", target)
		case len(dialled) >= MaxReverseDials:
			err = fmt.Errorf("the remote half names more than %d addresses", MaxReverseDials)
		}
		if err != nil {
			if reasons[ModeReverse] != err.Error() { // a flood of the same says it once
				c.logf("data connection: not dialling the remote half: %v", err)
			}
			reasons[ModeReverse] = err.Error()
			return err
		}
		dialled[target] = true
		pendingDials++
		c.logf("data connection: dialling the remote half at %s", target)
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := Dial(ctx, target, c.Secret, RoleClient)
			select {
			case results <- attempt{p, ModeReverse, target, err}:
			case <-ctx.Done():
				// The rendezvous is over and nobody reads results any more.
				if p != nil {
					p.Conn.Close()
				}
			}
		}()
		return nil
	}
	if hello.Addr != "" {
		if err := dialReverse(hello.Addr); err != nil && c.Mode == ModeReverse {
			return nil, fmt.Errorf("reverse mode: %w", err)
		}
	} else if c.Mode == ModeReverse {
		return nil, errors.New("reverse mode: the remote half is not listening (no SSH_CONNECTION on the remote side?)")
	}
	if c.Listener == nil && pendingDials == 0 {
		if c.SSHFallback && c.Mode == ModeAuto {
			return c.useSSH(ctl, "no direct way was possible")
		}
		if r, ok := reasons[ModeReverse]; ok {
			return nil, fmt.Errorf("no direct data connection is possible: the local address is unknown and %s (try -h or -m ssh)", r)
		}
		return nil, errors.New("no direct data connection is possible: the local address is unknown and the remote half is not listening (try -h or -m ssh)")
	}

	var timeout, fallback <-chan time.Time
	if c.Timeout > 0 {
		t := time.NewTimer(c.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	if c.SSHFallback && c.Mode == ModeAuto {
		t := time.NewTimer(FallbackDelay)
		defer t.Stop()
		fallback = t.C
	}
	for {
		select {
		case p := <-backCh:
			var err error
			if res, err = c.commit(p, ModeBack, "the remote half connected back"); res != nil {
				res.listener = c.Listener
			}
			return res, err
		case a := <-results:
			if a.err == nil {
				why := "the client reached the remote half"
				if r, ok := reasons[ModeBack]; ok {
					why += " (connect-back: " + r + ")"
				}
				var err error
				if res, err = c.commit(a.p, a.mode, why); res != nil {
					res.addr = a.target
				}
				return res, err
			}
			reasons[a.mode] = a.err.Error()
			c.logf("data connection: %s failed: %v", a.mode, a.err)
			pendingDials--
			if pendingDials == 0 && c.Listener == nil {
				if c.SSHFallback && c.Mode == ModeAuto {
					return c.useSSH(ctl, "reverse: "+a.err.Error())
				}
				return nil, fmt.Errorf("%s: %w", a.mode, a.err)
			}
		case m, ok := <-msgs:
			if !ok {
				return nil, ErrControlClosed
			}
			switch m.Type {
			case wire.MsgError:
				return nil, &RemoteError{Msg: m.Error}
			case wire.MsgNote:
				note := quote.Printable(m.Note, 512)
				if m.Mode == "" {
					c.logf("remote: %s", note)
					break
				}
				// A note about one way of connecting: why it has not worked yet.
				c.logf("remote: %s: %s", quote.Printable(m.Mode, 16), note)
				reasons[m.Mode] = note
			case wire.MsgListen:
				dialReverse(m.Addr)
			default:
				return nil, fmt.Errorf("unexpected %s message while making the data connection", quote.Word(m.Type))
			}
		case <-fallback:
			return c.useSSH(ctl, fmt.Sprintf("no direct connection within %v", FallbackDelay))
		case <-timeout:
			return nil, ErrTimeout
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *Client) commit(p *Proven, mode, why string) (*Result, error) {
	if err := p.Commit(); err != nil {
		p.Conn.Close()
		return nil, fmt.Errorf("committing the %s connection: %w", mode, err)
	}
	return &Result{Mode: mode, Proven: p, Why: why}, nil
}

func (c *Client) useSSH(ctl *wire.Conn, why string) (*Result, error) {
	if err := ctl.Send(&wire.Message{Type: wire.MsgUseSSH}); err != nil {
		return nil, err
	}
	return &Result{Mode: ModeSSH, Why: why}, nil
}

// ServerGrace is how much longer than the client the remote half waits for the data
// connection. The client starts its clock only on the hello, after the remote half started
// its own; without the grace the remote half would often give up first, and the user would
// read its bare error instead of the client's, which names the likely cause (a firewall).
const ServerGrace = 2 * time.Second

// Server makes the data connection from the remote half's side.
type Server struct {
	Req      *wire.Message
	ListenIP net.IP // the address to listen on in reverse mode (this host's end of the login)
	Logf     func(format string, args ...any)

	listener *Listener
	streams  *wire.Message // the client's streams message, when it came before Run saw the commit
	early    chan indexed  // reverse mode: streams committed on the listener before Run saw the first commit
}

// ListenReverse starts the reverse listener when the mode wants one and returns its address
// ("" when not listening; why, as a note, otherwise).
func (s *Server) ListenReverse() (addr, note string) {
	m := s.Req.Mode
	if m != ModeAuto && m != ModeReverse {
		return "", ""
	}
	if s.ListenIP == nil {
		return "", "reverse: the remote half does not know its own address (no SSH_CONNECTION)"
	}
	l, err := Listen(s.ListenIP, PortRange{s.Req.PortLow, s.Req.PortHigh}, s.Req.Secret, RoleServer)
	if err != nil {
		return "", "reverse: " + err.Error()
	}
	s.listener = l
	return l.Addr().String(), ""
}

// Run waits until the client commits a data connection or asks for ssh mode.
func (s *Server) Run(ctx context.Context, ctl *wire.Conn, msgs <-chan *wire.Message) (*Result, error) {
	if s.Req.Mode == ModeSSH {
		return &Result{Mode: ModeSSH}, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	committed := make(chan *Result, 1)
	s.early = make(chan indexed, MaxStreams)
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[*Proven]bool{}
	finished := false
	// A connection the listener took may be a stream of a run whose first connection is
	// committed already (awaitAnyCommit): it goes to Streams, not away. So those awaits are
	// not closed when Run ends, only bounded; the dialled ones are.
	await := func(p *Proven, mode, addr string) {
		mu.Lock()
		defer mu.Unlock()
		if finished {
			p.Conn.Close()
			return
		}
		open[p] = mode == ModeReverse
		track := mode != ModeReverse
		if track {
			wg.Add(1)
		}
		go func() {
			if track {
				defer wg.Done()
			}
			var i int
			var err error
			if mode == ModeReverse {
				i, err = p.awaitAnyCommit(s.Req.Secret)
			} else {
				err = p.AwaitCommit(time.Time{})
			}
			mu.Lock()
			delete(open, p)
			late := finished
			mu.Unlock()
			switch {
			case err != nil:
				p.Conn.Close()
				return
			case i > 0:
				// Run's end may have bounded the wait for this commit: the stream is
				// made now, and its reads must not inherit that bound.
				p.Conn.SetReadDeadline(time.Time{})
				select {
				case s.early <- indexed{i, p, nil}:
				default:
					p.Conn.Close()
				}
				return
			case late:
				p.Conn.Close() // a first connection's commit after another was kept
				return
			}
			select {
			case committed <- &Result{Mode: mode, Proven: p, addr: addr}:
			default:
				p.Conn.Close()
			}
		}()
	}
	var keep *Proven
	keepListener := false
	defer func() {
		cancel()
		// The listener that took the kept connection takes the other connections of
		// --streams (Streams closes it).
		if s.listener != nil && !keepListener {
			s.listener.Close()
		}
		mu.Lock()
		finished = true
		for p, listened := range open {
			switch {
			case p == keep:
			case listened && keepListener:
				// Perhaps one of the streams, its commit not read yet: Streams waits
				// that long for it, and a stranger's connection ends then.
				p.Conn.SetReadDeadline(time.Now().Add(StreamsTimeout + ServerGrace))
			default:
				p.Conn.Close()
			}
		}
		mu.Unlock()
		wg.Wait()
	}()
	dialBack := func(addr string) {
		if s.Req.Mode != ModeAuto && s.Req.Mode != ModeBack {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Retried until the rendezvous ends: a flood of strangers at the client's
			// listener may close an attempt before it has proved itself.
			backoff := 100 * time.Millisecond
			for attempt := 1; ; attempt++ {
				p, err := Dial(ctx, addr, s.Req.Secret, RoleServer)
				if err == nil {
					await(p, ModeBack, addr)
					return
				}
				if ctx.Err() != nil {
					return
				}
				if attempt == 1 {
					ctl.Send(&wire.Message{Type: wire.MsgNote, Mode: ModeBack,
						Note: fmt.Sprintf("connecting to %s: %v (retrying)", addr, err)})
				}
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return
				}
				backoff = min(2*backoff, 2*time.Second)
			}
		}()
	}
	if s.Req.Addr != "" {
		dialBack(s.Req.Addr)
	}
	var revCh <-chan *Proven
	if s.listener != nil {
		revCh = s.listener.Proven()
	}
	var timeout <-chan time.Time
	if s.Req.TimeoutMS > 0 {
		t := time.NewTimer(time.Duration(s.Req.TimeoutMS)*time.Millisecond + ServerGrace)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case r := <-committed:
			keep = r.Proven
			if r.Mode == ModeReverse {
				keepListener = true
				r.listener = s.listener
			}
			return r, nil
		case p := <-revCh:
			await(p, ModeReverse, "")
		case m, ok := <-msgs:
			if !ok {
				return nil, errors.New("the client went away")
			}
			switch m.Type {
			case wire.MsgListen:
				dialBack(m.Addr)
			case wire.MsgUseSSH:
				return &Result{Mode: ModeSSH}, nil
			case wire.MsgStreams:
				// Sent right after the commit, which may reach us a moment later.
				s.streams = m
			case wire.MsgError:
				return nil, &RemoteError{Msg: m.Error}
			default:
				return nil, fmt.Errorf("unexpected %s message while making the data connection", quote.Word(m.Type))
			}
		case <-timeout:
			return nil, ErrTimeout
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
