package plumb

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/socketpipe/socketpipe/internal/stripe"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// The data connection's own watch. The control channel's pings see only the login's
// connection: when the path of the data connection dies while SSH lives (a firewall's or a
// NAT's state for it expires, a route changes), the commands that hold the socket wait on it,
// the sender in its retransmissions for a quarter of an hour. So each half watches the kernel's
// view of the data connection and ends the run within the bound a lost control channel gets.
//
//   - Data in flight: segments sent and not acknowledged, and no acknowledgement for the bound.
//     A live peer acknowledges within a round trip, retransmissions included; a consumer that
//     stopped reading closes its window, and then nothing is in flight (the window probes are
//     not counted as sent data), so a stalled tape drive is not taken for a dead link. This is
//     why TCP_USER_TIMEOUT is not used: Linux applies it to a zero window too.
//   - Nothing in flight: the socket's keepalive probes an idle peer, and once KeepCount
//     probes go unanswered the kernel ends the connection. A connection that ends after
//     silence that long was given up by the kernel: a FIN, data or an acknowledgement always
//     came just before an orderly end. Under a closed window the kernel probes the window
//     instead, less and less often; probes unanswered for the bound are a dead path too.
//
// Where the system does not tell (watch_other.go), keepalive alone ends an idle connection
// and the commands see the error.

// DataLostError is a data connection that stopped answering while the control channel still
// worked: the network between the hosts dropped it.
type DataLostError struct {
	Peer    string        // the other end of the data connection, host:port
	Silence time.Duration // how long the peer had not answered
	Idle    bool          // nothing was in flight: keepalive's probes went unanswered
	Err     error         // what a relay's read or write met, if it found out first
}

func (e *DataLostError) Unwrap() error { return e.Err }

func (e *DataLostError) Error() string {
	what := "no acknowledgement"
	if e.Idle {
		what = "no answer to keepalive probes"
	}
	return fmt.Sprintf("data connection to %s lost: %s for %v (the login's connection still works)",
		e.Peer, what, e.Silence.Truncate(time.Second))
}

// connSample is one reading of the kernel's state of a connection.
type connSample struct {
	at        time.Time
	closed    bool          // over: both FINs, a reset, or the kernel gave up on it
	unacked   int           // segments sent and not yet acknowledged
	probes    int           // keepalive or zero-window probes sent and not answered
	unsent    bool          // written data waits for the peer's window to open
	sinceAck  time.Duration // since the last acknowledgement came
	sinceData time.Duration // since the last data came
}

// heard is how long the peer has said nothing at all.
func (s connSample) heard() time.Duration { return min(s.sinceAck, s.sinceData) }

// watchRules are the bounds a watch judges samples by.
type watchRules struct {
	bound    time.Duration // data in flight and no acknowledgement for this long: lost
	keepDead time.Duration // silence before an end that only keepalive's giving up explains
	tick     time.Duration // how often to sample
}

// newWatchRules derives the rules from the bound a silent control channel gets and the
// keepalive settings in force on the socket.
func newWatchRules(bound time.Duration, lv rendezvous.Liveness) watchRules {
	return watchRules{
		bound:    bound,
		keepDead: lv.KeepIdle + lv.KeepInterval,
		tick:     min(max(bound/30, 100*time.Millisecond), time.Second),
	}
}

// judging holds what a watch remembers between samples.
type judging struct {
	prev     connSample
	inFlight time.Time // the first sample of the current stretch with data in flight
}

// judge reads one more sample. It returns the loss the sample shows, or nil.
func (j *judging) judge(r watchRules, s connSample) *DataLostError {
	prev := j.prev
	j.prev = s
	if s.closed {
		// Only the first sight of the end says how it ended, and only if it came soon after
		// the sample before (not after this process was stopped, say).
		if prev.at.IsZero() || prev.closed || s.at.Sub(prev.at) > 3*r.tick {
			return nil
		}
		if h := s.heard(); h >= r.keepDead {
			return &DataLostError{Silence: h, Idle: true}
		}
		return nil
	}
	if s.unacked == 0 {
		j.inFlight = time.Time{}
		// A live peer answers every probe at once; probes that go unanswered for the bound
		// are a dead path under a closed window (or an idle connection whose keepalive
		// outlasts the bound). Two samples in a row: a probe sent after one whose answer was
		// lost has its answer on the way for a round trip.
		if r.unanswered(s) && r.unanswered(prev) {
			return &DataLostError{Silence: s.sinceAck, Idle: !s.unsent}
		}
		return nil
	}
	if j.inFlight.IsZero() {
		j.inFlight = s.at
	}
	// The last acknowledgement may be old because nothing was sent for a while (a receiver's
	// kernel takes in data without looking at acknowledgements): wait from whichever is later.
	waited := s.at.Sub(j.inFlight)
	if ack := s.sinceAck; ack < waited {
		waited = ack
	}
	if waited > r.bound {
		return &DataLostError{Silence: waited}
	}
	return nil
}

// unanswered reports whether s shows probes unanswered for the bound.
func (r watchRules) unanswered(s connSample) bool {
	return !s.at.IsZero() && !s.closed && s.unacked == 0 && s.probes >= 2 && s.sinceAck > r.bound
}

