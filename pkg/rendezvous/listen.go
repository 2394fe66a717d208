package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
)

// MaxPending bounds the connections whose proof is under way at once on a listener, so a
// flood of strangers costs bounded memory. A connection beyond it closes the oldest one still
// proving: strangers that hold their connections open cannot keep the real peer, which
// proves itself within a round trip or two, from getting a turn.
const MaxPending = 64

// PortRange restricts a listener's port (--ports LOW-HIGH). The zero value means an
// ephemeral port.
type PortRange struct{ Low, High int }

// ParsePortRange parses "LOW-HIGH" or a single "PORT".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, found := strings.Cut(s, "-")
	if !found {
		hi = lo
	}
	l, err1 := strconv.Atoi(strings.TrimSpace(lo))
	h, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || l < 1 || h > 65535 || l > h {
		return PortRange{}, fmt.Errorf("bad port range %s: want LOW-HIGH within 1-65535", quote.Word(s))
	}
	return PortRange{l, h}, nil
}

// Listener accepts data connections on one address and delivers those whose peer proves the
// secret. Strangers are closed; it keeps accepting until closed.
type Listener struct {
	ln     net.Listener
	secret []byte
	role   byte
	proven chan *Proven
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	// Rejected counts connections that failed the proof (for -v and tests).
	mu       sync.Mutex
	rejected int
	pending  []net.Conn // proofs under way, oldest first
}

// Listen listens on ip (never on all interfaces: ip must not be unspecified) at an ephemeral
// port or one in ports, and starts accepting in the background. Proven connections arrive on
// Proven().
func Listen(ip net.IP, ports PortRange, secret []byte, role byte) (*Listener, error) {
	if ip == nil || ip.IsUnspecified() {
		return nil, errors.New("refusing to listen on all interfaces")
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error { return nil }}
	var ln net.Listener
	var err error
	if ports.Low == 0 {
		ln, err = lc.Listen(context.Background(), "tcp", net.JoinHostPort(ip.String(), "0"))
	} else {
		for p := ports.Low; p <= ports.High; p++ {
			ln, err = lc.Listen(context.Background(), "tcp", net.JoinHostPort(ip.String(), strconv.Itoa(p)))
			if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", ip, err)
	}
	l := &Listener{ln: ln, secret: secret, role: role, proven: make(chan *Proven, 4), done: make(chan struct{})}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Addr is the listening address.
func (l *Listener) Addr() *net.TCPAddr { return l.ln.Addr().(*net.TCPAddr) }

// Proven delivers connections whose peer proved the secret.
func (l *Listener) Proven() <-chan *Proven { return l.proven }

// Rejected reports how many connections failed the proof so far.
func (l *Listener) Rejected() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rejected
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		l.mu.Lock()
		select {
		case <-l.done: // accepted as Close ran: Close has closed the others already
			l.mu.Unlock()
			c.Close()
			return
		default:
		}
		if len(l.pending) >= MaxPending {
			l.pending[0].Close() // its proof fails, and it is counted as rejected
			l.pending = l.pending[1:]
		}
		l.pending = append(l.pending, c)
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			p, err := Prove(c, l.secret, l.role, false)
			l.mu.Lock()
			for i, pc := range l.pending {
				if pc == c {
					l.pending = append(l.pending[:i], l.pending[i+1:]...)
					break
				}
			}
			l.mu.Unlock()
			if err != nil {
				c.Close()
				l.reject()
				return
			}
			select {
			case l.proven <- p:
			case <-l.done:
				c.Close()
			}
		}()
	}
}

func (l *Listener) reject() {
	l.mu.Lock()
	l.rejected++
	l.mu.Unlock()
}

// Close stops accepting, closes the connections still proving, and closes any proven
// connection not yet taken.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.ln.Close()
		// A proof under way would otherwise run on for up to ProofTimeout.
		l.mu.Lock()
		for _, c := range l.pending {
			c.Close()
		}
		l.pending = nil
		l.mu.Unlock()
		go func() {
			l.wg.Wait()
			for {
				select {
				case p := <-l.proven:
					p.Conn.Close()
				default:
					return
				}
			}
		}()
	})
	return err
}

// Dial connects to addr and runs the proof. It makes one attempt: the peer said it listens.
func Dial(ctx context.Context, addr string, secret []byte, role byte) (*Proven, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	p, err := Prove(c, secret, role, true)
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return p, nil
}

// Liveness. A cut link or a dead peer must end a run within a bound, yet a slow consumer (a
// tape drive that stalls for minutes while its host still answers) is not dead.
//
// The data socket gets TCP keepalive, which finds a dead peer of an idle connection within
// KeepIdle + KeepInterval*KeepCount, 30 s: no more than the bound a silent control channel
// gets (PingDeadAfter(PingInterval)). It does not get TCP_USER_TIMEOUT: Linux applies that to a
// zero window too, and aborts a connection whose receiver has stopped reading for longer,
// however promptly its kernel answers the window probes. While data is on its way, the halves
// instead send each other a ping on the control channel every PingInterval, and give up on a
// peer not heard from for PingDeadAfter(PingInterval) (see wire.Message.PingMS); and each
// watches its data connection for data in flight that nobody acknowledges (plumb's
// watch.go), which the pings cannot see.
const (
	KeepIdle     = 10 * time.Second
	KeepInterval = 4 * time.Second
	KeepCount    = 5
	PingInterval = 5 * time.Second
)

// Liveness is a set of liveness settings; a zero field means the constant above. A test of a
// cut link sets them short, to end in seconds.
type Liveness struct {
	KeepIdle, KeepInterval time.Duration
	KeepCount              int
	PingInterval           time.Duration // the client's choice, sent in the request
}

// WithDefaults returns lv with its zero fields set to the constants above.
func (lv Liveness) WithDefaults() Liveness {
	if lv.KeepIdle <= 0 {
		lv.KeepIdle = KeepIdle
	}
	if lv.KeepInterval <= 0 {
		lv.KeepInterval = KeepInterval
	}
	if lv.KeepCount <= 0 {
		lv.KeepCount = KeepCount
	}
	if lv.PingInterval <= 0 {
		lv.PingInterval = PingInterval
	}
	return lv
}

// PingDeadAfter is how long a half waits for word from a peer that pings every interval.
func PingDeadAfter(interval time.Duration) time.Duration { return 6 * interval }
