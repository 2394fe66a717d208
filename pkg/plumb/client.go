package plumb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/internal/seal"
	"github.com/socketpipe/socketpipe/internal/version"
	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
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

	// What the login knows about its connection; nil when unknown.
	LocalAddr  net.Addr // this host's end of the login connection
	RemoteAddr net.Addr // the address the login connection reached
	// Native is true when the login is an in-process SSH connection, whose session is a clean
	// 8-bit channel that auto mode may fall back to.
	Native bool

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
	Encrypted     bool     // -e encrypted the data connection
	TCP           *TCPInfo // the data connection at its end; nil unless plain TCP
	Setup         time.Duration
	Transfer      time.Duration
	RemoteVersion string
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
		Cipher: cipherName, Addr: backAddr, Host: c.Host,
		PortLow: c.Ports.Low, PortHigh: c.Ports.High,
		PingMS: rendezvous.CurrentLiveness().PingInterval.Milliseconds(),
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
	rep.RemoteVersion = hello.Version
	if hello.Protocol != wire.Protocol {
		return rep, &VersionError{Local: version.String(), LocalProtocol: wire.Protocol, Remote: hello.Version, RemoteProtocol: hello.Protocol}
	}
	c.logf("remote half: socketpipe %s, pid %d, after %v", hello.Version, hello.PID, time.Since(start).Round(time.Millisecond))
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
		if errors.Is(err, rendezvous.ErrTimeout) || strings.Contains(err.Error(), "control channel closed") {
			if rd.err != nil {
				err = fmt.Errorf("%w (%v)", err, rd.err)
			}
		}
		return rep, err
	}
	rep.Mode, rep.Why = res.Mode, res.Why
	c.logf("data connection: %s (%s) after %v", res.Mode, res.Why, time.Since(start).Round(time.Millisecond))
	rep.Setup = time.Since(start)

	var l *link
	switch {
	case res.Mode == rendezvous.ModeSSH:
		if c.Encrypt {
			c.logf("-e adds nothing in ssh mode: the SSH connection already encrypts")
		}
		l = &link{mode: res.Mode, send: &frameWriter{ctl: ctl}}
	case c.Encrypt:
		l, err = sealedLink(res, secret, cipherName, true)
		if err == nil {
			c.logf("data connection: encrypted with %s", cipherName)
		}
	default:
		l, err = plainLink(res.Mode, res.Proven.Conn)
	}
	if err != nil {
		return rep, err
	}
	defer l.close()
	xferStart := time.Now()
	if c.Watch != nil {
		c.Watch(&Meter{l: l, start: xferStart})
	}
	l.watchData(time.Duration(hello.PingMS)*time.Millisecond, rendezvous.CurrentLiveness())
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

