package plumb

import (
	"io"
	"net"

	"github.com/socketpipe/socketpipe/internal/seal"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// sealedLink wraps a proven connection in the -e encryption: keys derived from the secret and
// the proof's nonces, one per direction.
func sealedLink(res *rendezvous.Result, secret []byte, cipherName string, isClient bool, lv rendezvous.Liveness) (*link, error) {
	c := res.Proven.Conn
	send, recv, err := sealConn(res.Proven, secret, cipherName, isClient, lv)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &link{mode: res.Mode, send: send, recv: recv, conn: c, sealed: true}, nil
}

// sealConn is the -e encryption of one proven connection, with its own keys from its own
// nonces: what is sent, and what is received.
func sealConn(p *rendezvous.Proven, secret []byte, cipherName string, isClient bool, lv rendezvous.Liveness) (*sealSender, *seal.OpenReader, error) {
	c := p.Conn
	rendezvous.TuneRelay(c, lv) // SealWriter writes whole frames
	sealKey, openKey, err := seal.SessionKeys(secret, p.ClientNonce, p.ServerNonce, cipherName, isClient)
	if err != nil {
		return nil, nil, err
	}
	return &sealSender{w: seal.NewSealWriter(c, sealKey), conn: c}, seal.NewOpenReader(c, openKey), nil
}

// sealSender ends the encrypted stream with the authenticated end-of-stream frame, then
// half-closes the connection.
type sealSender struct {
	w    *seal.SealWriter
	conn net.Conn
}

func (s *sealSender) Write(p []byte) (int, error)         { return s.w.Write(p) }
func (s *sealSender) ReadFrom(r io.Reader) (int64, error) { return s.w.ReadFrom(r) }

func (s *sealSender) Close() error {
	err := s.w.Close()
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		if cerr := cw.CloseWrite(); err == nil {
			err = cerr
		}
	}
	return err
}
