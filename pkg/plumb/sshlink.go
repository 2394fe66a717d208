package plumb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
	"github.com/socketpipe/socketpipe/pkg/sshchan"
)

// ssh mode's data. Frames on the control channel share the login session's one SSH channel,
// whose window (2 MiB in x/crypto and in OpenSSH alike) allows 2 MiB per round trip: 20 MiB/s
// across 100 ms, less than the TCP connection under it carries. With a native login the
// client opens direct-tcpip channels of that same connection instead, to a listener on the
// remote half's loopback, each proven and committed in order like a data connection, and
// stripes the data over them (internal/stripe, whose end frames tell the end of the stream
// from a cut: a channel reads a cut as a plain end of file). Then the one TCP connection's
// window is the only limit, as for one plain stream. A server that refuses forwarding
// (AllowTcpForwarding no, a restricted key) leaves the frames.
//
// Channels cost latency, though: a request/response client (git, borg through --ssh -m ssh)
// pays for the stripe format's relays and the remote host's extra loopback hop on every round
// trip, a third more on loopback. So, as the default's streams, they are used only where the
// window limits: where one channel's window per round trip carries less than TargetRate, on
// paths longer than about 1.7 ms. A LAN keeps the frames.

// SSHChannelWindow is the window of one SSH channel: what x/crypto and OpenSSH both grant.
const SSHChannelWindow = 2 << 20

// chooseChannels is how many channels carry ssh mode's data on a path of round trip rtt on
// which one TCP stream's window is window bytes: 0 (frames on the session) when the round trip
// is unknown or one channel's window carries TargetRate; else enough to carry it, but no more
// than hold twice the TCP window together (beyond that TCP's window, not theirs, limits);
// 2 to sshchan.MaxChannels.
func chooseChannels(rtt time.Duration, window int64) int {
	if rtt <= 0 || SSHChannelWindow/rtt.Seconds() >= TargetRate {
		return 0
	}
	need := math.Ceil(TargetRate * rtt.Seconds() / SSHChannelWindow)
	hold := math.Ceil(2 * float64(window) / SSHChannelWindow)
	return min(max(int(min(need, hold)), 2), sshchan.MaxChannels)
}

// channelsStory is what -v says of the choice of channels: the figures behind it.
func channelsStory(n int, rtt time.Duration) string {
	if rtt <= 0 {
		return "the data in frames on the login's session: the round trip is not known"
	}
	one := fmt.Sprintf("round trip %s, one SSH channel's 2 MiB window carries about %s", roundTrip(rtt), rate(SSHChannelWindow/rtt.Seconds()))
	if n == 0 {
		return fmt.Sprintf("the data in frames on the login's session: %s, enough for %.0f Gbit/s", one, TargetRate*8/1e9)
	}
	return fmt.Sprintf("the data over %d SSH channels of the login's connection: %s", n, one)
}

// offerChannels is the request's offer of channels: only a native login can open them, and
// only ssh mode, asked for or fallen back to, uses them.
func (c *Client) offerChannels(mode string) int {
	if c.Forward == nil || (mode != rendezvous.ModeSSH && mode != rendezvous.ModeAuto) {
		return 0
	}
	return sshchan.MaxChannels
}

// sshLink is the client's link in ssh mode: channels when both halves can open them, else
// frames on the control channel.
func (c *Client) sshLink(ctx context.Context, hello *wire.Message, ctl *wire.Conn, msgs <-chan *wire.Message, secret []byte) (*link, error) {
	frames := framesLink(ctl)
	switch {
	case c.Forward == nil:
		c.logf("ssh mode: the data in frames on the login's session (only a native login opens SSH channels)")
		return frames, nil
	case hello.Channels < 1:
		c.logf("ssh mode: the data in frames on the login's session: the remote half (socketpipe %s) takes no SSH channels", quote.Printable(hello.Version, 64))
		return frames, nil
	}
	// The round trip is timed while the remote half's listen message is on its way.
	rttc := make(chan time.Duration, 1)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, rendezvous.StreamsTimeout)
		defer cancel()
		rttc <- loginRoundTrip(rctx, c.Forward)
	}()
	port, err := awaitLoopback(ctx, msgs, c.logf)
	if err != nil {
		return nil, err
	}
	rtt := <-rttc
	n := min(chooseChannels(rtt, usableWindow(hello)), hello.Channels)
	var ps []*rendezvous.Proven
	switch {
	case n == 0:
		c.logf("ssh mode: %s", channelsStory(0, rtt))
	case port == 0:
		c.logf("ssh mode: the data in frames on the login's session: the remote half cannot listen on its loopback")
	default:
		dctx, cancel := context.WithTimeout(ctx, rendezvous.StreamsTimeout)
		ps, err = sshchan.Dial(dctx, c.Forward, port, n, secret)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			// Nothing is lost: the frames carry the data at the session's window.
			c.logf("ssh mode: the data in frames on the login's session: %v", err)
		default:
			c.logf("ssh mode: %s", channelsStory(n, rtt))
		}
	}
	if err := ctl.Send(&wire.Message{Type: wire.MsgStreams, Streams: len(ps)}); err != nil {
		closeAll(provenConns(ps))
		return nil, err
	}
	if len(ps) == 0 {
		return frames, nil
	}
	return stripedLink(rendezvous.ModeSSH, provenConns(ps), nil, c.Liveness)
}