// dataWatch watches one data connection until stopped.
type dataWatch struct {
	rules watchRules
	rc    syscall.RawConn
	peer  string
	lostc chan struct{} // closed when the connection is found lost

	mu   sync.Mutex
	j    judging
	err  *DataLostError
	over bool // the socket is closed
	stop chan struct{}
	done chan struct{}
}

// watchConn starts watching the data connection of c (a socket) by rules. It returns nil
// where the system cannot tell (see watch_other.go) or c is not a socket.
func watchConn(c syscall.Conn, rules watchRules) *dataWatch {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	peer, ok := watchable(rc)
	if !ok {
		return nil
	}
	w := &dataWatch{rules: rules, rc: rc, peer: peer, lostc: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *dataWatch) loop() {
	defer close(w.done)
	t := time.NewTicker(w.rules.tick)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			if over, err := w.look(); err != nil || over {
				return
			}
		}
	}
}

// check takes a sample now and returns the loss found, now or before, or nil.
func (w *dataWatch) check() error {
	if w == nil {
		return nil
	}
	_, err := w.look()
	return err
}

// look is check that also reports whether the socket is closed: nothing more to watch.
func (w *dataWatch) look() (over bool, lost error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.over, w.err
	}
	if w.over {
		return true, nil
	}
	s, err := sampleConn(w.rc)
	if err != nil {
		w.over = true // the socket is closed: the run is over
		return true, nil
	}
	s.at = time.Now()
	if e := w.j.judge(w.rules, s); e != nil {
		e.Peer = w.peer
		w.err = e
		close(w.lostc)
		return false, e
	}
	return false, nil
}

// lost returns a channel closed when the connection is found lost; nil (never ready) for a
// watch that is not there.
func (w *dataWatch) lost() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.lostc
}

// end stops the watch and waits for it.
func (w *dataWatch) end() {
	if w == nil {
		return
	}
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// watchSet watches every data connection of a link: one, or each stream of --streams, where
// a stream whose path dies while the others live would otherwise hold the whole run (its
// writer waits on a full window, the reader on the chunk it carries).
type watchSet struct {
	ws    []*dataWatch // in the streams' order; nil where the system cannot tell
	lostc chan struct{}
	once  sync.Once
}

func newWatchSet(ws ...*dataWatch) *watchSet {
	s := &watchSet{ws: ws, lostc: make(chan struct{})}
	for _, w := range ws {
		if w == nil {
			continue
		}
		go func() {
			select {
			case <-w.lostc:
				s.once.Do(func() { close(s.lostc) })
			case <-w.done:
			}
		}()
	}
	return s
}

// check takes a sample of every connection now and returns the first loss found, now or
// before, or nil. A stream of several is named, as the stripe's own errors name it.
func (s *watchSet) check() error {
	if s == nil {
		return nil
	}
	for i, w := range s.ws {
		if err := w.check(); err != nil {
			if len(s.ws) > 1 {
				return &stripe.StreamError{Stream: i + 1, Streams: len(s.ws), Err: err}
			}
			return err
		}
	}
	return nil
}

// lost returns a channel closed when any connection is found lost; nil (never ready) without
// a watch.
func (s *watchSet) lost() <-chan struct{} {
	if s == nil {
		return nil
	}
	return s.lostc
}

// end stops every watch and waits for them.
func (s *watchSet) end() {
	if s == nil {
		return
	}
	for _, w := range s.ws {
		w.end()
	}
}

// watchData starts the watch of l's data connections, if it has them (not ssh mode): lost
// after the bound a silent peer gets on the control channel that pings every interval. lv is
// the keepalive in force on the sockets. l.close ends it.
func (l *link) watchData(interval time.Duration, lv rendezvous.Liveness) {
	var cs []syscall.Conn
	switch {
	case l.sock != nil:
		cs = append(cs, l.sock)
	case len(l.conns) > 0:
		for _, c := range l.conns {
			sc, ok := c.(syscall.Conn)
			if !ok {
				return
			}
			cs = append(cs, sc)
		}
	case l.conn != nil:
		sc, ok := l.conn.(syscall.Conn)
		if !ok {
			return
		}
		cs = append(cs, sc)
	default:
		return
	}
	if interval <= 0 {
		interval = lv.PingInterval
	}
	rules := newWatchRules(rendezvous.PingDeadAfter(interval), lv)
	ws := make([]*dataWatch, len(cs))
	for i, c := range cs {
		ws[i] = watchConn(c, rules)
	}
	l.watch = newWatchSet(ws...)
}

// quiet reports whether the control channel, whose peer pings, has been silent for two of its
// intervals: then the whole link is down, not only the data connection's path, and the pings'
// verdict (lost contact with the remote half) says so better than the data connection's.
func (r *ctlReader) quiet() bool {
	return r.silence > 0 && time.Since(time.Unix(0, r.heard.Load())) > r.silence/3
}

// cause is err, a relay's failure on the data connection, or the lost connection behind it:
// the kernel's giving up reaches the relay as a timed-out read before the watch's next look.
func (l *link) cause(err error) error {
	var lost *DataLostError
	if err == nil || !errors.As(l.watch.check(), &lost) {
		return err
	}
	e := *lost
	e.Err = err
	return &e
}
