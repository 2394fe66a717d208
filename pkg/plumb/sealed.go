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
	rendezvous.TuneRelay(c, lv) // SealWriter writes whole frames
	sealKey, openKey, err := seal.SessionKeys(secret, res.Proven.ClientNonce, res.Proven.ServerNonce, cipherName, isClient)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &link{
		mode: res.Mode,
		send: &sealSender{w: seal.NewSealWriter(c, sealKey), conn: c},
		recv: seal.NewOpenReader(c, openKey),
		conn: c,
	}, nil
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