// transfer starts the local commands on the link and waits for every stage.
// dead closes when the remote half has gone silent (see ctlReader.heartbeat).
func (c *Client) transfer(ctx context.Context, l *link, rd *ctlReader, rep *Report, dead <-chan struct{}) error {
	var procs []*exec.Cmd
	var inputProc *exec.Cmd
	var mu sync.Mutex
	var relayErr error
	noteRelay := func(err error) {
		if err != nil && !isBrokenPipe(err) {
			mu.Lock()
			if relayErr == nil {
				relayErr = err
			}
			mu.Unlock()
		}
	}
	kill := func(sig syscall.Signal) {
		for _, p := range procs {
			if p.Process != nil {
				p.Process.Signal(sig)
			}
		}
	}

	inputDone := make(chan struct{})
	outputDone := make(chan struct{})
	if c.Input == nil && c.Output == nil {
		if err := l.ownSocket(); err != nil {
			return err
		}
	}

	// Upstream: the input command (or our stdin) to the remote.
	switch {
	case c.Input != nil && !l.relayed():
		p := command(c.Input, c.Stdin, l.sock, c.Stderr, false)
		if err := p.Start(); err != nil {
			rep.Stages[0].setStartError(err)
			l.closeWrite()
			close(inputDone)
			break
		}
		procs = append(procs, p)
		inputProc = p
		go func() {
			rep.Stages[0].setEnded(p.Wait())
			l.closeWrite()
			close(inputDone)
		}()
	case c.Input != nil:
		pr, pw, err := relayPipe()
		if err != nil {
			return err
		}
		p := command(c.Input, c.Stdin, pw, c.Stderr, false)
		err = p.Start()
		pw.Close()
		if err != nil {
			pr.Close()
			rep.Stages[0].setStartError(err)
			l.closeWrite()
			close(inputDone)
			break
		}
		procs = append(procs, p)
		inputProc = p
		var inWait sync.WaitGroup
		inWait.Add(1)
		go func() {
			defer inWait.Done()
			noteRelay(l.pump(pr))
			pr.Close()
		}()
		go func() {
			rep.Stages[0].setEnded(p.Wait())
			inWait.Wait()
			close(inputDone)
		}()
	case c.StdinToRemote && c.Stdin != nil:
		if l.sock != nil {
			rendezvous.SetNoDelay(l.sock, true) // a relay: see rendezvous.Tune
		}
		go func() {
			noteRelay(l.pump(c.Stdin))
			close(inputDone)
		}()
	default:
		l.closeWrite()
		close(inputDone)
	}

	// Downstream: the remote to the output command (or our stdout).
	var statusSeen atomic.Bool
	var earlyOnce, endOnce sync.Once
	dataEnd := make(chan struct{}) // closed when the remote's stream has ended
	markDataEnd := func() { endOnce.Do(func() { close(dataEnd) }) }
	sendOutputClosed := func() {
		if !statusSeen.Load() {
			// As in a shell pipeline, the writer before a reader that went away
			// gets SIGPIPE: the remote half signals the remote command.
			rd.conn.Send(&wire.Message{Type: wire.MsgOutputClosed})
		}
	}
	// The output went away before the end of the remote's stream. A shell's writer gets
	// SIGPIPE only if it writes again: one that already wrote its last bytes just exits. So
	// the remote command is signalled only if its stream does not end within SIGPIPEGrace.
	outputClosedEarly := func() {
		earlyOnce.Do(func() {
			go func() {
				select {
				case <-dataEnd:
				case <-time.After(SIGPIPEGrace):
					sendOutputClosed()
				}
			}()
		})
	}
	drainTo := func(w *os.File) {
		err := l.drain(w)
		if isBrokenPipe(err) {
			outputClosedEarly()
			if l.recv != nil {
				if _, err := io.Copy(io.Discard, l.recv); err == nil {
					markDataEnd()
				}
			}
			return
		}
		noteRelay(err)
		if err != nil && l.conn != nil {
			// The stream from the remote half is tampered or cut (-e) and nothing more is
			// read from it: close it, so the remote half's writes fail now (its command gets
			// SIGPIPE and the status comes) rather than wait on a full window.
			l.conn.Close()
		}
	}
	drained := make(chan struct{})
	switch {
	case c.Output != nil:
		var sinkR, sinkW *os.File
		if l.relayed() {
			pr, pw, err := relayPipe()
			if err != nil {
				return err
			}
			sinkR, sinkW = pr, pw
		} else {
			sinkR = l.sock
		}
		p := command(c.Output, sinkR, c.Stdout, c.Stderr, false)
		startErr := p.Start()
		if l.relayed() {
			sinkR.Close()
		}
		if startErr != nil {
			rep.Stages[2].setStartError(startErr)
			close(outputDone)
		} else {
			procs = append(procs, p)
			go func() {
				rep.Stages[2].setEnded(p.Wait())
				if !l.relayed() && !peerClosedWithin(l.sock, SIGPIPEGrace) {
					sendOutputClosed()
				}
				close(outputDone)
			}()
		}
		switch {
		case l.mode == rendezvous.ModeSSH:
			rd.setSink(sinkW, func(n int) { l.received.Add(int64(n)) }, outputClosedEarly)
			go func() {
				<-rd.dataEnded
				markDataEnd()
				close(drained)
			}()
		case l.relayed():
			go func() {
				drainTo(sinkW)
				sinkW.Close()
				close(drained)
			}()
		default:
			close(drained)
		}
	case l.mode == rendezvous.ModeSSH:
		rd.setSink(c.Stdout, func(n int) { l.received.Add(int64(n)) }, outputClosedEarly)
		go func() {
			<-rd.dataEnded
			markDataEnd()
			close(outputDone)
			close(drained)
		}()
	default:
		go func() {
			drainTo(c.Stdout)
			close(outputDone)
			close(drained)
		}()
	}

	var vanished error
	msgs := rd.msgs
	// Our own stdin may never end (a terminal, a parent that keeps the pipe open): as ssh does,
	// stop waiting for it once the remote command has ended and its output is all out.
	stdinOnly := c.Input == nil && c.StdinToRemote && c.Stdin != nil
	waitInput := func() bool {
		return inputDone != nil && !(stdinOnly && outputDone == nil && statusSeen.Load())
	}
	for waitInput() || outputDone != nil || (msgs != nil && !statusSeen.Load()) {
		select {
		case <-inputDone:
			inputDone = nil
		case <-outputDone:
			outputDone = nil
		case m, ok := <-msgs:
			if !ok {
				msgs = nil
				if !statusSeen.Load() {
					vanished = ErrRemoteVanished
					if rd.err != nil {
						vanished = fmt.Errorf("%w: %v", ErrRemoteVanished, rd.err)
					}
					// Local commands still reading or writing the dead connection end
					// on their own; make sure they do.
					go func() {
						time.Sleep(2 * time.Second)
						kill(syscall.SIGTERM)
					}()
				}
				continue
			}
			switch m.Type {
			case wire.MsgStatus:
				statusSeen.Store(true)
				s := rep.Stages[1]
				s.Ran = m.Error == "" || m.Exit < 126
				s.Exit, s.Signal, s.Err = m.Exit, m.Signal, m.Error
			case wire.MsgInputUnread:
				// The remote command is gone and the input still writes: as in a shell
				// pipeline, the writer gets SIGPIPE.
				if inputProc != nil && inputProc.Process != nil {
					inputProc.Process.Signal(syscall.SIGPIPE)
				}
			case wire.MsgNote:
				c.logf("remote: %s", m.Note)
			case wire.MsgError:
				kill(syscall.SIGTERM)
				// What we found wrong with the data from the remote half comes first: the
				// remote half may complain of the connection we closed because of it.
				mu.Lock()
				err := relayErr
				mu.Unlock()
				if errors.Is(err, seal.ErrTampered) || errors.Is(err, seal.ErrEndedEarly) {
					return err
				}
				return &rendezvous.RemoteError{Msg: m.Error}
			}
		case <-dead:
			kill(syscall.SIGTERM)
			return fmt.Errorf("%w: nothing heard for %v (the network between the hosts or the remote host is down)",
				ErrLostContact, rd.silence)
		case <-l.watch.Lost():
			kill(syscall.SIGTERM)
			return l.watch.check()
		case <-ctx.Done():
			kill(syscall.SIGTERM)
			return ctx.Err()
		}
	}
	// The kernel may have given up on the data connection just before a command found out.
	if err := l.watch.check(); err != nil {
		return err
	}
	<-drained
	if vanished != nil {
		return vanished
	}
	if relayErr != nil {
		return relayErr
	}
	return nil
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
