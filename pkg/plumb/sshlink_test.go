package plumb

import (
	"testing"
	"time"
)

func TestChooseChannels(t *testing.T) {
	const MiB = 1 << 20
	for _, tt := range []struct {
		rtt    time.Duration
		window int64
		want   int
	}{
		{0, 4 * MiB, 0},                        // round trip unknown: frames, as before
		{100 * time.Microsecond, 4 * MiB, 0},   // loopback: one window carries 21 GB/s
		{time.Millisecond, 4 * MiB, 0},         // LAN: 2.1 GB/s
		{1600 * time.Microsecond, 4 * MiB, 0},  // 1.31 GB/s, still 10 Gbit/s
		{2 * time.Millisecond, 4 * MiB, 2},     // 1.05 GB/s: two carry it
		{5 * time.Millisecond, 4 * MiB, 3},     // 419 MB/s each
		{10 * time.Millisecond, 4 * MiB, 4},    // twice the TCP window, not 6
		{100 * time.Millisecond, 4 * MiB, 4},   // the same: TCP's window limits
		{100 * time.Millisecond, 6 * MiB, 6},   // a larger window, more channels
		{100 * time.Millisecond, 64 * MiB, 16}, // capped at sshchan.MaxChannels
		{100 * time.Millisecond, 1 * MiB, 2},   // never fewer than two on a long path
		{time.Second, 4 * MiB, 4},              // satellite
	} {
		if got := chooseChannels(tt.rtt, tt.window); got != tt.want {
			t.Errorf("chooseChannels(%v, %d) = %d, want %d", tt.rtt, tt.window, got, tt.want)
		}
	}
}

func TestLoopbackPort(t *testing.T) {
	for _, tt := range []struct {
		addr string
		port int
		ok   bool
	}{
		{"", 0, true},
		{"127.0.0.1:4000", 4000, true},
		{"127.0.0.1:0", 0, false},
		{"127.0.0.1:70000", 0, false},
		{"10.0.0.1:4000", 0, false}, // the channels go to the loopback only
		{"[::1]:4000", 0, false},
		{"localhost:4000", 0, false},
		{"127.0.0.1", 0, false},
		{"127.0.0.1:x", 0, false},
	} {
		port, err := loopbackPort(tt.addr)
		if port != tt.port || (err == nil) != tt.ok {
			t.Errorf("loopbackPort(%q) = %d, %v; want %d, ok %v", tt.addr, port, err, tt.port, tt.ok)
		}
	}
}
