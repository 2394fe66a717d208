package plumb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/internal/seal"
	"github.com/socketpipe/socketpipe/internal/stripe"
	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// transfer starts the local commands on the link and waits for every stage: the upstream
// stage that feeds the remote command, the downstream stage it feeds, and the remote command's
// status over the control channel. dead closes when the remote half has gone silent (see
// ctlReader.heartbeat).
func (c *Client) transfer(ctx context.Context, l *link, rd *ctlReader, rep *Report, dead <-chan struct{}) error {
	errs := relayErrors{failed: make(chan struct{})}
	var statusSeen atomic.Bool
	if c.Input == nil && c.Output == nil {
		if err := l.ownSocket(); err != nil {
			return err
		}
	}
	up, err := c.startUpstream(l, rep.Stages[0], &errs)
	if err != nil {
		return err
	}
	down := &downstream{l: l, rd: rd, errs: &errs, statusSeen: &statusSeen, dataEnd: make(chan struct{})}
	if err := down.start(c, rep.Stages[2]); err != nil {
		return err
	}
	kill := func(sig syscall.Signal) {
		for _, p := range []*exec.Cmd{up.proc, down.proc} {
			if p != nil && p.Process != nil {
				p.Process.Signal(sig)
			}
		}
	}

	var vanished error
	var giveUp <-chan time.Time
	inputDone, outputDone, msgs, dataLost, relayFailed := up.done, down.done, rd.msgs, l.watch.lost(), errs.failed
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
						vanished = fmt.Errorf("%w: %w", ErrRemoteVanished, rd.err)
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
				up.inputUnread()
			case wire.MsgNote:
				c.logf("remote: %s", quote.Printable(m.Note, 512))
			case wire.MsgError:
				kill(syscall.SIGTERM)
				// What we found wrong with the data from the remote half comes first: the
				// remote half may complain of the connection we closed because of it. Its
				// words still follow, for they may be the cause (it closed the connection
				// because of its own failure).
				var lost *DataLostError
				var stream *stripe.StreamError
				if err := errs.first(); errors.Is(err, seal.ErrTampered) || errors.Is(err, seal.ErrEndedEarly) ||
					errors.Is(err, stripe.ErrEndedEarly) || errors.As(err, &stream) || errors.As(err, &lost) {
					return fmt.Errorf("%w (the remote half says: %s)", err, quote.Printable(m.Error, 512))
				}
				return &rendezvous.RemoteError{Msg: m.Error}
			}
		case <-relayFailed:
			// socketpipe's own relaying failed (-e, --streams: a stream cut, tampered or
			// ended early): the data cannot all arrive, so nothing may run on as if it could.
			// The input command ends; the output command gets the end of its input once the
			// relay stops, and writes out all that arrived intact first. Closing every
			// connection tells the remote half, whose own error (or status) follows, unless
			// it too has nothing left to say.
			relayFailed = nil
			if up.proc != nil && up.proc.Process != nil {
				up.proc.Process.Signal(syscall.SIGTERM)
			}
			l.closeConns()
			giveUp = time.After(RelayFailureGrace)
		case <-giveUp:
			kill(syscall.SIGTERM)
			return errs.first()
		case <-dead:
			kill(syscall.SIGTERM)
			return fmt.Errorf("%w: nothing heard for %v (the network between the hosts or the remote host is down)",
				ErrLostContact, rd.silence)
		case <-dataLost:
			if rd.quiet() {
				dataLost = nil // the whole link is down, not only the data connection: see dead
				continue
			}
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
	<-down.drained
	if vanished != nil {
		return vanished
	}
	return errs.first()
}

// RelayFailureGrace is how long the client waits, once its own relaying failed, for the remote
// half's word on it before it ends the run with its own.
const RelayFailureGrace = 5 * time.Second

// relayErrors keeps the first failure of socketpipe's own relaying and closes failed when it
// comes.
type relayErrors struct {
	mu     sync.Mutex
	err    error
	failed chan struct{}
}

func (e *relayErrors) note(err error) {
	if relayFailure(err) {
		e.mu.Lock()
		if e.err == nil {
			e.err = err
			if e.failed != nil {
				close(e.failed)
			}
		}
		e.mu.Unlock()
	}
}

// relayFailure reports whether err, which ended a relay, is a failure of the data: a broken
// pipe is a stage that went away, unless it is one stream's of several.
func relayFailure(err error) bool {
	var stream *stripe.StreamError
	return err != nil && (!isBrokenPipe(err) || errors.As(err, &stream))
}

func (e *relayErrors) first() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// upstream is the stage that feeds the remote command: the input command, socketpipe's own
// standard input, or nothing. Its end closes the stream towards the remote half.
type upstream struct {
	proc *exec.Cmd     // the input command once started; nil without one
	done chan struct{} // closed when the stage has ended and its data is all sent
}

