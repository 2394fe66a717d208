package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func frames(t testing.TB, msgs ...*Message) []byte {
	var b bytes.Buffer
	c := NewConn(strings.NewReader(""), &b)
	for _, m := range msgs {
		if err := c.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func TestControlRoundTripPastBanner(t *testing.T) {
	wire := frames(t, &Message{Type: MsgHello, Version: "1.2", Protocol: 1, PID: 42},
		&Message{Type: MsgStatus, Exit: 3, Signal: "KILL"})
	for _, banner := range []string{"", "Welcome to host!\n", "\x00\x00socketpipe\x00", strings.Repeat("motd ", 20000) + "\x00socketpipe-ct"} {
		c := NewConn(io.MultiReader(strings.NewReader(banner), bytes.NewReader(wire)), io.Discard)
		m, err := c.Recv()
		if err != nil {
			t.Fatalf("banner %.20q: %v", banner, err)
		}
		if m.Type != MsgHello || m.PID != 42 || m.Version != "1.2" {
			t.Fatalf("got %+v", m)
		}
		m, err = c.Recv()
		if err != nil || m.Type != MsgStatus || m.Exit != 3 || m.Signal != "KILL" {
			t.Fatalf("got %+v, %v", m, err)
		}
		if _, err := c.Recv(); err != io.EOF {
			t.Fatalf("after the last frame: %v, want EOF", err)
		}
		if want := min(len(banner), 4096); len(c.Banner) != want {
			t.Errorf("kept %d bytes of banner, want %d", len(c.Banner), want)
		}
	}
}

func TestControlNoMagic(t *testing.T) {
	c := NewConn(strings.NewReader("bash: socketpipe: command not found\n"), io.Discard)
	_, err := c.Recv()
	var be *BannerError
	if !errors.As(err, &be) || !errors.Is(err, ErrNoMagic) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(string(be.Banner), "command not found") {
		t.Fatalf("banner %q", be.Banner)
	}
	// Endless noise is bounded.
	c = NewConn(io.LimitReader(repeatReader('x'), 3*MaxBanner), io.Discard)
	if _, err := c.Recv(); !errors.Is(err, ErrNoMagic) {
		t.Fatalf("endless banner: %v", err)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestControlLimits(t *testing.T) {
	mk := func(typ byte, size uint32, payload string) []byte {
		b := []byte(Magic)
		b = append(b, typ)
		b = binary.BigEndian.AppendUint32(b, size)
		return append(b, payload...)
	}
	tests := []struct {
		wire []byte
		want string
	}{
		{mk('J', MaxControlFrame+1, ""), "exceeds the limit"},
		{mk('D', MaxDataFrame+1, ""), "exceeds the limit"},
		{mk('E', 3, "abc"), "end-of-data frame with"},
		{mk('Z', 0, ""), "unknown control frame type"},
		{mk('J', 10, "{}"), "unexpected EOF"},
		{mk('J', 2, "{}"), "without a type"},
		{mk('J', 4, "nope"), "malformed"},
		{mk('D', 1, "x"), "unexpected frame type"},
	}
	for _, tt := range tests {
		_, err := NewConn(bytes.NewReader(tt.wire), io.Discard).Recv()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.wire, err, tt.want)
		}
	}
}

func FuzzControl(f *testing.F) {
	f.Add(frames(f, &Message{Type: MsgRequest, Argv: []string{"cat"}, Secret: make([]byte, 32)}))
	f.Add(frames(f, &Message{Type: MsgHello, Streams: 64, WindowSend: 4 << 20, WindowRecv: 6 << 20},
		&Message{Type: MsgStreams, Streams: 8}))
	f.Add(frames(f, &Message{Type: MsgRequest, Mode: "ssh", Channels: 16},
		&Message{Type: MsgListen, Mode: "ssh", Addr: "127.0.0.1:40000"}, &Message{Type: MsgStreams, Streams: 0}))
	f.Add([]byte("banner\n" + Magic + "J\x00\x00\x00\x02{}"))
	f.Add([]byte(Magic + "D\x00\x00\x00\x01xE\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, wire []byte) {
		c := NewConn(bytes.NewReader(wire), io.Discard)
		for i := 0; i < 100; i++ {
			typ, n, err := c.ReadFrame()
			if err != nil {
				return
			}
			if n < 0 || (typ == FrameJSON && n > MaxControlFrame) || (typ == FrameData && n > MaxDataFrame) {
				t.Fatalf("frame %q of %d bytes accepted", typ, n)
			}
			p := make([]byte, n)
			if err := c.ReadPayload(p); err != nil {
				return
			}
			if typ == FrameJSON {
				if m, err := DecodeMessage(p); err == nil && m.Type == "" {
					t.Fatal("message without a type accepted")
				}
			}
		}
	})
}
