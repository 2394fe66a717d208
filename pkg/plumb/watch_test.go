package plumb

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// shortLiveness is what the tests' short liveness gives a socket: keepalive after 2 s, then 3
// probes a second apart.
var shortLiveness = rendezvous.Liveness{KeepIdle: 2 * time.Second, KeepInterval: time.Second, KeepCount: 3, PingInterval: time.Second}

// TestWatchJudge: what the data connection's watch takes for a lost connection, from the
// kernel's samples: data in flight with no acknowledgement for the bound, probes unanswered for
// the bound, or an end after silence only keepalive's giving up explains; and what it must not:
// a slow consumer's closed window, a receiver whose last acknowledgement is old because it had
// sent nothing, an orderly end, an end first seen long after the sample before.
func TestWatchJudge(t *testing.T) {
	rules := newWatchRules(6*time.Second, shortLiveness)
	if rules.keepDead != 3*time.Second || rules.tick != 200*time.Millisecond {
		t.Fatalf("rules for a 6 s bound and short keepalive: %+v", rules)
	}
	s := time.Second
	type sample struct {
		at                 time.Duration // since the first sample
		closed             bool
		unacked, probes    int
		unsent             bool
		sinceAck, sinceDat time.Duration
	}
	// A connection's samples a tick apart for d, each made by f from its time.
	every := func(d time.Duration, f func(at time.Duration) sample) []sample {
		var out []sample
		for at := time.Duration(0); at <= d; at += rules.tick {
			out = append(out, f(at))
		}
		return out
	}
	tests := []struct {
		name    string
		samples []sample
		lostAt  time.Duration // -1: never
		idle    bool
		silence time.Duration
	}{
		{"in flight, acknowledged", every(20*s, func(at time.Duration) sample {
			return sample{at: at, unacked: 10, sinceAck: 5 * time.Millisecond}
		}), -1, false, 0},
		{"in flight, nothing acknowledged after 1 s", every(20*s, func(at time.Duration) sample {
			return sample{at: at, unacked: 10, sinceAck: max(at-s, 0)}
		}), 7*s + 200*time.Millisecond, false, 6*s + 200*time.Millisecond},
		// A receiver's kernel takes in data without looking at acknowledgements: when it
		// starts sending, the last one it saw is a minute old, and the answer comes in a
		// round trip.
		{"receiver starts sending", []sample{
			{at: 0, sinceAck: 60 * s},
			{at: 200 * time.Millisecond, unacked: 2, sinceAck: 60 * s},
			{at: 400 * time.Millisecond, unacked: 2, sinceAck: 0},
		}, -1, false, 0},
		{"slow consumer: closed window, probes answered", every(60*s, func(at time.Duration) sample {
			return sample{at: at, unsent: true, probes: int(at/s) % 2, sinceAck: at}
		}), -1, false, 0},
		{"closed window, probes unanswered", every(20*s, func(at time.Duration) sample {
			return sample{at: at, unsent: true, probes: int(at / s), sinceAck: at}
		}), 6*s + 400*time.Millisecond, false, 6*s + 400*time.Millisecond},
		// Probes two minutes apart, one answer lost: the next probe's answer comes in a
		// round trip, while the kernel counts two probes out.
		{"closed window, one answer lost", []sample{
			{at: 0, unsent: true, probes: 1, sinceAck: 120 * s},
			{at: 200 * time.Millisecond, unsent: true, probes: 2, sinceAck: 240 * s},
			{at: 400 * time.Millisecond, unsent: true, sinceAck: 0},
		}, -1, false, 0},
		{"idle, keepalive answered", every(60*s, func(at time.Duration) sample {
			return sample{at: at, sinceAck: at % (2 * s), sinceDat: at}
		}), -1, false, 0},
		{"keepalive gave up", append(every(4800*time.Millisecond, func(at time.Duration) sample {
			return sample{at: at, probes: int(max(at-2*s, 0) / s), sinceAck: at, sinceDat: at}
		}), sample{at: 5 * s, closed: true, sinceAck: 5 * s, sinceDat: 5 * s}), 5 * s, true, 5 * s},
		{"orderly end", []sample{
			{at: 0, unacked: 1, sinceAck: 10 * time.Millisecond, sinceDat: 30 * s},
			{at: 200 * time.Millisecond, closed: true, sinceAck: 150 * time.Millisecond, sinceDat: 30 * s},
		}, -1, false, 0},
		{"end after silence, first seen late", []sample{
			{at: 0, sinceAck: s, sinceDat: s},
			{at: 10 * s, closed: true, sinceAck: 11 * s, sinceDat: 11 * s},
		}, -1, false, 0},
		{"end seen again", []sample{
			{at: 0, closed: true, sinceAck: 100 * time.Millisecond},
			{at: 200 * time.Millisecond, closed: true, sinceAck: 5 * s, sinceDat: 5 * s},
		}, -1, false, 0},
	}
	t0 := time.Now()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j judging
			for _, sm := range tt.samples {
				e := j.judge(rules, connSample{at: t0.Add(sm.at), closed: sm.closed, unacked: sm.unacked,
					probes: sm.probes, unsent: sm.unsent, sinceAck: sm.sinceAck, sinceData: sm.sinceDat})
				if e == nil {
					continue
				}
				if sm.at != tt.lostAt || e.Idle != tt.idle || e.Silence != tt.silence {
					t.Fatalf("lost at %v (idle %v, silence %v), want at %v (idle %v, silence %v)",
						sm.at, e.Idle, e.Silence, tt.lostAt, tt.idle, tt.silence)
				}
				return
			}
			if tt.lostAt >= 0 {
				t.Fatalf("not lost; want lost at %v", tt.lostAt)
			}
		})
	}
}

