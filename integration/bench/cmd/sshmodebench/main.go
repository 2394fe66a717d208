// Command sshmodebench compares rsync and tar through ssh and through socketpipe --ssh on a real
// sshd on loopback (issue 10's benchmark), and prints medians, speed-ups and client CPU time.
// It needs root, sshd, ssh, rsync and tar, like the integration tests:
//
//	go run ./integration/bench/cmd/sshmodebench [-size 1GiB-in-bytes] [-tree bytes] [-runs 5]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/socketpipe/socketpipe/integration/bench"
)

func main() {
	size := flag.Int64("size", 1<<30, "bytes of the file rsync copies")
	tree := flag.Int64("tree", 256<<20, "bytes of the tree tar streams")
	runs := flag.Int("runs", 5, "measured runs of each variant")
	quiet := flag.Bool("q", false, "print only the table")
	flag.Parse()

	t := newTB()
	var rows []bench.SSHModeRow
	var err error
	ferr := t.do(func() {
		opts := bench.SSHModeOptions{FileSize: *size, TreeSize: *tree, Runs: *runs}
		if !*quiet {
			opts.Log = os.Stderr
		}
		rows, err = bench.BenchSSHMode(t, opts)
	})
	t.close()
	if ferr != nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sshmodebench: %v\n", err)
		os.Exit(1)
	}
	bench.WriteSSHModeTable(os.Stdout, rows)
}

// tb lets the harness, written against testing.TB, run in a program: Fatal and Skip panic
// with a value that do turns into an error, and close runs the cleanups.
type tb struct {
	testing.TB // nil: satisfies the unexported method; everything the harness calls is below

	mu       sync.Mutex
	root     string
	n        int
	cleanups []func()
	failed   bool
}

type stop struct{ msg string }

func newTB() *tb {
	root, err := os.MkdirTemp("", "socketpipe-sshmodebench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sshmodebench:", err)
		os.Exit(1)
	}
	os.Chmod(root, 0o755)
	return &tb{root: root}
}

func (t *tb) do(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s, ok := r.(stop)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%s", s.msg)
		}
	}()
	f()
	return nil
}

func (t *tb) close() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.do(t.cleanups[i])
	}
	os.RemoveAll(t.root)
}

func (t *tb) Helper()          {}
func (t *tb) Name() string     { return "sshmodebench" }
func (t *tb) Cleanup(f func()) { t.mu.Lock(); t.cleanups = append(t.cleanups, f); t.mu.Unlock() }
func (t *tb) Fail()            { t.mu.Lock(); t.failed = true; t.mu.Unlock() }
func (t *tb) Failed() bool     { t.mu.Lock(); defer t.mu.Unlock(); return t.failed }
func (t *tb) Skipped() bool    { return false }
func (t *tb) FailNow()         { t.Fail(); panic(stop{"failed"}) }
func (t *tb) SkipNow()         { panic(stop{"skipped"}) }
func (t *tb) Log(args ...any)  { fmt.Fprintln(os.Stderr, args...) }
func (t *tb) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
func (t *tb) Error(args ...any)                 { t.Fail(); t.Log(args...) }
func (t *tb) Errorf(format string, args ...any) { t.Fail(); t.Logf(format, args...) }
func (t *tb) Fatal(args ...any)                 { t.Fail(); panic(stop{fmt.Sprint(args...)}) }
func (t *tb) Fatalf(format string, args ...any) { t.Fail(); panic(stop{fmt.Sprintf(format, args...)}) }
func (t *tb) Skip(args ...any)                  { panic(stop{fmt.Sprint(args...)}) }
func (t *tb) Skipf(format string, args ...any)  { panic(stop{fmt.Sprintf(format, args...)}) }
func (t *tb) Setenv(key, value string)          { os.Setenv(key, value) }

func (t *tb) TempDir() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	d := filepath.Join(t.root, fmt.Sprint(t.n))
	if err := os.Mkdir(d, 0o755); err != nil {
		panic(stop{err.Error()})
	}
	return d
}
