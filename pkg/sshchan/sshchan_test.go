package sshchan

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// forwarder is an in-process SSH server that answers direct-tcpip requests as policy says.
type forwarder int

const (
	forward forwarder = iota // open the channel to the asked address
	refuse                   // reject it as sshd does with AllowTcpForwarding no
	silent                   // never answer the request
)

// login starts an in-process SSH server on loopback with the given policy and returns a
// client logged in to it.
func login(t *testing.T, policy forwarder) *ssh.Client {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	conf := &ssh.ServerConfig{NoClientAuth: true}
	conf.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, chans, reqs, err := ssh.NewServerConn(c, conf)
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		for nc := range chans {
			if nc.ChannelType() != "direct-tcpip" || policy == refuse {
				nc.Reject(ssh.Prohibited, "administratively prohibited")
				continue
			}
			if policy == silent {
				continue
			}
			go serveChannel(nc)
		}
	}()
	cl, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: "u", HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func serveChannel(nc ssh.NewChannel) {
	var m struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &m); err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	out, err := net.Dial("tcp", net.JoinHostPort(m.Host, strconv.Itoa(int(m.Port))))
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, creqs, err := nc.Accept()
	if err != nil {
		out.Close()
		return
	}
	go ssh.DiscardRequests(creqs)
	go func() { io.Copy(out, ch); out.(*net.TCPConn).CloseWrite() }()
	io.Copy(ch, out)
	ch.CloseWrite()
}

var secret = bytes.Repeat([]byte{7}, 32)

func listen(t *testing.T) *rendezvous.Listener {
	t.Helper()
	l, err := rendezvous.Listen(net.IPv4(127, 0, 0, 1), rendezvous.PortRange{}, secret, rendezvous.RoleServer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Every channel reaches the loopback listener as a proven connection and carries bytes
// exactly, in both directions.
func TestDialProvesEveryChannel(t *testing.T) {
	cl := login(t, forward)
	l := listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 4
	ps, err := Dial(ctx, cl, l.Addr().Port, n, secret)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != n {
		t.Fatalf("got %d channels, want %d", len(ps), n)
	}
	// The listener proves them in any order: pair each with its dialled end by nonce.
	byNonce := map[string]*rendezvous.Proven{}
	for i := 0; i < n; i++ {
		select {
		case sp := <-l.Proven():
			byNonce[string(sp.ClientNonce)] = sp
		case <-ctx.Done():
			t.Fatalf("the listener proved %d of %d channels", i, n)
		}
	}
	for i, p := range ps {
		sp := byNonce[string(p.ClientNonce)]
		if sp == nil {
			t.Fatalf("channel %d: no proven connection at the listener has its nonce", i)
		}
		if idx, err := sp.AwaitStream(secret, n+1, time.Now().Add(5*time.Second)); err != nil || idx != i+1 {
			t.Fatalf("channel %d: committed as stream %d (%v), want %d", i, idx, err, i+1)
		}
		want := bytes.Repeat([]byte{byte(i)}, 1<<20+i)
		go func() { p.Conn.Write(want); p.Conn.(interface{ CloseWrite() error }).CloseWrite() }()
		got, err := io.ReadAll(sp.Conn)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("channel %d: read %d bytes (%v), want %d", i, len(got), err, len(want))
		}
		back := []byte("back " + strconv.Itoa(i))
		sp.Conn.Write(back)
		sp.Conn.Close()
		got, _ = io.ReadAll(p.Conn)
		if !bytes.Equal(got, back) {
			t.Fatalf("channel %d: read back %q, want %q", i, got, back)
		}
		p.Conn.Close()
	}
	if r := l.Rejected(); r != 0 {
		t.Fatalf("the listener rejected %d channels", r)
	}
}

// A server that refuses forwarding yields a RefusedError, the caller's sign to fall back.
func TestDialRefused(t *testing.T) {
	cl := login(t, refuse)
	l := listen(t)
	_, err := Dial(context.Background(), cl, l.Addr().Port, 3, secret)
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a RefusedError", err)
	}
	if re.Reason != "administratively prohibited" {
		t.Fatalf("reason %q", re.Reason)
	}
}

// A channel to a port with no listener is a failure of its own, not a refusal.
func TestDialNoListener(t *testing.T) {
	cl := login(t, forward)
	l := listen(t)
	port := l.Addr().Port
	l.Close()
	_, err := Dial(context.Background(), cl, port, 2, secret)
	var re *RefusedError
	if err == nil || errors.As(err, &re) {
		t.Fatalf("got %v, want a failure that is not a refusal", err)
	}
}

// A wrong secret fails the proof instead of delivering the channel.
func TestDialWrongSecret(t *testing.T) {
	cl := login(t, forward)
	l := listen(t)
	_, err := Dial(context.Background(), cl, l.Addr().Port, 1, bytes.Repeat([]byte{8}, 32))
	if err == nil {
		t.Fatal("a channel with the wrong secret was proven")
	}
}

// A server that never answers the channel request cannot hang the caller past its context.
func TestDialUnansweredEndsWithContext(t *testing.T) {
	cl := login(t, silent)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, cl, 1, 2, secret)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Dial took %v", d)
	}
}

// RoundTrip times a request the server answers, and gives 0 for a connection that is gone.
func TestRoundTrip(t *testing.T) {
	cl := login(t, forward)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d := RoundTrip(ctx, cl); d <= 0 || d > 5*time.Second {
		t.Fatalf("RoundTrip = %v on loopback", d)
	}
	cl.Close()
	if d := RoundTrip(ctx, cl); d != 0 {
		t.Fatalf("RoundTrip = %v on a closed connection, want 0", d)
	}
}
