package plumb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/internal/version"
	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
	"github.com/socketpipe/socketpipe/pkg/sshchan"
)

// KillGrace is how long a remote command's process group has between SIGTERM and SIGKILL.
const KillGrace = 2 * time.Second

// Server is the remote half ("socketpipe --serve"): it reads the request from the control
// channel, takes part in the rendezvous, runs and supervises the remote command, and reports
// its status.
type Server struct {
	Control io.Reader // the login session's stdin
	Reply   io.Writer // the login session's stdout
	Stderr  *os.File  // the remote command's stderr (the session's, back to the client)
	Getenv  func(string) string
	Logf    func(format string, args ...any)
	// Liveness sets the data socket's keepalive; zero fields are rendezvous's defaults. The
	// pings' interval is the client's, from the request.
	Liveness rendezvous.Liveness
}

func (s *Server) getenv(k string) string {
	if s.Getenv == nil {
		return os.Getenv(k)
	}
	return s.Getenv(k)
}

// Run serves one request. The error is for the remote half's own log: the client learns of
// every failure over the control channel.
func (s *Server) Run(ctx context.Context) error {
	ctl := wire.NewConn(s.Control, s.Reply)
	req, err := ctl.Recv()
	if err != nil {
		if be := (*wire.BannerError)(nil); errors.As(err, &be) {
			return errors.New("no request on standard input: --serve is started by socketpipe, not by hand")
		}
		return err
	}
	hello := &wire.Message{Type: wire.MsgHello, Version: version.String(), Protocol: wire.Protocol,
		PID: os.Getpid(), SSHConnection: s.getenv("SSH_CONNECTION")}
	fail := func(err error) error {
		if ctl.Send(&wire.Message{Type: wire.MsgError, Error: err.Error()}) == nil {
			return &ReportedError{err}
		}
		return err
	}
	if req.Type != wire.MsgRequest {
		ctl.Send(hello)
		return fail(fmt.Errorf("the remote half expected a request, got %s", quote.Word(req.Type)))
	}
	if req.Protocol != wire.Protocol {
		ctl.Send(hello)
		return fail(&VersionError{Local: req.Version, LocalProtocol: req.Protocol, Remote: version.String(), RemoteProtocol: wire.Protocol})
	}
	if len(req.Argv) == 0 || req.Argv[0] == "" {
		ctl.Send(hello)
		return fail(errors.New("the request has no remote command"))
	}
	if len(req.Secret) < 16 {
		ctl.Send(hello)
		return fail(errors.New("the request has no usable secret"))
	}
	if req.PingMS > 0 {
		hello.PingMS = req.PingMS // accepted
	}
	if req.Streams > 0 && req.Mode != rendezvous.ModeSSH {
		hello.Streams = min(req.Streams, rendezvous.MaxStreams) // accepted
	}
	if req.Channels > 0 && (req.Mode == rendezvous.ModeSSH || req.Mode == rendezvous.ModeAuto) {
		hello.Channels = min(req.Channels, sshchan.MaxChannels) // accepted
	}
	if hello.Streams > 0 || hello.Channels > 0 {
		hello.WindowSend, hello.WindowRecv = tcpWindows()
	}
	rs := &rendezvous.Server{Req: req, ListenIP: sshConnectionIP(hello.SSHConnection, 2), Logf: s.Logf}
	addr, note := rs.ListenReverse()
	hello.Addr = addr
	if err := ctl.Send(hello); err != nil {
		return err
	}
	if note != "" {
		ctl.Send(&wire.Message{Type: wire.MsgNote, Note: note})
	}
	rd := newCtlReader(ctl)
	res, err := rs.Run(ctx, ctl, rd.msgs)
	if err != nil {
		if errors.Is(err, rendezvous.ErrTimeout) {
			err = fmt.Errorf("no data connection from the client within %v", time.Duration(req.TimeoutMS)*time.Millisecond+rendezvous.ServerGrace)
		}
		return fail(err)
	}
	var l *link
	if res.Mode == rendezvous.ModeSSH {
		if l, err = s.sshLink(ctx, rs, hello, ctl, rd.msgs); err != nil {
			return fail(err)
		}
	} else {
		n := 1
		if hello.Streams > 0 {
			if n, err = rs.AwaitStreams(ctx, rd.msgs, 1, hello.Streams); err != nil {
				res.Proven.Conn.Close()
				return fail(err)
			}
		}
		ps, err := rs.Streams(ctx, res, n, rd.msgs)
		if err != nil {
			res.Proven.Conn.Close()
			return fail(err)
		}
		if l, err = newLink(res, ps, req.Secret, req.Encrypt, req.Cipher, false, s.Liveness); err != nil {
			return fail(err)
		}
	}
	defer l.close()
	l.watchData(time.Duration(req.PingMS)*time.Millisecond, s.Liveness.WithDefaults())
	dead, stopPings := rd.heartbeat(time.Duration(req.PingMS) * time.Millisecond)
	defer stopPings()
	st := s.supervise(ctx, req, l, rd, dead)
	select {
	case <-dead:
		// Nobody hears the status, and a send could wait on a session nobody reads.
		return fmt.Errorf("lost contact with the client: nothing heard for %v", rd.silence)
	default:
	}
	if err := ctl.Send(st); err != nil {
		return err
	}
	// Hold the data connection until the client has all it needs and closes the control
	// channel: closing earlier could reset the connection under data still in flight. A
	// client gone silent will not close it.
	for {
		select {
		case _, ok := <-rd.msgs:
			if !ok {
				return nil
			}
		case <-dead:
			return fmt.Errorf("lost contact with the client: nothing heard for %v", rd.silence)
		}
	}
}

