package rendezvous

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/internal/wire"
)

// Striping (--streams N). Once the first data connection is committed, the client tells the
// remote half how many it wants (wire.MsgStreams) and the other N-1 are made the way the
// first was: the remote half dials the client's listener again in back mode, the client dials
// the remote half's in reverse mode. Each takes the proof with its own nonces, and the client
// then commits it as stream i with a MAC over i and those nonces, so a relay can neither
// reorder the streams nor give one connection's place to another.

// MaxStreams is the most data connections one run may stripe over.
const MaxStreams = 64

// StreamsTimeout bounds how long the other connections may take once the first is made: they
// go where the first went, so they need no more than a few round trips each.
const StreamsTimeout = 10 * time.Second

// commitStream is the first byte of a stream's commit; a single connection's commit is 1.
const commitStream byte = 2

const streamCommitSize = 2 + sha256.Size

func streamMAC(secret []byte, index int, nc, ns []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("socketpipe stream v1"))
	m.Write([]byte{byte(index)})
	m.Write(nc)
	m.Write(ns)
	return m.Sum(nil)
}

// CommitStream commits p as stream index (1 to MaxStreams-1) of a striped run: the client's
// counterpart of Commit for the other connections.
func (p *Proven) CommitStream(secret []byte, index int) error {
	if index < 1 || index >= MaxStreams {
		return fmt.Errorf("stream %d out of range", index)
	}
	b := make([]byte, 0, streamCommitSize)
	b = append(append(b, commitStream, byte(index)), streamMAC(secret, index, p.ClientNonce, p.ServerNonce)...)
	p.Conn.SetWriteDeadline(time.Now().Add(ProofTimeout))
	defer p.Conn.SetWriteDeadline(time.Time{})
	_, err := p.Conn.Write(b)
	return err
}

// AwaitStream waits, up to the deadline, for the client's CommitStream and returns the
// stream's index, which is below n.
func (p *Proven) AwaitStream(secret []byte, n int, deadline time.Time) (int, error) {
	p.Conn.SetReadDeadline(deadline)
	defer p.Conn.SetReadDeadline(time.Time{})
	b := make([]byte, streamCommitSize)
	if _, err := io.ReadFull(p.Conn, b); err != nil {
		return 0, fmt.Errorf("waiting for the client's commit: %w", err)
	}
	return p.streamCommit(secret, b, n)
}

// streamCommit checks b, a whole stream commit of p, and returns its index, below n.
func (p *Proven) streamCommit(secret, b []byte, n int) (int, error) {
	i := int(b[1])
	if b[0] != commitStream || i < 1 || i >= n {
		return 0, fmt.Errorf("%w: bad stream commit", ErrProof)
	}
	if !hmac.Equal(b[2:], streamMAC(secret, i, p.ClientNonce, p.ServerNonce)) {
		return 0, fmt.Errorf("%w: wrong stream commit", ErrProof)
	}
	return i, nil
}

// awaitAnyCommit waits, up to the deadline (zero: forever), for the client's commit of p on
// the remote half's listener: the first connection's (Commit; index 0) or a stream's
// (CommitStream; its index). In reverse mode the client dials the other streams the moment
// it has committed the first, so they can reach the listener before the remote half has read
// that commit, and must not be taken for losers of the race. The caller bounds the wait with
// the connection's read deadline, which it may set meanwhile.
func (p *Proven) awaitAnyCommit(secret []byte) (int, error) {
	b := make([]byte, streamCommitSize)
	if _, err := io.ReadFull(p.Conn, b[:1]); err != nil {
		return 0, fmt.Errorf("waiting for the client's commit: %w", err)
	}
	switch b[0] {
	case 1:
		return 0, nil
	case commitStream:
		if _, err := io.ReadFull(p.Conn, b[1:]); err != nil {
			return 0, fmt.Errorf("waiting for the client's commit: %w", err)
		}
		return p.streamCommit(secret, b, MaxStreams)
	}
	return 0, fmt.Errorf("%w: bad commit byte", ErrProof)
}

// A StreamSetupError is a stream of a striped run that could not be made.
type StreamSetupError struct {
	Index, Of int  // Index counts from 0
	Channel   bool // an SSH channel of ssh mode, not a data connection
	Err       error
}

func (e *StreamSetupError) Error() string {
	what := "data connection"
	if e.Channel {
		what = "SSH channel"
	}
	return fmt.Sprintf("%s %d of %d: %v", what, e.Index+1, e.Of, e.Err)
}

func (e *StreamSetupError) Unwrap() error { return e.Err }

