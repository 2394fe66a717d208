//go:build !linux || portable

package plumb

// Systems whose kernel socketpipe does not ask about a connection's acknowledgements (and
// Linux built with the portable tag): the data connection has keepalive only (rendezvous.Tune),
// which ends an idle connection to a dead peer within the liveness bound; the commands see
// the error.

import (
	"errors"
	"syscall"
)

func watchable(syscall.RawConn) (peer string, ok bool) { return "", false }

func sampleConn(syscall.RawConn) (connSample, error) {
	return connSample{}, errors.ErrUnsupported
}