// supervise runs the remote command on the link, in its own process group, and returns its
// status message. The group is killed when the client goes away.
// dead closes when the client has gone silent.
func (s *Server) supervise(ctx context.Context, req *wire.Message, l *link, rd *ctlReader, dead <-chan struct{}) *wire.Message {
	argv := req.Argv
	if req.Shell {
		sh := s.getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		argv = []string{sh, "-c", req.Argv[0]}
	}
	var stdin, stdout *os.File
	var inW, outR *os.File
	if l.relayed() {
		var err error
		if stdin, inW, err = relayPipe(); err != nil {
			return statusError(err)
		}
		if outR, stdout, err = relayPipe(); err != nil {
			return statusError(err)
		}
	} else {
		stdin, stdout = l.sock, l.sock
		if req.NoDelay {
			rendezvous.SetNoDelay(l.sock, true) // the client relays for a program: see rendezvous.Tune
		}
	}
	p := command(argv, stdin, stdout, s.Stderr, true)
	if req.Shell {
		// sshd starts the shell under its base name ("bash", not "/bin/bash"): scripts that
		// look at $0 see what they see under ssh.
		p.Args[0] = filepath.Base(argv[0])
	}
	startErr := p.Start()
	if l.relayed() {
		stdin.Close()
		stdout.Close()
	}
	st := &Stage{Name: StageRemote, Argv: req.Argv}
	noteUnread := func() { rd.conn.Send(&wire.Message{Type: wire.MsgInputUnread}) }
	// Feed the command's stdin (relayed modes) and carry its stdout back.
	pumped := make(chan struct{})
	// failData ends a run whose data cannot all arrive (-e, --streams: tampered, cut short, a
	// stream refused): neither the client nor the command may take it for a success. The
	// error goes first: the command's status, sent once it is gone, must not reach the client
	// before it.
	failData := func(err error) {
		rd.conn.Send(&wire.Message{Type: wire.MsgError, Error: "remote half: " + err.Error()})
		if p.Process != nil {
			syscall.Kill(-p.Process.Pid, syscall.SIGTERM)
		}
	}
	if l.relayed() {
		if l.framed() {
			rd.setSink(inW, func(n int) { l.received.Add(int64(n)) }, noteUnread)
		} else {
			go func() {
				err := l.drain(inW)
				switch {
				case err != nil && isBrokenPipe(err):
					noteUnread()
					io.Copy(io.Discard, l.recv)
				case err != nil:
					failData(err)
				}
				inW.Close()
			}()
		}
		go func() {
			if err := l.pump(outR); relayFailure(err) && !l.framed() {
				// What the command writes cannot all arrive; closing the connections ends
				// the client's reads too.
				failData(err)
				l.closeConns()
			}
			outR.Close()
			close(pumped)
		}()
	} else {
		close(pumped)
	}
	if startErr != nil {
		st.setStartError(startErr)
		if l.relayed() {
			outR.Close()
		}
		<-pumped
		l.closeWrite()
		return &wire.Message{Type: wire.MsgStatus, Exit: st.Exit, Error: st.Err}
	}
	pgid := p.Process.Pid
	defer watchParent(pgid)() // where the kernel cannot kill the group with socketpipe
	exited := make(chan error, 1)
	go func() { exited <- p.Wait() }()
	killGroup := func(sig syscall.Signal) { syscall.Kill(-pgid, sig) }
	// end ends the group: SIGTERM, then SIGKILL after KillGrace.
	end := func() error {
		killGroup(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(KillGrace):
			killGroup(syscall.SIGKILL)
			return <-exited
		}
	}
	// A lost data connection is the client's to hear of first: the command's status, sent
	// once it is gone, must not reach the client before it.
	told := false
	tellLost := func() {
		if err := l.watch.check(); err != nil && !told {
			told = true
			rd.conn.Send(&wire.Message{Type: wire.MsgError, Error: "remote half: " + err.Error()})
		}
	}
	var waitErr error
	msgs := rd.msgs
	gone := false // the client went away or cannot be reached
wait:
	for {
		select {
		case waitErr = <-exited:
			break wait
		case m, ok := <-msgs:
			if !ok {
				// The client went away: nothing may be left running.
				waitErr, gone = end(), true
				msgs = nil
				break wait
			}
			if m.Type == wire.MsgOutputClosed {
				killGroup(syscall.SIGPIPE)
			}
		case <-dead:
			// The client is unreachable: nothing may be left running.
			waitErr, gone = end(), true
			break wait
		case <-l.watch.lost():
			// The data connection is gone: tell the client; nothing may be left running.
			tellLost()
			waitErr = end()
			break wait
		case <-ctx.Done():
			waitErr, gone = end(), true
			break wait
		}
	}
	// The kernel may have given up on the connection just before the command found out.
	tellLost()
	st.setEnded(waitErr)
	// Whatever the command left in its group goes with it.
	if syscall.Kill(-pgid, 0) == nil {
		killGroup(syscall.SIGTERM)
		time.AfterFunc(KillGrace, func() { killGroup(syscall.SIGKILL) })
	}
	// A relay blocked on a peer that is gone must not hold the remote half: its connections
	// are closed under it (the frames' writer, blocked on a session nobody reads, is left).
	if gone {
		l.closeConns()
	}
	select {
	case <-pumped:
	case <-dead:
		l.closeConns()
	}
	if !l.relayed() {
		l.closeWrite()
		// Keep reading what the client still sends, so its writes never meet a reset; the
		// first unread byte tells the client its input has no reader (SIGPIPE, as a shell).
		go func() {
			buf := make([]byte, 64<<10)
			told := false
			for {
				n, err := l.sock.Read(buf)
				if n > 0 && !told {
					told = true
					noteUnread()
				}
				if err != nil {
					return
				}
			}
		}()
	}
	return &wire.Message{Type: wire.MsgStatus, Exit: st.Exit, Signal: st.Signal, Error: st.Err}
}

// ReportedError is an error of the remote half that the client was told of; the remote half
// need not print it too.
type ReportedError struct{ Err error }

func (e *ReportedError) Error() string { return e.Err.Error() }
func (e *ReportedError) Unwrap() error { return e.Err }

func statusError(err error) *wire.Message {
	return &wire.Message{Type: wire.MsgStatus, Exit: 126, Error: err.Error()}
}