// loginRoundTrip is the SSH connection's round trip as chooseChannels needs it. One request's
// time includes the server's scheduling, which a busy host stretches by milliseconds: a LAN can
// look like a 4 ms path. So a time near the frames' bound (about 1.7 ms) is timed again, up
// to three times, and the least counts; one well below or far above it is taken at once.
func loginRoundTrip(ctx context.Context, c sshchan.Dialer) time.Duration {
	ns := SSHChannelWindow * 1e9 / TargetRate
	bound := time.Duration(ns)
	var least time.Duration
	for range 3 {
		d := sshchan.RoundTrip(ctx, c)
		if d <= 0 {
			return least
		}
		if least == 0 || d < least {
			least = d
		}
		if least < bound || least > 4*bound {
			break
		}
	}
	return least
}

// awaitLoopback waits for the remote half's loopback listener, the listen message of ssh mode,
// and returns its port: 0 when it has none.
func awaitLoopback(ctx context.Context, msgs <-chan *wire.Message, logf func(string, ...any)) (int, error) {
	t := time.NewTimer(rendezvous.StreamsTimeout)
	defer t.Stop()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return 0, rendezvous.ErrControlClosed
			}
			switch {
			case m.Type == wire.MsgListen && m.Mode == rendezvous.ModeSSH:
				return loopbackPort(m.Addr)
			case m.Type == wire.MsgListen:
				// A way of connecting offered late: ssh mode is agreed already.
			case m.Type == wire.MsgNote:
				if logf != nil {
					logf("remote: %s", quote.Printable(m.Note, 512))
				}
			case m.Type == wire.MsgError:
				return 0, &rendezvous.RemoteError{Msg: m.Error}
			default:
				return 0, fmt.Errorf("unexpected %s message where the remote half's loopback address was expected", quote.Word(m.Type))
			}
		case <-t.C:
			return 0, errors.New("the remote half did not say where its SSH channels go")
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// loopbackPort is the port of addr, the remote half's listener, which must be on its IPv4
// loopback: the channels go nowhere else. "" is no listener (0).
func loopbackPort(addr string) (int, error) {
	if addr == "" {
		return 0, nil
	}
	host, p, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || host != "127.0.0.1" || port < 1 || port > 65535 {
		return 0, fmt.Errorf("the remote half's loopback address %s is not 127.0.0.1:PORT", quote.Word(addr))
	}
	return port, nil
}

// sshLink is the remote half's link in ssh mode: the client's channels, or frames on the
// control channel when it opens none.
func (s *Server) sshLink(ctx context.Context, rs *rendezvous.Server, hello *wire.Message, ctl *wire.Conn, msgs <-chan *wire.Message) (*link, error) {
	frames := framesLink(ctl)
	if hello.Channels < 1 {
		return frames, nil
	}
	ln, err := rendezvous.Listen(net.IPv4(127, 0, 0, 1), rendezvous.PortRange{}, rs.Req.Secret, rendezvous.RoleServer)
	addr := ""
	if err == nil {
		addr = ln.Addr().String()
	} else {
		ctl.Send(&wire.Message{Type: wire.MsgNote, Note: "cannot listen on the loopback for SSH channels: " + err.Error()})
	}
	if err := ctl.Send(&wire.Message{Type: wire.MsgListen, Mode: rendezvous.ModeSSH, Addr: addr}); err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	n, err := rs.AwaitStreams(ctx, msgs, 0, hello.Channels)
	if err == nil && n > 0 && ln == nil {
		err = errors.New("the client opened SSH channels to no listener")
	}
	if err != nil || n == 0 {
		if ln != nil {
			ln.Close()
		}
		if err != nil {
			return nil, err
		}
		return frames, nil
	}
	ps, err := rs.Channels(ctx, ln, n, msgs)
	if err != nil {
		return nil, err
	}
	return stripedLink(rendezvous.ModeSSH, provenConns(ps), nil, s.Liveness)
}

// framesLink is ssh mode's link without channels: data frames on the control channel.
func framesLink(ctl *wire.Conn) *link {
	return &link{mode: rendezvous.ModeSSH, send: &frameWriter{ctl: ctl}}
}

// framed reports whether the data goes in frames on the control channel (ssh mode without
// channels), read by the control reader rather than from a connection of its own.
func (l *link) framed() bool { return l.mode == rendezvous.ModeSSH && l.recv == nil }
