package plumb

import (
	"fmt"
	"math"
	"net"
	"syscall"
	"time"

	"github.com/socketpipe/socketpipe/internal/wire"
)

// The default number of data connections. One TCP stream carries at most its window per round
// trip: a window of 4 MiB (Linux's usual tcp_wmem maximum) carries 40 GiB/s at loopback's
// 0.1 ms, 4 GiB/s on a 1 ms LAN, but only 40 MiB/s across a 100 ms continent, whatever the
// link. Striping over N streams carries N windows per round trip, at the price of relaying
// (the commands then read and write pipes, not the socket). So the client stripes only when
// one stream's window cannot carry TargetRate at the round trip the first connection shows,
// and then over just enough streams to carry it, at most MaxAutoStreams.
const (
	// TargetRate is what the default aims to carry, in bytes per second: 10 Gbit/s, the
	// fastest links common between hosts that would run socketpipe. A path one stream fills
	// at that rate stays one zero-copy stream, so no LAN and no loopback is ever striped.
	TargetRate = 10e9 / 8
	// MaxAutoStreams caps the default: 8, within the 4-16 that bbcp and GridFTP default to.
	// At 100 ms and 4 MiB windows 8 streams carry about 330 MB/s, most of a 1 Gbit/s or 2.5
	// Gbit/s path; more streams take a larger share from other traffic on a shared path and
	// add a connection each to set up, for less each (--streams goes to MaxStreams).
	MaxAutoStreams = 8
	// DefaultWindow is what one stream's window is taken to be when neither host says:
	// Linux's usual tcp_wmem maximum.
	DefaultWindow = 4 << 20
)

// chooseStreams is the default number of streams for a path of round trip rtt on which one
// stream's window is window bytes: 1 when the round trip is unknown or one stream carries
// TargetRate, else enough to carry it, at most MaxAutoStreams.
func chooseStreams(rtt time.Duration, window int64) int {
	if rtt <= 0 || window <= 0 {
		return 1
	}
	one := float64(window) / rtt.Seconds()
	if one >= TargetRate {
		return 1
	}
	return min(int(math.Ceil(TargetRate/one)), MaxAutoStreams)
}

// usableWindow is the window one stream can use: the smallest of the buffers that bound it
// in either direction (this host's send and receive maxima, and the remote host's from its
// hello), those unknown left out; DefaultWindow if none is known. Either direction may carry
// the data, so the smaller decides.
func usableWindow(hello *wire.Message) int64 {
	send, recv := tcpWindows()
	w := int64(0)
	for _, b := range []int64{send, recv, hello.WindowSend, hello.WindowRecv} {
		if b > 0 && (w == 0 || b < w) {
			w = b
		}
	}
	if w == 0 {
		return DefaultWindow
	}
	return w
}

// connRTT is the round trip of a proven connection as the kernel measured it: the handshake
// and the proof's exchanges are its samples. 0 when this system does not say.
func connRTT(c net.Conn) time.Duration {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	s, err := readTCP(sc)
	if err != nil {
		return 0
	}
	return s.rtt()
}

// streamsStory is what -v says of the choice: the figures behind it.
func streamsStory(n int, rtt time.Duration, window int64) string {
	count := streamCount(n)
	if rtt <= 0 {
		return count + ": the round trip is not known here"
	}
	one := float64(window) / rtt.Seconds()
	story := fmt.Sprintf("%s: round trip %s, one stream's window %s carries about %s",
		count, roundTrip(rtt), size(float64(window)), rate(one))
	if n == 1 {
		return story + fmt.Sprintf(", enough for %.0f Gbit/s", TargetRate*8/1e9)
	}
	if n == MaxAutoStreams && one*float64(n) < TargetRate {
		return story + fmt.Sprintf(" (at most %d by default)", MaxAutoStreams)
	}
	return story
}

func streamCount(n int) string {
	if n == 1 {
		return "one stream"
	}
	return fmt.Sprintf("%d streams", n)
}

func roundTrip(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 10 {
		return fmt.Sprintf("%.2g ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}
