package rendezvous

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func secret(t testing.TB) []byte {
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProofBothWays(t *testing.T) {
	s := secret(t)
	for _, listenerRole := range []byte{RoleClient, RoleServer} {
		dialerRole := RoleServer
		if listenerRole == RoleServer {
			dialerRole = RoleClient
		}
		l, err := Listen(net.IPv4(127, 0, 0, 1), PortRange{}, s, listenerRole)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Dial(context.Background(), l.Addr().String(), s, dialerRole)
		if err != nil {
			t.Fatal(err)
		}
		var q *Proven
		select {
		case q = <-l.Proven():
		case <-time.After(10 * time.Second):
			t.Fatal("no proven connection")
		}
		if !bytes.Equal(p.ClientNonce, q.ClientNonce) || !bytes.Equal(p.ServerNonce, q.ServerNonce) {
			t.Fatal("the two ends disagree on the nonces")
		}
		client, server := p, q
		if listenerRole == RoleClient {
			client, server = q, p
		}
		if err := client.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := server.AwaitCommit(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		// The connection is clean after the proof: data flows both ways.
		go client.Conn.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(server.Conn, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("after the proof: %q %v", buf, err)
		}
		p.Conn.Close()
		q.Conn.Close()
		l.Close()
	}
}

func TestStrangersGetNothing(t *testing.T) {
	s := secret(t)
	l, err := Listen(net.IPv4(127, 0, 0, 1), PortRange{}, s, RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	// A silent stranger, a garbage sender, and one with the wrong secret come first.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	garbage, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	garbage.Write(bytes.Repeat([]byte("GET / HTTP/1.0\r\n"), 100))
	if _, err := Dial(context.Background(), addr, secret(t), RoleServer); !errors.Is(err, ErrProof) {
		t.Fatalf("wrong secret: %v", err)
	}
	// A reflection of the client's own role fails too.
	if _, err := Dial(context.Background(), addr, s, RoleClient); !errors.Is(err, ErrProof) {
		t.Fatalf("same role: %v", err)
	}
	// What the strangers received is only the listener's hello, never data.
	garbage.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(garbage)
	if len(got) > helloSize+32 {
		t.Fatalf("a stranger received %d bytes", len(got))
	}
	// The real peer still gets through, at once.
	p, err := Dial(context.Background(), addr, s, RoleServer)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Conn.Close()
	select {
	case q := <-l.Proven():
		q.Conn.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the real peer was not accepted")
	}
	// The listener counts a rejection once its side of the proof has failed, which may come
	// after the dialler's side did: wait for it, with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for l.Rejected() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l.Rejected() < 3 {
		t.Errorf("rejected %d, want at least 3", l.Rejected())
	}
}

func TestListenRefusesAllInterfaces(t *testing.T) {
	if _, err := Listen(net.IPv4zero, PortRange{}, secret(t), RoleClient); err == nil {
		t.Fatal("listened on 0.0.0.0")
	}
	if _, err := Listen(nil, PortRange{}, secret(t), RoleClient); err == nil {
		t.Fatal("listened on no address")
	}
}

func TestListenPortRange(t *testing.T) {
	s := secret(t)
	first, err := Listen(net.IPv4(127, 0, 0, 1), PortRange{}, s, RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	port := first.Addr().Port
	first.Close()
	// Occupy the first port of a two-port range: the listener takes the second or the first
	// if the kernel gave the port away meanwhile; either is in the range.
	l, err := Listen(net.IPv4(127, 0, 0, 1), PortRange{port, port + 1}, s, RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if p := l.Addr().Port; p < port || p > port+1 {
		t.Fatalf("port %d outside %d-%d", p, port, port+1)
	}
	for _, bad := range []string{"0-10", "10-5", "x", "1-70000"} {
		if _, err := ParsePortRange(bad); err == nil {
			t.Errorf("ParsePortRange(%q) accepted", bad)
		}
	}
}
