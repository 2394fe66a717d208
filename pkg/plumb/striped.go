package plumb

import (
	"io"
	"net"

	"github.com/socketpipe/socketpipe/internal/stripe"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// stripedLink stripes the data over several proven connections (--streams), in their order:
// socketpipe relays, as with -e, between the commands' pipes and the stripe format
// (internal/stripe), whose sequence numbers put the data back in order and whose end frames
// make the end of stream exact on every connection. wrap, when set, gives each connection's
// sending and receiving sides (the -e encryption); without it they are the connections
// themselves, a half-close ending each.
func stripedLink(mode string, conns []net.Conn, wrap func(i int, c net.Conn) (io.WriteCloser, io.Reader, error), lv rendezvous.Liveness) (*link, error) {
	senders := make([]io.WriteCloser, len(conns))
	receivers := make([]io.Reader, len(conns))
	for i, c := range conns {
		rendezvous.TuneRelay(c, lv) // the stripe writer writes whole frames
		if wrap == nil {
			senders[i], receivers[i] = halfCloser{c}, c
			continue
		}
		s, r, err := wrap(i, c)
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		senders[i], receivers[i] = s, r
	}
	return &link{
		mode:   mode,
		send:   stripe.NewWriter(senders),
		recv:   stripe.NewReader(receivers),
		conn:   conns[0],
		conns:  conns,
		sealed: wrap != nil,
	}, nil
}

// halfCloser is a connection whose Close ends only the stream it sends.
type halfCloser struct{ net.Conn }

func (h halfCloser) Close() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return h.Conn.Close()
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// provenConns are the connections of proven data connections.
func provenConns(ps []*rendezvous.Proven) []net.Conn {
	cs := make([]net.Conn, len(ps))
	for i, p := range ps {
		cs[i] = p.Conn
	}
	return cs
}

// newLink makes the link of a direct data connection of one or more streams: one plain stream
// is the socket itself, handed to the commands; -e or several streams are relayed.
func newLink(res *rendezvous.Result, ps []*rendezvous.Proven, secret []byte, encrypt bool, cipherName string, isClient bool, lv rendezvous.Liveness) (*link, error) {
	switch {
	case len(ps) > 1 && encrypt:
		return stripedLink(res.Mode, provenConns(ps), func(i int, _ net.Conn) (io.WriteCloser, io.Reader, error) {
			return sealConn(ps[i], secret, cipherName, isClient, lv)
		}, lv)
	case len(ps) > 1:
		return stripedLink(res.Mode, provenConns(ps), nil, lv)
	case encrypt:
		return sealedLink(res, secret, cipherName, isClient, lv)
	}
	return plainLink(res.Mode, res.Proven.Conn, lv)
}
