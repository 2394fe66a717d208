package rendezvous

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/wire"
)

// firstConnection runs both sides of a rendezvous in mode over loopback and returns the two
// results, each still holding the listener that took the connection.
func firstConnection(t *testing.T, mode string) (*Client, *Result, *Server, *Result) {
	t.Helper()
	s := secret(t)
	lo := net.IPv4(127, 0, 0, 1)
	c := &Client{Mode: mode, Secret: s, Timeout: 5 * time.Second, BackIP: lo, ReverseIP: lo}
	back, err := c.ListenBack()
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Req: &wire.Message{Mode: mode, Secret: s, Addr: back, TimeoutMS: 5000}, ListenIP: lo}
	rev, note := srv.ListenReverse()
	if mode == ModeReverse && rev == "" {
		t.Fatal(note)
	}
	ctl := wire.NewConn(strings.NewReader(""), io.Discard)
	type done struct {
		r   *Result
		err error
	}
	sch := make(chan done, 1)
	go func() {
		r, err := srv.Run(context.Background(), ctl, make(chan *wire.Message))
		sch <- done{r, err}
	}()
	cres, err := c.Run(context.Background(), ctl, &wire.Message{Type: wire.MsgHello, Addr: rev}, make(chan *wire.Message))
	if err != nil {
		t.Fatal(err)
	}
	sd := <-sch
	if sd.err != nil {
		t.Fatal(sd.err)
	}
	t.Cleanup(func() {
		cres.Proven.Conn.Close()
		sd.r.Proven.Conn.Close()
	})
	return c, cres, srv, sd.r
}

// bothStreams runs Client.Streams and Server.Streams at once.
func bothStreams(t *testing.T, c *Client, cres *Result, s *Server, sres *Result, n int) ([]*Proven, []*Proven) {
	t.Helper()
	type done struct {
		ps  []*Proven
		err error
	}
	sch := make(chan done, 1)
	go func() {
		ps, err := s.Streams(context.Background(), sres, n, make(chan *wire.Message))
		sch <- done{ps, err}
	}()
	cps, err := c.Streams(context.Background(), cres, n, make(chan *wire.Message))
	if err != nil {
		t.Fatal(err)
	}
	sd := <-sch
	if sd.err != nil {
		t.Fatal(sd.err)
	}
	t.Cleanup(func() {
		for i := range n {
			cps[i].Conn.Close()
			sd.ps[i].Conn.Close()
		}
	})
	return cps, sd.ps
}

// checkOrder sends each stream's index over it both ways and checks that the two sides agree
// on which connection is which.
func checkOrder(t *testing.T, cps, sps []*Proven) {
	t.Helper()
	if len(cps) != len(sps) {
		t.Fatalf("client has %d streams, server %d", len(cps), len(sps))
	}
	for i := range cps {
		for _, dir := range [][2]*Proven{{cps[i], sps[i]}, {sps[i], cps[i]}} {
			if _, err := dir[0].Conn.Write([]byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
			dir[1].Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			var b [1]byte
			if _, err := io.ReadFull(dir[1].Conn, b[:]); err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			if int(b[0]) != i {
				t.Fatalf("stream %d on one side is stream %d on the other", i, b[0])
			}
		}
	}
}

// The other connections of --streams are made the way the first was, each proven, and both
// sides hold them in the same order; the listener that took them is closed after.
func TestStreamsProvenAndOrdered(t *testing.T) {
	for _, mode := range []string{ModeBack, ModeReverse} {
		t.Run(mode, func(t *testing.T) {
			c, cres, s, sres := firstConnection(t, mode)
			if cres.Mode != mode {
				t.Fatalf("mode %s, want %s", cres.Mode, mode)
			}
			l := cres.listener
			if mode == ModeReverse {
				l = sres.listener
			}
			cps, sps := bothStreams(t, c, cres, s, sres, 5)
			checkOrder(t, cps, sps)
			for i := range cps {
				if string(cps[i].ClientNonce) != string(sps[i].ClientNonce) || string(cps[i].ServerNonce) != string(sps[i].ServerNonce) {
					t.Fatalf("stream %d: the two sides hold different nonces", i)
				}
				for j := range i {
					if string(cps[i].ClientNonce) == string(cps[j].ClientNonce) {
						t.Fatalf("streams %d and %d share their nonces", j, i)
					}
				}
			}
			if conn, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
				conn.Close()
				t.Fatal("the listener still accepts after taking the streams asked for")
			}
		})
	}
}

