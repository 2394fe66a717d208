package rendezvous

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"sync"
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

// relay connects to both addresses and copies bytes between the two connections, as a third
// party that can reach both listeners would; it returns the connections and how many bytes it
// copied each way once they end.
func relay(t *testing.T, a, b string) (done <-chan [2]int64) {
	t.Helper()
	ca, err := net.Dial("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := net.Dial("tcp", b)
	if err != nil {
		ca.Close()
		t.Fatal(err)
	}
	ch := make(chan [2]int64, 1)
	go func() {
		var n [2]int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			n[1], _ = io.Copy(ca, cb)
			ca.Close()
		}()
		n[0], _ = io.Copy(cb, ca)
		cb.Close()
		wg.Wait()
		ch <- n
	}()
	return ch
}

// Two listeners spliced together by a relay: each half accepted, so each names the other as
// the dialler in its MAC, and neither accepts the other's. Neither connection is delivered.
func TestSplicedListenersFail(t *testing.T) {
	s := secret(t)
	lc, err := Listen(net.IPv4(127, 0, 0, 1), PortRange{}, s, RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	ls, err := Listen(net.IPv4(127, 0, 0, 1), PortRange{}, s, RoleServer)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	done := relay(t, lc.Addr().String(), ls.Addr().String())
	deadline := time.After(3 * ProofTimeout)
	for lc.Rejected() < 1 || ls.Rejected() < 1 {
		select {
		case p := <-lc.Proven():
			p.Conn.Close()
			t.Fatal("the client's listener accepted a spliced connection")
		case p := <-ls.Proven():
			p.Conn.Close()
			t.Fatal("the server's listener accepted a spliced connection")
		case <-deadline:
			t.Fatalf("rejections: client %d, server %d; want both", lc.Rejected(), ls.Rejected())
		case <-time.After(10 * time.Millisecond): // polling the counts, bounded by the deadline
		}
	}
	select {
	case n := <-done:
		// Each side sends its hello and its MAC, and nothing after a MAC that fails.
		if max := int64(helloSize + sha256.Size); n[0] > max || n[1] > max {
			t.Fatalf("the relay carried %d and %d bytes, more than a hello and a MAC", n[0], n[1])
		}
	case <-time.After(3 * ProofTimeout):
		t.Fatal("the relay's connections were not closed")
	}
}

// The MAC binds the direction: the proof succeeds only when exactly one end dialled.
func TestProofBindsDirection(t *testing.T) {
	s := secret(t)
	for _, tt := range []struct {
		clientDialled, serverDialled, ok bool
	}{
		{true, false, true},
		{false, true, true},
		{false, false, false}, // a splice: both accepted
		{true, true, false},
	} {
		a, b := tcpConns(t) // both ends of the proof write before they read: not net.Pipe
		errs := make(chan error, 1)
		go func() {
			_, err := Prove(b, s, RoleServer, tt.serverDialled)
			b.Close()
			errs <- err
		}()
		_, err := Prove(a, s, RoleClient, tt.clientDialled)
		a.Close()
		serr := <-errs
		if tt.ok && (err != nil || serr != nil) {
			t.Errorf("client dialled %v, server dialled %v: %v, %v", tt.clientDialled, tt.serverDialled, err, serr)
		}
		if !tt.ok && !errors.Is(err, ErrProof) {
			t.Errorf("client dialled %v, server dialled %v: the client's proof gave %v, want ErrProof", tt.clientDialled, tt.serverDialled, err)
		}
	}
}
