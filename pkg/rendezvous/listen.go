package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// MaxPending bounds the connections whose proof is under way at once on a listener, so a
// flood of strangers costs bounded memory. Connections beyond it are closed at once.
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
		return PortRange{}, fmt.Errorf("rendezvous: bad port range %q: want LOW-HIGH within 1-65535", s)
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
}

// Listen listens on ip (never on all interfaces: ip must not be unspecified) at an ephemeral
// port or one in ports, and starts accepting in the background. Proven connections arrive on
// Proven().
func Listen(ip net.IP, ports PortRange, secret []byte, role byte) (*Listener, error) {
	if ip == nil || ip.IsUnspecified() {
		return nil, errors.New("rendezvous: refusing to listen on all interfaces")
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
		return nil, fmt.Errorf("rendezvous: listen on %s: %w", ip, err)
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
	sem := make(chan struct{}, MaxPending)
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
		select {
		case sem <- struct{}{}:
		default:
			c.Close()
			l.reject()
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer func() { <-sem }()
			p, err := Prove(c, l.secret, l.role)
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
	p, err := Prove(c, secret, role)
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return p, nil
}

// Liveness settings of the data socket. A dead peer or a cut link is found within about
// UserTimeout: with data unacknowledged for that long, or, on an idle connection, once
// keepalive probes (the first after KeepIdle, then every KeepInterval) have gone unanswered
// for that long (Linux lets TCP_USER_TIMEOUT, when set, take the place of KeepCount). A slow
// consumer whose kernel still acknowledges (window probes) is not dead.
const (
	KeepIdle     = 15 * time.Second
	KeepInterval = 5 * time.Second
	KeepCount    = 6
	UserTimeout  = 60 * time.Second
)

// LivenessEnv is for tests only: when it is "short" in the environment of a half, that half's
// data socket uses ShortLiveness instead of the constants above, so that a test of a cut link
// ends in seconds. It is read once, at the first Tune.
const LivenessEnv = "SOCKETPIPE_TEST_LIVENESS"

// Liveness is a set of liveness settings for a data socket.
type Liveness struct {
	KeepIdle, KeepInterval time.Duration
	KeepCount              int
	UserTimeout            time.Duration
}

// ShortLiveness is what LivenessEnv=short selects: a dead link found in about 5 s.
var ShortLiveness = Liveness{KeepIdle: 2 * time.Second, KeepInterval: time.Second, KeepCount: 3, UserTimeout: 5 * time.Second}

// liveness returns the settings in force.
var liveness = sync.OnceValue(func() Liveness {
	if os.Getenv(LivenessEnv) == "short" {
		return ShortLiveness
	}
	return Liveness{KeepIdle: KeepIdle, KeepInterval: KeepInterval, KeepCount: KeepCount, UserTimeout: UserTimeout}
})

// Tune sets keepalive and TCP_USER_TIMEOUT on a data socket.
func Tune(c net.Conn) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	lv := liveness()
	if err := tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: lv.KeepIdle, Interval: lv.KeepInterval, Count: lv.KeepCount}); err != nil {
		return err
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(lv.UserTimeout/time.Millisecond))
	})
	if err != nil {
		return err
	}
	return serr
}