type indexed struct {
	i   int
	p   *Proven
	err error
}

// gather fills out[1:] with the streams that arrive on got, watching msgs for the other
// half's error or departure, until ctx ends (after wait); out[0] is the first connection, or
// nil where there is none (ssh mode's channels). wg counts the goroutines that send on got;
// gather waits for them and closes every connection it gathered but does not return.
func gather(ctx context.Context, wait time.Duration, out []*Proven, got chan indexed, wg *sync.WaitGroup, cancel func(), msgs <-chan *wire.Message, logf func(string, ...any)) ([]*Proven, error) {
	n := len(out)
	fail := func(err error) ([]*Proven, error) {
		cancel()
		wg.Wait()
		close(got) // every sender has ended
		for g := range got {
			if g.p != nil {
				g.p.Conn.Close()
			}
		}
		for _, p := range out[1:] {
			if p != nil {
				p.Conn.Close()
			}
		}
		return nil, err
	}
	missing := func() int {
		for i, p := range out[1:] {
			if p == nil {
				return i + 1
			}
		}
		return 0
	}
	for have := 1; have < n; {
		select {
		case g := <-got:
			switch {
			case g.err != nil:
				if g.p != nil {
					g.p.Conn.Close()
				}
				i := g.i
				if i == 0 { // the remote half learns a stream's index only from its commit
					i = missing()
				}
				return fail(&StreamSetupError{Index: i, Of: n, Err: g.err})
			case out[g.i] != nil:
				g.p.Conn.Close()
				return fail(&StreamSetupError{Index: g.i, Of: n, Err: errors.New("committed twice")})
			}
			out[g.i] = g.p
			have++
		case m, ok := <-msgs:
			if !ok {
				return fail(ErrControlClosed)
			}
			switch m.Type {
			case wire.MsgError:
				return fail(&RemoteError{Msg: m.Error})
			case wire.MsgNote:
				if logf != nil {
					logf("remote: %s", quote.Printable(m.Note, 512))
				}
			case wire.MsgListen:
				// A way of connecting offered late: the first connection is made already.
			default:
				return fail(fmt.Errorf("unexpected %s message while making the data connections", quote.Word(m.Type)))
			}
		case <-ctx.Done():
			err := ctx.Err()
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("not made within %v of the first", wait)
			}
			return fail(&StreamSetupError{Index: missing(), Of: n, Err: err})
		}
	}
	cancel()
	wg.Wait()
	return out, nil
}

// Streams makes the other n-1 data connections of a striped run the way res was made, once
// the remote half was told n, and returns all n in order, res.Proven first. msgs is the
// remote half's control messages, watched for its error. Whatever n, Streams closes the
// listener that took the first connection once it has taken the others: a listener never
// takes more than asked.
func (c *Client) Streams(ctx context.Context, res *Result, n int, msgs <-chan *wire.Message) ([]*Proven, error) {
	if res.listener != nil {
		defer res.listener.Close()
	}
	if n <= 1 {
		return []*Proven{res.Proven}, nil
	}
	wait := c.StreamsTimeout
	if wait <= 0 {
		wait = StreamsTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	got := make(chan indexed, n)
	var wg sync.WaitGroup
	switch {
	case res.Mode == ModeReverse && res.addr != "":
		for i := 1; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := Dial(ctx, res.addr, c.Secret, RoleClient)
				if err == nil {
					if err = p.CommitStream(c.Secret, i); err != nil {
						p.Conn.Close()
						p = nil
					}
				}
				got <- indexed{i, p, err}
			}()
		}
	case res.Mode == ModeBack && res.listener != nil:
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i < n; i++ {
				select {
				case p := <-res.listener.Proven():
					err := p.CommitStream(c.Secret, i)
					got <- indexed{i, p, err}
					if err != nil {
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	default:
		return nil, fmt.Errorf("%s mode cannot make more than one data connection", res.Mode)
	}
	c.logf("data connection: making %d more", n-1)
	return gather(ctx, wait, first(res.Proven, n), got, &wg, cancel, msgs, c.logf)
}

// Streams is the remote half's side of Client.Streams, once the client's streams message
// said n: it dials the client's listener again in back mode, takes the client's dials on its
// listener in reverse mode, and places each connection where the client's commit says.
func (s *Server) Streams(ctx context.Context, res *Result, n int, msgs <-chan *wire.Message) ([]*Proven, error) {
	if res.listener != nil {
		defer res.listener.Close()
	}
	if n <= 1 {
		return []*Proven{res.Proven}, nil
	}
	deadline := time.Now().Add(StreamsTimeout + ServerGrace)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	got := make(chan indexed, n)
	var wg sync.WaitGroup
	await := func(p *Proven, err error) { got <- s.await(ctx, p, err, n, deadline) }
	switch {
	case res.Mode == ModeBack && res.addr != "":
		for range n - 1 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := Dial(ctx, res.addr, s.Req.Secret, RoleServer)
				await(p, err)
			}()
		}
	case res.Mode == ModeReverse && res.listener != nil:
		s.take(ctx, res.listener, s.early, n-1, n, deadline, got, &wg)
	default:
		return nil, fmt.Errorf("%s mode cannot make more than one data connection", res.Mode)
	}
	return gather(ctx, StreamsTimeout+ServerGrace, first(res.Proven, n), got, &wg, cancel, msgs, nil)
}

