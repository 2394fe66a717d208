package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
	"github.com/socketpipe/socketpipe/internal/wire"
)

// logLines collects a Client's -v story.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// runAgainst runs c's side of the rendezvous against a fake remote half that sends hello and
// then msgs, and returns what Run returned.
func runAgainst(t *testing.T, ctx context.Context, c *Client, hello *wire.Message, msgs ...*wire.Message) (*Result, error) {
	t.Helper()
	ctl := wire.NewConn(strings.NewReader(""), io.Discard)
	ch := make(chan *wire.Message, len(msgs))
	for _, m := range msgs {
		ch <- m
	}
	res, err := c.Run(ctx, ctl, hello, ch)
	if res != nil && res.Proven != nil {
		res.Proven.Conn.Close()
	}
	if res != nil && res.listener != nil {
		res.listener.Close() // the caller's with the connection, for --streams
	}
	return res, err
}

func listenMsg(addr string) *wire.Message { return &wire.Message{Type: wire.MsgListen, Addr: addr} }

// A remote half decides only the port the client dials: the host is the one the SSH
// connection reached (native), or one the user named (an executed login), or there is no
// reverse dial at all; and the client dials a bounded number of times, never an address twice.
func TestClientDialsOnlyWhatItMay(t *testing.T) {
	s := secret(t)
	loopback := net.IPv4(127, 0, 0, 1)
	t.Run("native: the host is the SSH connection's", func(t *testing.T) {
		l := harness.NewSilentListener(t, "127.0.0.1")
		var log logLines
		c := &Client{Mode: ModeReverse, Secret: s, Timeout: 300 * time.Millisecond, ReverseIP: loopback, Logf: log.logf}
		hello := &wire.Message{Type: wire.MsgHello, Addr: net.JoinHostPort("192.0.2.7", fmt.Sprint(l.Port()))}
		if _, err := runAgainst(t, context.Background(), c, hello); !errors.Is(err, ErrTimeout) {
			t.Fatalf("Run = %v, want a timeout", err)
		}
		if n := l.Count(); n != 1 {
			t.Fatalf("the SSH connection's host at the named port got %d connections, want 1\n%s", n, &log)
		}
		if strings.Contains(log.String(), "192.0.2.7") {
			t.Fatalf("the client dialled the host the remote half named:\n%s", &log)
		}
	})
	t.Run("native: a bounded number of dials, each address once", func(t *testing.T) {
		var ls []*harness.SilentListener
		var msgs []*wire.Message
		for range 3 * MaxReverseDials {
			l := harness.NewSilentListener(t, "127.0.0.1")
			ls = append(ls, l)
			msgs = append(msgs, listenMsg(l.Addr()), listenMsg(l.Addr()))
		}
		var log logLines
		c := &Client{Mode: ModeReverse, Secret: s, Timeout: 500 * time.Millisecond, ReverseIP: loopback, Logf: log.logf}
		if _, err := runAgainst(t, context.Background(), c, &wire.Message{Type: wire.MsgHello, Addr: ls[0].Addr()}, msgs...); !errors.Is(err, ErrTimeout) {
			t.Fatalf("Run = %v, want a timeout", err)
		}
		total := 0
		for i, l := range ls {
			n := l.Count()
			if n > 1 {
				t.Errorf("listener %d got %d connections, want at most 1", i, n)
			}
			total += n
		}
		if total != MaxReverseDials {
			t.Fatalf("%d dials for %d listen messages, want %d\n%s", total, len(msgs), MaxReverseDials, &log)
		}
		if !strings.Contains(log.String(), "more than") {
			t.Errorf("-v does not say why the rest were not dialled:\n%s", &log)
		}
	})
	t.Run("native: the port within --ports", func(t *testing.T) {
		l := harness.NewSilentListener(t, "127.0.0.1")
		c := &Client{Mode: ModeReverse, Secret: s, Timeout: 300 * time.Millisecond, ReverseIP: loopback,
			Ports: PortRange{l.Port() + 1, l.Port() + 2}}
		_, err := runAgainst(t, context.Background(), c, &wire.Message{Type: wire.MsgHello, Addr: l.Addr()})
		if err == nil || !strings.Contains(err.Error(), "outside --ports") {
			t.Fatalf("Run = %v, want a refusal naming --ports", err)
		}
		if n := l.Count(); n != 0 {
			t.Fatalf("a port outside --ports got %d connections", n)
		}
	})
	t.Run("executed login: no known address, no reverse dial", func(t *testing.T) {
		l := harness.NewSilentListener(t, "127.0.0.1")
		var log logLines
		c := &Client{Mode: ModeAuto, Secret: s, Timeout: 300 * time.Millisecond, Logf: log.logf}
		_, err := runAgainst(t, context.Background(), c, &wire.Message{Type: wire.MsgHello, Addr: l.Addr()}, listenMsg(l.Addr()))
		if err == nil || !strings.Contains(err.Error(), "not dialled") {
			t.Fatalf("Run = %v, want an error that says why nothing was dialled", err)
		}
		if n := l.Count(); n != 0 {
			t.Fatalf("the address the remote half named got %d connections with no known login address", n)
		}
		if !strings.Contains(log.String(), "not dialling the remote half: the host the login reached is not known") {
			t.Errorf("-v does not say why:\n%s", &log)
		}
	})
	t.Run("executed login: only the login host's addresses", func(t *testing.T) {
		good := harness.NewSilentListener(t, "127.0.0.1")
		other := harness.NewSilentListener(t, "127.0.0.2")
		var log logLines
		c := &Client{Mode: ModeReverse, Secret: s, Timeout: 500 * time.Millisecond, ReverseHosts: []string{"localhost"}, Logf: log.logf}
		hello := &wire.Message{Type: wire.MsgHello, Addr: other.Addr()}
		_, err := runAgainst(t, context.Background(), c, hello)
		if err == nil || !strings.Contains(err.Error(), `not an address of "localhost"`) {
			t.Fatalf("Run = %v, want a refusal of 127.0.0.2", err)
		}
		c = &Client{Mode: ModeReverse, Secret: s, Timeout: 500 * time.Millisecond, ReverseHosts: []string{"localhost"}, Logf: log.logf}
		hello = &wire.Message{Type: wire.MsgHello, Addr: good.Addr()}
		named := fmt.Sprintf("localhost:%d", other.Port())
		if _, err := runAgainst(t, context.Background(), c, hello, listenMsg(other.Addr()), listenMsg(named)); !errors.Is(err, ErrTimeout) {
			t.Fatalf("Run = %v, want a timeout", err)
		}
		if g, o := good.Count(), other.Count(); g != 1 || o != 0 {
			t.Fatalf("the login host's address got %d connections (want 1), another %d (want 0)\n%s", g, o, &log)
		}
		if !strings.Contains(log.String(), `the remote half names "localhost", not an address`) {
			t.Errorf("-v does not say a name from the remote half is not resolved:\n%s", &log)
		}
	})
}

