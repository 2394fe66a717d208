//go:build linux

package harness

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// strangerKeep bounds what a StrangerConn keeps of what it receives: enough to show a leak,
// bounded however much a peer sends.
const strangerKeep = 64 << 10

// Stranger is a hostile peer for tests of listeners that must give nothing to whoever cannot
// prove the secret: it connects, sends garbage or nothing, and records what it gets back.
// The zero value dials from the test's own network namespace; [NewStranger] dials from a host.
type Stranger struct {
	// Netns is the network namespace to dial from ("" for the test's own).
	Netns string
}

// NewStranger returns a Stranger that dials from inside h.
func NewStranger(h *Host) *Stranger { return &Stranger{Netns: h.Name} }

// StrangerResult is what one stranger connection saw.
type StrangerResult struct {
	Received     []byte        // the first bytes the peer sent (at most 64 KiB are kept)
	ReceivedN    int64         // how many bytes the peer sent in all
	ClosedByPeer bool          // the peer closed or reset the connection
	Lifetime     time.Duration // from connect until the peer closed, or until Wait gave up
	Err          error         // the read error that ended the connection, if not a clean EOF
}

// StrangerConn is one connection of a Stranger. A goroutine reads everything the peer sends
// until the peer closes or Close is called.
type StrangerConn struct {
	conn  net.Conn
	start time.Time
	done  chan struct{}

	mu  sync.Mutex
	res StrangerResult
}

// Connect dials addr (a literal IP address and port) and starts recording what comes back.
func (s *Stranger) Connect(ctx context.Context, addr string) (*StrangerConn, error) {
	netns := ""
	if s != nil {
		netns = s.Netns
	}
	c, err := dialIn(ctx, netns, "tcp", addr)
	if err != nil {
		return nil, err
	}
	sc := &StrangerConn{conn: c, start: time.Now(), done: make(chan struct{})}
	go sc.read()
	return sc, nil
}

func (c *StrangerConn) read() {
	defer close(c.done)
	buf := make([]byte, 32<<10)
	for {
		n, err := c.conn.Read(buf)
		c.mu.Lock()
		if keep := strangerKeep - len(c.res.Received); keep > 0 {
			c.res.Received = append(c.res.Received, buf[:min(n, keep)]...)
		}
		c.res.ReceivedN += int64(n)
		if err != nil {
			c.res.Lifetime = time.Since(c.start)
			if errors.Is(err, net.ErrClosed) {
				// We closed it ourselves.
			} else {
				c.res.ClosedByPeer = true
				if err != io.EOF {
					c.res.Err = err
				}
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// Send writes p to the peer.
func (c *StrangerConn) Send(p []byte) error {
	_, err := c.conn.Write(p)
	return err
}

// CloseWrite half-closes the connection: the peer reads end of file, and may still answer.
func (c *StrangerConn) CloseWrite() error {
	if tc, ok := c.conn.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return errors.New("harness: not a TCP connection")
}

// Wait waits until the peer closes the connection or ctx ends, and returns what was seen.
// It does not close the connection.
func (c *StrangerConn) Wait(ctx context.Context) StrangerResult {
	select {
	case <-c.done:
	case <-ctx.Done():
	}
	return c.Result()
}

// Result returns what was seen so far.
func (c *StrangerConn) Result() StrangerResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.res
	r.Received = append([]byte(nil), r.Received...)
	if !r.ClosedByPeer && r.Lifetime == 0 {
		r.Lifetime = time.Since(c.start)
	}
	return r
}

// Close closes the connection and waits for the reader to stop.
func (c *StrangerConn) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

// Garbage connects to addr, sends n random bytes, and waits (until ctx ends) for the peer to
// close the connection. It returns what the peer sent and how it ended.
func (s *Stranger) Garbage(ctx context.Context, addr string, n int) (StrangerResult, error) {
	c, err := s.Connect(ctx, addr)
	if err != nil {
		return StrangerResult{}, err
	}
	defer c.Close()
	junk := make([]byte, n)
	rand.Read(junk)
	// The peer may close before it has read everything: an error here is part of the result.
	c.Send(junk)
	return c.Wait(ctx), nil
}

// Silent connects to addr, sends nothing, and waits (until ctx ends) for the peer to give up on
// it. Start it in a goroutine to hold a connection open while something else happens, or use
// Connect for finer control.
func (s *Stranger) Silent(ctx context.Context, addr string) (StrangerResult, error) {
	c, err := s.Connect(ctx, addr)
	if err != nil {
		return StrangerResult{}, err
	}
	defer c.Close()
	return c.Wait(ctx), nil
}

// FloodResult sums up a Flood.
type FloodResult struct {
	Connected int   // connections that were established
	Failed    int   // connection attempts that failed (refused, timed out, ctx ended)
	Received  int64 // bytes received over all connections
	FirstErr  error // the first connection error, for messages
}

// Flood opens n connections to addr, at most parallel at a time (0 means 32), each sending
// a few random bytes, reading what comes back until the peer closes or hold has passed, and
// then closing.
func (s *Stranger) Flood(ctx context.Context, addr string, n, parallel int, hold time.Duration) FloodResult {
	if parallel <= 0 {
		parallel = 32
	}
	var (
		mu  sync.Mutex
		res FloodResult
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, parallel)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			mu.Lock()
			res.Failed += n - i
			if res.FirstErr == nil {
				res.FirstErr = ctx.Err()
			}
			mu.Unlock()
			wg.Wait()
			return res
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := s.Connect(ctx, addr)
			if err != nil {
				mu.Lock()
				res.Failed++
				if res.FirstErr == nil {
					res.FirstErr = err
				}
				mu.Unlock()
				return
			}
			junk := make([]byte, 16)
			rand.Read(junk)
			c.Send(junk)
			hctx, cancel := context.WithTimeout(ctx, hold)
			r := c.Wait(hctx)
			cancel()
			c.Close()
			mu.Lock()
			res.Connected++
			res.Received += r.ReceivedN
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res
}
