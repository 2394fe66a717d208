package plumb

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// syncBuffer collects what a terminal shows, for a test to look at while it is written.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits, up to a deadline, until cond holds of what the buffer has.
func waitFor(t *testing.T, b *syncBuffer, what string, cond func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond(b.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s; the terminal shows %q", what, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openPTY returns a pseudo-terminal's two ends and what its screen receives.
func openPTY(t *testing.T) (tty *os.File, screen *syncBuffer) {
	t.Helper()
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("pseudo-terminal: %v", err)
	}
	screen = &syncBuffer{}
	copied := make(chan struct{})
	go func() { io.Copy(screen, ptm); close(copied) }()
	t.Cleanup(func() {
		tty.Close()
		ptm.Close()
		<-copied
	})
	if !term.IsTerminal(int(tty.Fd())) {
		t.Fatal("the pseudo-terminal is not a terminal")
	}
	return tty, screen
}

var refresh = regexp.MustCompile(`\rsocketpipe: \d+:\d\d:\d\d\.\d  to remote ([0-9.]+ [KMG]?i?B) [^\r]*\x1b\[K`)

// TestProgressTerminal runs a plain transfer with its progress on a pseudo-terminal: the line
// is rewritten in place as the counts grow, and the final totals end it on a line of their own.
func TestProgressTerminal(t *testing.T) {
	tty, screen := openPTY(t)
	p := &Progress{W: tty, Terminal: true, Interval: 20 * time.Millisecond}
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	// Five pieces a tenth of a second apart: long enough to be seen growing.
	input := []string{"sh", "-c", "for i in 1 2 3 4 5; do head -c 1000000 /dev/zero; sleep 0.1; done"}
	rep, err := loopback(t, &Client{
		Input: input, Remote: []string{"cat"}, Output: []string{"cat"}, Stdout: devnull,
		Mode: "back", Watch: p.Watch,
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Finish(rep.Stats(nil))
	if !haveTCPCounts {
		// No counts to show: the line and the totals say so instead of showing 0.
		waitFor(t, screen, "final line", func(s string) bool { return strings.Contains(s, "\r\n") })
		out := screen.String()
		if !strings.Contains(out, "0  bytes unknown (") || !strings.Contains(out, "\r\x1b[Ksocketpipe: done: bytes unknown (") {
			t.Errorf("without counts the terminal shows %q", out)
		}
		return
	}
	want := "socketpipe: done: to remote 5000000 bytes (4.8 MiB, "
	waitFor(t, screen, "final totals", func(s string) bool { return strings.Contains(s, "retransmits\r\n") })
	out := screen.String()
	i := strings.Index(out, want)
	if i < 0 {
		t.Fatalf("no final totals %q in %q", want, out)
	}
	if !strings.HasSuffix(out[:i], "\r\x1b[K") {
		t.Errorf("the progress line is not cleared before the totals: %q", out)
	}
	if !strings.Contains(out[i:], "from remote 5000000 bytes") || !strings.Contains(out[i:], "rtt ") {
		t.Errorf("final totals: %q", out[i:])
	}
	lines := refresh.FindAllStringSubmatch(out[:i], -1)
	sizes := map[string]bool{}
	for _, l := range lines {
		sizes[l[1]] = true
	}
	if len(lines) < 5 || len(sizes) < 3 {
		t.Fatalf("%d refreshes showing %d different counts, want the line rewritten as it grows: %q", len(lines), len(sizes), out)
	}
	if strings.Contains(out[:i], "\n") {
		t.Errorf("the progress line is not rewritten in place: %q", out[:i])
	}
}

// TestProgressLog: other messages clear the progress line rather than run into it.
func TestProgressLog(t *testing.T) {
	screen := &syncBuffer{}
	p := &Progress{W: screen, Terminal: true, Interval: 10 * time.Millisecond, Width: 48}
	l := &link{}
	p.Watch(&Meter{l: l, start: time.Now()})
	l.sent.Add(2048)
	waitFor(t, screen, "progress line", func(s string) bool { return strings.Contains(s, "to remote 2.0 KiB") })
	fmt.Fprintf(p.Writer(screen), "socketpipe: note\n")
	p.Finish(&Stats{Bytes: StatsBytes{ToRemote: 2048}})
	out := screen.String()
	for _, line := range strings.Split(out, "\r") {
		if line = strings.TrimSuffix(line, "\x1b[K"); strings.HasPrefix(line, "socketpipe: 0:") && len(line) > 47 {
			t.Errorf("a progress line wider than the terminal: %q", line)
		}
	}
	if !strings.Contains(out, "\x1b[K\r\x1b[Ksocketpipe: note\n") {
		t.Errorf("the note is not on a cleared line: %q", out)
	}
	if !strings.HasSuffix(out, "\n") || !strings.Contains(out, "done: to remote 2048 bytes") {
		t.Errorf("no final totals: %q", out)
	}
}

// TestProgressNotTerminal: elsewhere than on a terminal, whole lines at the interval.
func TestProgressNotTerminal(t *testing.T) {
	screen := &syncBuffer{}
	p := &Progress{W: screen, Interval: 10 * time.Millisecond}
	l := &link{}
	p.Watch(&Meter{l: l, start: time.Now()})
	l.received.Add(3 << 20)
	waitFor(t, screen, "three lines", func(s string) bool { return strings.Count(s, "from remote 3.0 MiB") >= 3 })
	p.Finish(&Stats{Bytes: StatsBytes{FromRemote: 3 << 20}})
	out := screen.String()
	if strings.ContainsAny(out, "\r\x1b") {
		t.Errorf("terminal controls where there is no terminal: %q", out)
	}
	last := out[strings.LastIndex(strings.TrimSuffix(out, "\n"), "\n")+1:]
	if !strings.HasPrefix(last, "socketpipe: done: to remote 0 bytes (0 B, 0 B/s), from remote 3145728 bytes (3.0 MiB") {
		t.Errorf("last line %q", last)
	}
	var idle syncBuffer
	(&Progress{W: &idle}).Finish(&Stats{})
	if idle.String() != "" {
		t.Errorf("a progress never watched says %q", idle.String())
	}
}

func TestProgressUnits(t *testing.T) {
	tests := []struct {
		n    float64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {16 << 20, "16.0 MiB"}, {1.5 * (1 << 40), "1.5 TiB"},
	}
	for _, tt := range tests {
		if got := size(tt.n); got != tt.want {
			t.Errorf("size(%v) = %q, want %q", tt.n, got, tt.want)
		}
	}
	if got := clock(3723*time.Second + 450*time.Millisecond); got != "1:02:03.5" {
		t.Errorf("clock = %q", got)
	}
}