// settleGoroutines waits up to within for the goroutine count to come back to n.
func settleGoroutines(n int, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		g := runtime.NumGoroutine()
		if g <= n || time.Now().After(deadline) {
			return g
		}
		time.Sleep(20 * time.Millisecond) // polling the count, bounded by the deadline
	}
}

// Every goroutine of the client's rendezvous ends with it: listen messages at silent
// listeners, then a connect-back that wins or a cancelled context (socketpipe got SIGTERM),
// and Run returns at once, leaving nothing behind, well before the dials' proofs time out.
func TestClientRendezvousEndsWithItsContext(t *testing.T) {
	s := secret(t)
	for _, connectBack := range []bool{true, false} {
		name := "cancelled"
		if connectBack {
			name = "connect-back"
		}
		t.Run(name, func(t *testing.T) {
			var ls []*harness.SilentListener
			var msgs []*wire.Message
			for range 8 {
				l := harness.NewSilentListener(t, "127.0.0.1")
				ls = append(ls, l)
				msgs = append(msgs, listenMsg(l.Addr()))
			}
			before := runtime.NumGoroutine()
			c := &Client{Mode: ModeAuto, Secret: s, BackIP: net.IPv4(127, 0, 0, 1), ReverseIP: net.IPv4(127, 0, 0, 1)}
			back, err := c.ListenBack()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := runAgainst(t, ctx, c, &wire.Message{Type: wire.MsgHello, Addr: ls[0].Addr()}, msgs[1:]...)
				done <- err
			}()
			// Let the dials reach the silent listeners, then end the rendezvous.
			deadline := time.Now().Add(5 * time.Second)
			for !ls[1].Reached() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			var server *Proven
			if connectBack {
				server, err = Dial(context.Background(), back, s, RoleServer)
				if err != nil {
					t.Fatal(err)
				}
				defer server.Conn.Close()
			} else {
				cancel()
			}
			select {
			case err := <-done:
				if connectBack && err != nil {
					t.Fatalf("Run = %v after the connect-back", err)
				}
				if !connectBack && !errors.Is(err, context.Canceled) {
					t.Fatalf("Run = %v after the cancel, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				buf := make([]byte, 1<<20)
				t.Fatalf("Run did not return within 10 s:\n%s", buf[:runtime.Stack(buf, true)])
			}
			if connectBack {
				if err := server.AwaitCommit(time.Now().Add(5 * time.Second)); err != nil {
					t.Fatal(err)
				}
				server.Conn.Close()
			}
			// Within less than ProofTimeout: the context ended them, not the proofs' deadline.
			if g := settleGoroutines(before, ProofTimeout/2); g > before {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines left after the rendezvous:\n%s", g-before, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}
