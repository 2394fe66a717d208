package plumb

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	return len(fdTargets(t))
}

// fdTargets names what each open file descriptor refers to, for the message of a leak.
func fdTargets(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string, len(ents))
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		m[e.Name()] = target
	}
	return m
}

// settleCounts waits up to a deadline for the fd and goroutine counts to come back to what they
// were: goroutines of a finished run (a listener's last accept, a reader's last read) may take
// a moment to return.
func settleCounts(t *testing.T, fds, goroutines int, within time.Duration) (int, int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		f, g := openFDs(t), runtime.NumGoroutine()
		if (f <= fds && g <= goroutines) || time.Now().After(deadline) {
			return f, g
		}
		time.Sleep(20 * time.Millisecond) // polling the counts themselves, bounded by the deadline
	}
}

// TestNoLeaks runs many pipelines in-process, in every mode, succeeding and failing, and
// checks that the process holds as many file descriptors and goroutines afterwards as before.
func TestNoLeaks(t *testing.T) {
	// No collection meanwhile: a descriptor dropped unclosed would otherwise be counted or
	// not as its finalizer happened to run, and the test would fail only now and then.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	in, sum := randomFile(t, 1<<20)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	type variant struct {
		mode    string
		encrypt bool
		remote  []string
		output  []string
	}
	var variants []variant
	for _, mode := range []string{"back", "reverse", "auto", "ssh"} {
		for _, enc := range []bool{false, true} {
			variants = append(variants,
				variant{mode, enc, []string{"cat"}, nil},
				variant{mode, enc, []string{"sh", "-c", "cat >/dev/null; exit 3"}, []string{"cat"}},
				variant{mode, enc, []string{"yes"}, []string{"head", "-c", "1"}},
			)
		}
	}
	run := func(i int, v variant) {
		out := filepath.Join(t.TempDir(), "out")
		output := v.output
		if output == nil {
			output = []string{"sh", "-c", "cat > " + out}
		}
		rep, err := loopback(t, &Client{Input: []string{"cat", in}, Remote: v.remote, Output: output,
			Stdout: devnull, Mode: v.mode, Encrypt: v.encrypt, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatalf("run %d (%+v): %v", i, v, err)
		}
		if v.output == nil {
			if st, s := rep.Status(); st != 0 {
				t.Fatalf("run %d (%+v): status %d (%v)", i, v, st, s)
			}
			if got, _ := os.ReadFile(out); sha256.Sum256(got) != sum {
				t.Fatalf("run %d (%+v): the data did not arrive intact", i, v)
			}
		}
	}
	// One run of each first, so that lazily started runtime goroutines and cached
	// descriptors are in place before counting.
	fds0, goroutines0 := openFDs(t), runtime.NumGoroutine()
	for i, v := range variants {
		run(i, v)
	}
	fds, goroutines := settleCounts(t, fds0, goroutines0, 2*time.Second)
	before := fdTargets(t)
	const rounds = 2
	for r := 0; r < rounds; r++ {
		for i, v := range variants {
			run(i, v)
		}
	}
	f, g := settleCounts(t, fds, goroutines, 15*time.Second)
	t.Logf("%d runs: fds %d -> %d, goroutines %d -> %d", rounds*len(variants), fds, f, goroutines, g)
	if f > fds {
		var leaked []string
		for fd, target := range fdTargets(t) {
			if before[fd] != target {
				leaked = append(leaked, fd+" -> "+target)
			}
		}
		t.Errorf("%d file descriptors leaked over %d runs: %v", f-fds, rounds*len(variants), leaked)
	}
	if g > goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines leaked over %d runs:\n%s", g-goroutines, rounds*len(variants), buf[:runtime.Stack(buf, true)])
	}
}
