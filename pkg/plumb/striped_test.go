package plumb

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// --streams N stripes the data over N connections made the way the first was, back or
// reverse, plain or -e, and the data arrives byte-exact through the remote command and back.
func TestLoopbackStriped(t *testing.T) {
	const size = 8<<20 + 12345
	in, sum := randomFile(t, size)
	for _, mode := range []string{"back", "reverse"} {
		for _, enc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/e=%v", mode, enc), func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out")
				rep, err := loopback(t, &Client{
					Input:  []string{"cat", in},
					Remote: []string{"cat"},
					Output: []string{"sh", "-c", "cat > " + out},
					Mode:   mode, Encrypt: enc, Streams: 4, Timeout: 20 * time.Second,
				})
				if err != nil {
					t.Fatal(err)
				}
				if st, s := rep.Status(); st != 0 {
					t.Fatalf("status %d (%v)", st, s)
				}
				got, _ := os.ReadFile(out)
				if sha256.Sum256(got) != sum {
					t.Fatalf("%d bytes arrived, not the %d sent", len(got), size)
				}
				if rep.Streams != 4 || rep.Encrypted != enc {
					t.Fatalf("report says %d streams, encrypted %v; want 4, %v", rep.Streams, rep.Encrypted, enc)
				}
				if rep.ToRemote != size || rep.FromRemote != size {
					t.Fatalf("counted %d to the remote and %d back, want %d each way", rep.ToRemote, rep.FromRemote, size)
				}
			})
		}
	}
}

// The statuses of a striped run are a shell's: SIGPIPE both ways, as with one stream.
func TestLoopbackStripedStatuses(t *testing.T) {
	for _, tt := range []struct {
		name         string
		in, rem, out []string
		want         int
		stage        string
	}{
		{"remote fails", []string{"true"}, []string{"sh", "-c", "cat; exit 3"}, []string{"cat"}, 3, StageRemote},
		{"output exits early", []string{"true"}, []string{"yes"}, []string{"head", "-c", "1"}, 141, StageRemote},
		{"remote leaves input unread", []string{"yes"}, []string{"head", "-c", "1"}, []string{"cat"}, 141, StageInput},
	} {
		t.Run(tt.name, func(t *testing.T) {
			devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			defer devnull.Close()
			rep, err := loopback(t, &Client{Input: tt.in, Remote: tt.rem, Output: tt.out, Mode: "back", Streams: 3, Stdout: devnull})
			if err != nil {
				t.Fatal(err)
			}
			if st, s := rep.Status(); st != tt.want || s == nil || s.Name != tt.stage {
				t.Fatalf("status %d from %v, want %d from %s", st, s, tt.want, tt.stage)
			}
		})
	}
}

// By default loopback stays one stream, the socket itself (zero copy), and -v says why.
func TestLoopbackDefaultOneStream(t *testing.T) {
	var mu sync.Mutex
	var log []string
	rep, err := loopback(t, &Client{
		Input: []string{"true"}, Remote: []string{"cat"}, Output: []string{"cat"}, Mode: "back",
		Logf: func(f string, a ...any) { mu.Lock(); log = append(log, fmt.Sprintf(f, a...)); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Streams != 1 || rep.TCP == nil && haveTCPCounts {
		t.Fatalf("loopback: %d streams, TCP %v; want one plain stream", rep.Streams, rep.TCP)
	}
	story := strings.Join(log, "\n")
	if haveTCPCounts && !strings.Contains(story, "data connection: one stream: round trip") {
		t.Fatalf("-v does not say why one stream:\n%s", story)
	}
}
