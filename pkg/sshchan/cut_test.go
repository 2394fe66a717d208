package sshchan

import (
	"context"
	"io"
	"testing"
	"time"
)

// A channel whose SSH connection is cut reads as a plain end of file: a channel by itself
// cannot tell a cut from the end of the stream, so whoever stripes over channels must mark
// the exact end in the data itself.
func TestCutChannelReadsAsEOF(t *testing.T) {
	cl := login(t, forward)
	l := listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ps, err := Dial(ctx, cl, l.Addr().Port, 1, secret)
	if err != nil {
		t.Fatal(err)
	}
	sp := <-l.Proven()
	defer sp.Conn.Close()
	sp.Conn.Write([]byte("partial"))
	buf := make([]byte, 7)
	if _, err := io.ReadFull(ps[0].Conn, buf); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	n, err := ps[0].Conn.Read(buf)
	if n != 0 || err != io.EOF {
		t.Fatalf("after the cut: read %d bytes, %v; want 0 bytes and io.EOF", n, err)
	}
}
