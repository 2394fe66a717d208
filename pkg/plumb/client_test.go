package plumb

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/socketpipe/socketpipe/internal/wire"
)

type closedWriter struct{}

func (closedWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// A remote half of another protocol that answered and went away before it read the request is
// still told by its hello, not taken for a login that never started it.
func TestRunVersionBeforeRequest(t *testing.T) {
	hello, _ := json.Marshal(&wire.Message{Type: wire.MsgHello, Version: "0.0.1", Protocol: 99, PID: 1})
	var out bytes.Buffer
	out.WriteString("banner\n" + wire.Magic)
	out.WriteByte(wire.FrameJSON)
	binary.Write(&out, binary.BigEndian, uint32(len(hello)))
	out.Write(hello)
	c := &Client{Remote: []string{"true"}}
	_, err := c.Run(context.Background(), &out, closedWriter{})
	var ve *VersionError
	if !errors.As(err, &ve) || ve.RemoteProtocol != 99 {
		t.Fatalf("Run = %v, want a VersionError for protocol 99", err)
	}
	// Nothing at all: the login never started it.
	_, err = c.Run(context.Background(), bytes.NewReader(nil), closedWriter{})
	var be *wire.BannerError
	if !errors.As(err, &be) {
		t.Fatalf("Run = %v, want a BannerError", err)
	}
}
