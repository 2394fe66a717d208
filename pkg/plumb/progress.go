package plumb

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Meter reads a running transfer's byte counts: the kernel's counters of the data socket in
// plain mode (socketpipe moves no data there), socketpipe's own in relayed modes. A reading
// costs a few system calls and nothing on the data path. Client.Watch hands one out.
type Meter struct {
	l     *link
	start time.Time

	mu   sync.Mutex
	last Sample
}

// Sample is one reading of a Meter. During the transfer the kernel's counts are what the
// peer has acknowledged; Report has the exact totals.
type Sample struct {
	ToRemote   int64         // data bytes to the remote command
	FromRemote int64         // data bytes from it
	Elapsed    time.Duration // since the transfer started
	RTT        time.Duration // smoothed round-trip time; 0 when unknown (relayed modes)
	Unknown    bool          // the system keeps no counts socketpipe can read (plain mode): ToRemote and FromRemote are 0
}

// Sample reads the counts now. They never go backwards; once the transfer is over they stay
// at their last reading.
func (m *Meter) Sample() Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Sample{Elapsed: time.Since(m.start), RTT: m.last.RTT}
	if m.l.sock == nil {
		s.ToRemote, s.FromRemote = m.l.sent.Load(), m.l.received.Load()
	} else if t, err := readTCP(m.l.sock); err == nil {
		shut := m.l.shut.Load()
		s.ToRemote, s.FromRemote = t.sentData(m.l.dialed(), shut), t.receivedData(shut)
		s.RTT = t.rtt()
	} else if m.l.ownCounts() {
		s.ToRemote, s.FromRemote = m.l.sent.Load(), m.l.received.Load()
	} else {
		s.Unknown = true
	}
	s.ToRemote = max(s.ToRemote, m.last.ToRemote)
	s.FromRemote = max(s.FromRemote, m.last.FromRemote)
	m.last = s
	return s
}

// Progress shows a transfer's progress on W: on a terminal one line rewritten in place a few
// times a second, elsewhere a line every ten seconds; Finish ends it with the totals.
//
//	p := &plumb.Progress{W: os.Stderr, Terminal: term.IsTerminal(2)}
//	c.Watch = p.Watch
//	rep, err := c.Run(ctx, r, w)
//	p.Finish(rep.Stats(err))
type Progress struct {
	W        io.Writer
	Terminal bool          // rewrite one line with \r
	Interval time.Duration // between lines; 0 is 250 ms on a terminal, 10 s otherwise
	Width    int           // the terminal's columns: a longer line is cut, as a wrapped one could not be rewritten; 0 cuts none

	mu      sync.Mutex
	shown   bool // a partial line is on the terminal
	stop    chan struct{}
	stopped chan struct{}
}

// window is how far back the current rate looks.
const window = time.Second

// Watch starts showing m's progress. It suits Client.Watch.
func (p *Progress) Watch(m *Meter) {
	interval := p.Interval
	if interval <= 0 {
		interval = 10 * time.Second
		if p.Terminal {
			interval = 250 * time.Millisecond
		}
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	p.mu.Lock()
	p.stop, p.stopped = stop, stopped
	p.mu.Unlock()
	go func() {
		defer close(stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		recent := []Sample{{}}
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			s := m.Sample()
			for len(recent) > 1 && s.Elapsed-recent[1].Elapsed >= window {
				recent = recent[1:]
			}
			line := progressLine(s, recent[0])
			recent = append(recent, s)
			p.mu.Lock()
			if p.Terminal {
				if p.Width > 1 && len(line) >= p.Width {
					line = line[:p.Width-1]
				}
				fmt.Fprintf(p.W, "\r%s\x1b[K", line)
				p.shown = true
			} else {
				fmt.Fprintf(p.W, "%s\n", line)
			}
			p.mu.Unlock()
		}
	}()
}

// Finish stops the display and writes the run's totals on a line of their own. It writes
// nothing if no transfer was watched.
func (p *Progress) Finish(s *Stats) {
	p.mu.Lock()
	stop, stopped := p.stop, p.stopped
	p.stop = nil
	p.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	<-stopped
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	took := clock(time.Duration(s.Seconds.Transfer * float64(time.Second)))
	line := fmt.Sprintf("socketpipe: done: to remote %d bytes (%s, %s), from remote %d bytes (%s, %s) in %s",
		s.Bytes.ToRemote, size(float64(s.Bytes.ToRemote)), rate(s.Throughput.ToRemote),
		s.Bytes.FromRemote, size(float64(s.Bytes.FromRemote)), rate(s.Throughput.FromRemote),
		took)
	if s.Bytes.Unknown {
		line = "socketpipe: done: bytes unknown (this system keeps no TCP byte counts) in " + took
	}
	if s.TCP != nil {
		line += fmt.Sprintf(", rtt %.2f ms, %d retransmits", s.TCP.RTTms, s.TCP.Retransmits)
	}
	fmt.Fprintln(p.W, line)
}

// Writer returns a writer to w for other messages: each write first clears the progress line,
// which the next refresh redraws, so the two never mix on one line.
func (p *Progress) Writer(w io.Writer) io.Writer { return progressWriter{p, w} }

type progressWriter struct {
	p *Progress
	w io.Writer
}

func (pw progressWriter) Write(b []byte) (int, error) {
	pw.p.mu.Lock()
	defer pw.p.mu.Unlock()
	pw.p.clear()
	return pw.w.Write(b)
}

// clear erases the progress line; p.mu is held.
func (p *Progress) clear() {
	if p.shown {
		fmt.Fprint(p.W, "\r\x1b[K")
		p.shown = false
	}
}

// progressLine describes s, with the current rates measured since the earlier sample.
func progressLine(s, earlier Sample) string {
	var now [2]float64
	if dt := (s.Elapsed - earlier.Elapsed).Seconds(); dt > 0 {
		now[0] = float64(s.ToRemote-earlier.ToRemote) / dt
		now[1] = float64(s.FromRemote-earlier.FromRemote) / dt
	}
	var avg [2]float64
	if t := s.Elapsed.Seconds(); t > 0 {
		avg[0], avg[1] = float64(s.ToRemote)/t, float64(s.FromRemote)/t
	}
	line := "socketpipe: " + clock(s.Elapsed)
	if s.Unknown {
		return line + "  bytes unknown (this system keeps no TCP byte counts)"
	}
	// A direction that carries nothing is left out: most runs move data one way.
	if s.ToRemote > 0 || s.FromRemote == 0 {
		line += fmt.Sprintf("  to remote %s %s (avg %s)", size(float64(s.ToRemote)), rate(now[0]), rate(avg[0]))
	}
	if s.FromRemote > 0 {
		line += fmt.Sprintf("  from remote %s %s (avg %s)", size(float64(s.FromRemote)), rate(now[1]), rate(avg[1]))
	}
	if s.RTT > 0 {
		line += fmt.Sprintf("  rtt %.2f ms", float64(s.RTT)/float64(time.Millisecond))
	}
	return line
}

// size writes a byte count in binary units, as pv and rsync do.
func size(n float64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%.0f B", n)
	}
	i := -1
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", n, units[i])
}

func rate(bps float64) string { return size(bps) + "/s" }

// clock writes a duration as h:mm:ss.t.
func clock(d time.Duration) string {
	d = d.Round(100 * time.Millisecond)
	h := d / time.Hour
	m := d % time.Hour / time.Minute
	s := float64(d%time.Minute) / float64(time.Second)
	return fmt.Sprintf("%d:%02d:%04.1f", h, m, s)
}
