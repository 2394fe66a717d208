// Package sshchan carries data connections as direct-tcpip channels of the login's own SSH
// connection (ssh mode with a native login).
//
// Data frames on the control channel share one SSH channel, whose window x/crypto fixes at
// 2 MiB: across a long path that window, not the network, sets the rate. K channels to the
// remote half's loopback listener each get their own window, so only the one TCP
// connection's window limits them. Each channel carries the same proof as every data
// connection (rendezvous.Prove): whoever else on the remote host connects to the loopback
// port is refused.
package sshchan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// RefusedError reports that the SSH server would not open a direct-tcpip channel
// (AllowTcpForwarding no, PermitOpen none, a forced command): the caller falls back to
// data frames on the control channel.
type RefusedError struct {
	Reason string // the server's words, as sent
	Err    error
}

func (e *RefusedError) Error() string {
	return "the SSH server refused a forwarded channel: " + e.Reason
}
func (e *RefusedError) Unwrap() error { return e.Err }

// A Dialer opens a direct-tcpip channel to addr, and sends global requests: *ssh.Client
// is one.
type Dialer interface {
	Dial(network, addr string) (net.Conn, error)
	SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error)
}

// RoundTrip times one round trip of c's connection: a keepalive@openssh.com request, which
// servers answer at once (OpenSSH with a failure, as for any request it does not know). It
// gives up with ctx, and returns 0 when the server gave no answer.
func RoundTrip(ctx context.Context, c Dialer) time.Duration {
	start := time.Now()
	answered := make(chan error, 1)
	go func() {
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		answered <- err
	}()
	select {
	case err := <-answered:
		if err != nil {
			return 0
		}
		return time.Since(start)
	case <-ctx.Done():
		return 0
	}
}

// MaxChannels is the most channels Dial opens: channel i is committed as stream i
// (rendezvous.CommitStream), whose index is below rendezvous.MaxStreams.
const MaxChannels = 16

// Dial opens n direct-tcpip channels through c to port on the remote host's loopback, proves
// each as the client and commits channel i (from 0) as stream i+1, so that the remote half
// (rendezvous.Server.Channels) puts them in the same order. It returns them in that order. It
// gives up with ctx: a server that never answers a channel request cannot hang it. On any
// failure the channels opened so far are closed.
func Dial(ctx context.Context, c Dialer, port, n int, secret []byte) ([]*rendezvous.Proven, error) {
	if n < 1 || n > MaxChannels {
		return nil, fmt.Errorf("want 1 to %d channels, not %d", MaxChannels, n)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	type result struct {
		i   int
		p   *rendezvous.Proven
		err error
	}
	results := make(chan result, n)
	for i := 0; i < n; i++ {
		go func() {
			p, err := dialOne(ctx, c, addr, secret, i+1)
			if err != nil {
				err = fmt.Errorf("channel %d of %d: %w", i+1, n, err)
			}
			results <- result{i, p, err}
		}()
	}
	ps := make([]*rendezvous.Proven, n)
	var first error
	for range n {
		r := <-results
		switch {
		case r.err != nil:
			first = errors.Join(first, r.err)
		default:
			ps[r.i] = r.p
		}
	}
	if first != nil {
		for _, p := range ps {
			if p != nil {
				p.Conn.Close()
			}
		}
		return nil, first
	}
	return ps, nil
}

// dialOne opens one channel, proves it and commits it as stream index. ssh channels have no
// deadlines, so ctx and the proof's own bound close the channel instead.
func dialOne(ctx context.Context, c Dialer, addr string, secret []byte, index int) (*rendezvous.Proven, error) {
	type opened struct {
		conn net.Conn
		err  error
	}
	ch := make(chan opened, 1)
	go func() {
		conn, err := c.Dial("tcp", addr)
		ch <- opened{conn, err}
	}()
	var conn net.Conn
	select {
	case o := <-ch:
		if o.err != nil {
			if oe := (*ssh.OpenChannelError)(nil); errors.As(o.err, &oe) && oe.Reason != ssh.ConnectionFailed {
				return nil, &RefusedError{Reason: oe.Message, Err: o.err}
			}
			return nil, fmt.Errorf("opening a channel to %s: %w", addr, o.err)
		}
		conn = o.conn
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.conn != nil {
				o.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
	pctx, cancel := context.WithTimeout(ctx, rendezvous.ProofTimeout)
	defer cancel()
	stop := context.AfterFunc(pctx, func() { conn.Close() })
	p, err := rendezvous.Prove(conn, secret, rendezvous.RoleClient, true)
	if err == nil {
		err = p.CommitStream(secret, index)
	}
	if !stop() || err != nil {
		conn.Close()
		if err == nil || pctx.Err() != nil {
			err = fmt.Errorf("proving the channel to %s: %w", addr, context.Cause(pctx))
		} else {
			err = fmt.Errorf("proving the channel to %s: %w", addr, err)
		}
		return nil, err
	}
	return p, nil
}