// first is the slots of n streams for gather, the first one filled.
func first(p *Proven, n int) []*Proven {
	out := make([]*Proven, n)
	out[0] = p
	return out
}

// await waits for the client's commit of p, a connection that took the proof (err: it did
// not), as one of streams 1 to n-1; it closes p unless p is committed.
func (s *Server) await(ctx context.Context, p *Proven, err error, n int, deadline time.Time) indexed {
	i := 0
	if err == nil {
		stop := context.AfterFunc(ctx, func() { p.Conn.Close() })
		i, err = p.AwaitStream(s.Req.Secret, n, deadline)
		stop()
	}
	if err != nil && p != nil {
		p.Conn.Close()
		p = nil
	}
	return indexed{i, p, err}
}

// take sends on got count streams, each committed as one of streams 1 to n-1: those early
// delivers (committed while Run waited for the first commit), and those l proves, whose commit
// it awaits until deadline. wg counts its goroutines; they end with ctx.
func (s *Server) take(ctx context.Context, l *Listener, early <-chan indexed, count, n int, deadline time.Time, got chan<- indexed, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range count {
			select {
			case e := <-early:
				if e.i >= n {
					e.p.Conn.Close()
					e = indexed{e.i, nil, fmt.Errorf("%w: bad stream commit", ErrProof)}
				}
				got <- e
			case p := <-l.Proven():
				wg.Add(1)
				go func() {
					defer wg.Done()
					got <- s.await(ctx, p, nil, n, deadline)
				}()
			case <-ctx.Done():
				return
			}
		}
	}()
}

// Channels is the remote half's side of ssh mode's channels (pkg/sshchan): it takes n
// connections on l, the loopback listener the client's direct-tcpip channels reach, and
// returns them in the order the client committed them (channel i as stream i+1). It closes l
// once it has them, or has failed.
func (s *Server) Channels(ctx context.Context, l *Listener, n int, msgs <-chan *wire.Message) ([]*Proven, error) {
	defer l.Close()
	deadline := time.Now().Add(StreamsTimeout + ServerGrace)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	got := make(chan indexed, n)
	var wg sync.WaitGroup
	s.take(ctx, l, nil, n, n+1, deadline, got, &wg)
	out, err := gather(ctx, StreamsTimeout+ServerGrace, make([]*Proven, n+1), got, &wg, cancel, msgs, nil)
	if err != nil {
		if se := (*StreamSetupError)(nil); errors.As(err, &se) {
			se.Index, se.Of, se.Channel = se.Index-1, se.Of-1, true
		}
		return nil, err
	}
	return out[1:], nil
}

// AwaitStreams waits for the client's streams message, which follows its commit when the
// remote half offered to stripe (hello's Streams, at most most), or its channels in ssh mode,
// and returns how many data connections the client wants: least to most.
func (s *Server) AwaitStreams(ctx context.Context, msgs <-chan *wire.Message, least, most int) (int, error) {
	t := time.NewTimer(ProofTimeout + ServerGrace)
	defer t.Stop()
	for s.streams == nil {
		select {
		case m, ok := <-msgs:
			if !ok {
				return 0, errors.New("the client went away")
			}
			switch m.Type {
			case wire.MsgStreams:
				s.streams = m
			case wire.MsgListen:
				// The client's connect-back address, late: the first connection is made.
			case wire.MsgError:
				return 0, &RemoteError{Msg: m.Error}
			default:
				return 0, fmt.Errorf("unexpected %s message where the number of streams was expected", quote.Word(m.Type))
			}
		case <-t.C:
			return 0, errors.New("the client did not say how many data connections it wants")
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	n := s.streams.Streams
	if n < least || n > most {
		return 0, fmt.Errorf("the client asks for %d data connections, want %d to %d", n, least, most)
	}
	return n, nil
}