// startUpstream starts the upstream stage on l. An input command that cannot start is the
// stage's failure (st), not transfer's.
func (c *Client) startUpstream(l *link, st *Stage, errs *relayErrors) (*upstream, error) {
	u := &upstream{done: make(chan struct{})}
	switch {
	case c.Input != nil && !l.relayed():
		p := command(c.Input, c.Stdin, l.sock, c.Stderr, false)
		if err := p.Start(); err != nil {
			st.setStartError(err)
			l.closeWrite()
			close(u.done)
			return u, nil
		}
		u.proc = p
		go func() {
			st.setEnded(p.Wait())
			l.closeWrite()
			close(u.done)
		}()
	case c.Input != nil:
		pr, pw, err := relayPipe()
		if err != nil {
			return nil, err
		}
		p := command(c.Input, c.Stdin, pw, c.Stderr, false)
		err = p.Start()
		pw.Close()
		if err != nil {
			pr.Close()
			st.setStartError(err)
			l.closeWrite()
			close(u.done)
			return u, nil
		}
		u.proc = p
		pumped := make(chan struct{})
		go func() {
			errs.note(l.pump(pr))
			pr.Close()
			close(pumped)
		}()
		go func() {
			st.setEnded(p.Wait())
			<-pumped
			close(u.done)
		}()
	case c.StdinToRemote && c.Stdin != nil:
		if l.sock != nil {
			rendezvous.SetNoDelay(l.sock, true) // a relay: see rendezvous.Tune
		}
		go func() {
			errs.note(l.pump(c.Stdin))
			close(u.done)
		}()
	default:
		l.closeWrite()
		close(u.done)
	}
	return u, nil
}

// inputUnread is the upstream stage's SIGPIPE policy: the remote command is gone and the input
// still writes, so, as in a shell pipeline, the writer gets SIGPIPE.
func (u *upstream) inputUnread() {
	if u.proc != nil && u.proc.Process != nil {
		u.proc.Process.Signal(syscall.SIGPIPE)
	}
}

// downstream is the stage the remote command feeds: the output command or socketpipe's own
// standard output.
type downstream struct {
	l          *link
	rd         *ctlReader
	errs       *relayErrors
	statusSeen *atomic.Bool // the remote command's status has come: nobody is left to signal

	proc    *exec.Cmd     // the output command once started; nil without one
	done    chan struct{} // closed when the stage has ended
	drained chan struct{} // closed when socketpipe has relayed (or discarded) all it will

	dataEnd   chan struct{} // closed when the remote's stream has ended
	endOnce   sync.Once
	earlyOnce sync.Once
}

// start starts the downstream stage. An output command that cannot start is the stage's
// failure (st), not transfer's.
func (d *downstream) start(c *Client, st *Stage) error {
	l := d.l
	d.done, d.drained = make(chan struct{}), make(chan struct{})
	counted := func(n int) { l.received.Add(int64(n)) }
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
			st.setStartError(startErr)
			close(d.done)
		} else {
			d.proc = p
			go func() {
				st.setEnded(p.Wait())
				if !l.relayed() && !peerClosedWithin(l.sock, SIGPIPEGrace) {
					d.outputClosed()
				}
				close(d.done)
			}()
		}
		switch {
		case l.framed():
			d.rd.setSink(sinkW, counted, d.closedEarly)
			go func() {
				<-d.rd.dataEnded
				d.markDataEnd()
				close(d.drained)
			}()
		case l.relayed():
			go func() {
				d.drainTo(sinkW)
				sinkW.Close()
				close(d.drained)
			}()
		default:
			close(d.drained)
		}
	case l.framed():
		d.rd.setSink(c.Stdout, counted, d.closedEarly)
		go func() {
			<-d.rd.dataEnded
			d.markDataEnd()
			close(d.done)
			close(d.drained)
		}()
	default:
		go func() {
			d.drainTo(c.Stdout)
			close(d.done)
			close(d.drained)
		}()
	}
	return nil
}

func (d *downstream) markDataEnd() { d.endOnce.Do(func() { close(d.dataEnd) }) }

// outputClosed tells the remote half that the output went away: as in a shell pipeline, the
// writer before a reader that went away gets SIGPIPE, and the remote half signals the remote
// command. Once its status has come there is nobody to signal.
func (d *downstream) outputClosed() {
	if !d.statusSeen.Load() {
		d.rd.conn.Send(&wire.Message{Type: wire.MsgOutputClosed})
	}
}

// closedEarly is the downstream stage's SIGPIPE policy for an output that went away before
// the end of the remote's stream. A shell's writer gets SIGPIPE only if it writes again: one
// that already wrote its last bytes just exits. So the remote command is signalled only if
// its stream does not end within SIGPIPEGrace.
func (d *downstream) closedEarly() {
	d.earlyOnce.Do(func() {
		go func() {
			select {
			case <-d.dataEnd:
			case <-time.After(SIGPIPEGrace):
				d.outputClosed()
			}
		}()
	})
}

// drainTo relays the remote's stream to w. When w's reader goes away the rest of the stream is
// discarded, to see whether it ends within the grace.
func (d *downstream) drainTo(w *os.File) {
	l := d.l
	err := l.drain(w)
	if isBrokenPipe(err) {
		d.closedEarly()
		if l.recv != nil {
			if _, err := io.Copy(io.Discard, l.recv); err == nil {
				d.markDataEnd()
			}
		}
		return
	}
	d.errs.note(err)
	if err != nil && l.conn != nil {
		// The stream from the remote half is tampered or cut (-e, --streams) and nothing
		// more is read from it: close it, so the remote half's writes fail now (its
		// command gets SIGPIPE and the status comes) rather than wait on a full window.
		l.closeConns()
	}
}
