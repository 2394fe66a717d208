package plumb

import (
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/wire"
)

// The default stripes only when one stream's window cannot carry TargetRate at the round
// trip, over just enough streams, at most MaxAutoStreams; loopback and a LAN stay one stream.
func TestChooseStreams(t *testing.T) {
	const MiB = 1 << 20
	for _, tt := range []struct {
		rtt    time.Duration
		window int64
		want   int
	}{
		{0, 4 * MiB, 1},                          // round trip unknown
		{50 * time.Microsecond, 4 * MiB, 1},      // loopback
		{100 * time.Microsecond, 256 << 10, 1},   // loopback, small window: 2.6 GB/s
		{time.Millisecond, 4 * MiB, 1},           // LAN: 4.2 GB/s
		{3 * time.Millisecond, 4 * MiB, 1},       // 1.4 GB/s still carries 10 Gbit/s
		{5 * time.Millisecond, 4 * MiB, 2},       // 839 MB/s
		{10 * time.Millisecond, 4 * MiB, 3},      // 419 MB/s
		{10 * time.Millisecond, 16 * MiB, 1},     // a raised tcp_wmem
		{20 * time.Millisecond, 4 * MiB, 6},      // 210 MB/s
		{50 * time.Millisecond, 4 * MiB, 8},      // capped
		{100 * time.Millisecond, 4 * MiB, 8},     // capped
		{100 * time.Millisecond, 64 * MiB, 2},    // 671 MB/s
		{100 * time.Millisecond, 0, 1},           // window unknown
		{time.Second, 128 << 10, MaxAutoStreams}, // satellite, tiny window
	} {
		if got := chooseStreams(tt.rtt, tt.window); got != tt.want {
			t.Errorf("chooseStreams(%v, %d) = %d, want %d", tt.rtt, tt.window, got, tt.want)
		}
	}
}

// One stream's window is the smallest buffer either host reports, or DefaultWindow when
// neither does.
func TestUsableWindow(t *testing.T) {
	send, recv := tcpWindows()
	local := min(send, recv)
	if send == 0 || recv == 0 {
		local = max(send, recv)
	}
	hello := &wire.Message{WindowSend: 1 << 10, WindowRecv: 1 << 20}
	if w := usableWindow(hello); w != 1<<10 {
		t.Errorf("usableWindow = %d with a remote send buffer of 1 KiB, want 1 KiB", w)
	}
	if w := usableWindow(&wire.Message{}); local > 0 && w != local || local == 0 && w != DefaultWindow {
		t.Errorf("usableWindow = %d with nothing from the remote host, want this host's %d (or %d)", w, local, DefaultWindow)
	}
}

// -v says what was chosen and why, with the figures.
func TestStreamsStory(t *testing.T) {
	for _, tt := range []struct {
		n    int
		rtt  time.Duration
		want string
	}{
		{8, 100 * time.Millisecond, "8 streams: round trip 100 ms, one stream's window 4.0 MiB carries about 40.0 MiB/s (at most 8 by default)"},
		{1, 80 * time.Microsecond, "one stream: round trip 0.08 ms, one stream's window 4.0 MiB carries about 48.8 GiB/s, enough for 10 Gbit/s"},
		{1, 0, "one stream: the round trip is not known here"},
	} {
		if got := streamsStory(tt.n, tt.rtt, 4<<20); !strings.Contains(got, tt.want) {
			t.Errorf("streamsStory(%d, %v) = %q, want %q", tt.n, tt.rtt, got, tt.want)
		}
	}
}