// TestDataLostMessage: the message says which connection was lost, and how.
func TestDataLostMessage(t *testing.T) {
	e := &DataLostError{Peer: "10.0.0.2:41800", Silence: 6400 * time.Millisecond}
	if got, want := e.Error(), "data connection to 10.0.0.2:41800 lost: no acknowledgement for 6s"; !strings.HasPrefix(got, want) {
		t.Errorf("%q, want it to start %q", got, want)
	}
	e.Idle = true
	if got, want := e.Error(), "data connection to 10.0.0.2:41800 lost: no answer to keepalive probes for 6s"; !strings.HasPrefix(got, want) {
		t.Errorf("%q, want it to start %q", got, want)
	}
}

// TestQuiet: the control channel counts as quiet, the whole link down, once its pinging peer
// has been silent for two intervals; a peer without pings never is.
func TestQuiet(t *testing.T) {
	r := &ctlReader{silence: 6 * time.Second}
	r.heard.Store(time.Now().Add(-time.Second).UnixNano())
	if r.quiet() {
		t.Errorf("quiet after 1 s, two intervals being 2 s")
	}
	r.heard.Store(time.Now().Add(-3 * time.Second).UnixNano())
	if !r.quiet() {
		t.Errorf("not quiet after 3 s, two intervals being 2 s")
	}
	r.silence = 0
	if r.quiet() {
		t.Errorf("quiet without pings")
	}
}

// TestLinkCause: a relay's failure on a data connection the watch found lost is the loss, with
// the failure as its cause; without a loss it stays what it was.
func TestLinkCause(t *testing.T) {
	var l link
	if err := l.cause(io.ErrUnexpectedEOF); err != io.ErrUnexpectedEOF {
		t.Errorf("without a watch: %v", err)
	}
	w := &dataWatch{err: &DataLostError{Peer: "10.0.0.2:41800", Silence: 5 * time.Second, Idle: true}}
	l.watch = &watchSet{ws: []*dataWatch{w}}
	if err := l.cause(nil); err != nil {
		t.Errorf("no failure: %v", err)
	}
	err := l.cause(io.ErrUnexpectedEOF)
	var lost *DataLostError
	if !errors.As(err, &lost) || lost.Peer != "10.0.0.2:41800" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a failure on a lost connection: %v (%#v)", err, err)
	}
	if w.err.Err != nil {
		t.Errorf("cause changed the watch's own verdict")
	}
}
