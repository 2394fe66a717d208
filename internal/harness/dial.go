package harness

import (
	"context"
	"net"
)

// dialIn dials addr from inside the named network namespace ("" for the current one).
func dialIn(ctx context.Context, netns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(netns, func() error {
		var err error
		// A literal address yields one dial attempt in this goroutine: no helper goroutine
		// (happy eyeballs) could create the socket on another thread.
		c, err = (&net.Dialer{FallbackDelay: -1}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// listenIn listens on addr inside the named network namespace ("" for the current one).
func listenIn(netns, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := inNetns(netns, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}