// A stranger at the listener while the other connections are made takes no stream's place:
// it fails the proof and the streams are still the remote half's, in order.
func TestStreamsStrangerTakesNoSlot(t *testing.T) {
	c, cres, s, sres := firstConnection(t, ModeBack)
	stranger, err := net.Dial("tcp", cres.listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	stranger.Write([]byte("SPD2S0123456789abcdef" + strings.Repeat("x", 32)))
	// Its proof fails at once; the streams then take the listener's next connections. (A
	// listener closed while a proof is under way closes it without counting it.)
	for deadline := time.Now().Add(10 * time.Second); cres.listener.Rejected() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	cps, sps := bothStreams(t, c, cres, s, sres, 3)
	checkOrder(t, cps, sps)
	if n := cres.listener.Rejected(); n != 1 {
		t.Fatalf("the listener rejected %d connections, want the stranger's", n)
	}
}

// A stream whose commit names the wrong index, or carries the wrong MAC, is refused.
func TestStreamCommitBound(t *testing.T) {
	sec := secret(t)
	for _, tt := range []struct {
		name  string
		index int
		mac   func([]byte) []byte
	}{
		{"out of range", 3, nil},
		{"index rewritten", 1, func(b []byte) []byte { b[1] = 2; return b }},
		{"other secret", 1, func(b []byte) []byte { b[5] ^= 1; return b }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			nc, ns := make([]byte, NonceSize), make([]byte, NonceSize)
			ns[0] = 1
			go func() {
				w := append([]byte{commitStream, byte(tt.index)}, streamMAC(sec, tt.index, nc, ns)...)
				if tt.mac != nil {
					w = tt.mac(w)
				}
				a.Write(w)
			}()
			p := &Proven{Conn: b, ClientNonce: nc, ServerNonce: ns}
			if i, err := p.AwaitStream(sec, 3, time.Now().Add(time.Second)); !errors.Is(err, ErrProof) {
				t.Fatalf("AwaitStream = %d, %v; want a refusal", i, err)
			}
		})
	}
}

// A stream that never comes ends the client's wait within its bound, with an error that
// names the stream, and the listener is closed.
func TestStreamsTimeout(t *testing.T) {
	c, cres, _, _ := firstConnection(t, ModeBack)
	c.StreamsTimeout = 300 * time.Millisecond
	start := time.Now()
	_, err := c.Streams(context.Background(), cres, 3, make(chan *wire.Message))
	var se *StreamSetupError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "data connection 2 of 3") {
		t.Fatalf("Streams = %v, want the missing stream named", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Streams gave up after %v, want about 300ms", d)
	}
	if conn, err := net.DialTimeout("tcp", cres.listener.Addr().String(), time.Second); err == nil {
		conn.Close()
		t.Fatal("the listener still accepts after Streams gave up")
	}
}

// The remote half's error while the streams are made ends the client's wait with it.
func TestStreamsRemoteError(t *testing.T) {
	c, cres, _, _ := firstConnection(t, ModeReverse)
	msgs := make(chan *wire.Message, 1)
	msgs <- &wire.Message{Type: wire.MsgError, Error: "no more"}
	// The remote half's listener (sres) is open but nobody answers its proofs' commits.
	_, err := c.Streams(context.Background(), cres, 3, msgs)
	var re *RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("Streams = %v, want the remote half's error", err)
	}
}

// In reverse mode the client dials the other streams as soon as it has committed the first,
// so a stream can reach the remote half's listener, and commit, before the remote half has
// read the first commit (a delayed or retransmitted segment). It must become that stream, not
// be closed as a loser of the race: that reset it under the data.
func TestReverseStreamBeforeFirstCommit(t *testing.T) {
	sec := secret(t)
	lo := net.IPv4(127, 0, 0, 1)
	srv := &Server{Req: &wire.Message{Mode: ModeReverse, Secret: sec, TimeoutMS: 5000}, ListenIP: lo}
	rev, note := srv.ListenReverse()
	if rev == "" {
		t.Fatal(note)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first, err := Dial(ctx, rev, sec, RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Conn.Close()
	type done struct {
		r   *Result
		err error
	}
	sch := make(chan done, 1)
	go func() {
		r, err := srv.Run(ctx, wire.NewConn(strings.NewReader(""), io.Discard), make(chan *wire.Message))
		sch <- done{r, err}
	}()
	// Stream 1, proven and committed, with data behind its commit, all before the first
	// connection's commit.
	second, err := Dial(ctx, rev, sec, RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Conn.Close()
	if err := second.CommitStream(sec, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Conn.Write([]byte("stream 1")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the remote half reads stream 1's commit first
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	sd := <-sch
	if sd.err != nil {
		t.Fatal(sd.err)
	}
	if sd.r.Mode != ModeReverse || !bytes.Equal(sd.r.Proven.ClientNonce, first.ClientNonce) {
		t.Fatalf("Run kept %s connection %x, want the first", sd.r.Mode, sd.r.Proven.ClientNonce)
	}
	ps, err := srv.Streams(ctx, sd.r, 2, make(chan *wire.Message))
	if err != nil {
		t.Fatal(err)
	}
	defer ps[1].Conn.Close()
	if !bytes.Equal(ps[1].ClientNonce, second.ClientNonce) {
		t.Fatal("stream 1 is not the connection the client committed as stream 1")
	}
	buf := make([]byte, 8)
	ps[1].Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(ps[1].Conn, buf); err != nil || string(buf) != "stream 1" {
		t.Fatalf("stream 1 read %q, %v", buf, err)
	}
}
