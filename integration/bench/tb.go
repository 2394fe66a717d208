//go:build linux

package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// T lets the test harness (written against testing.TB) run inside an ordinary program. Fatal
// and Skip panic with a value that [T.Do] turns back into an error; [T.Close] runs the cleanups
// (stopping sshd, say) and removes every directory TempDir made.
//
// testing.TB has an unexported method, so T embeds a nil testing.TB to satisfy it; every
// method the harness calls is defined here.
type T struct {
	testing.TB

	Out io.Writer // where Log and Logf write; nil discards

	mu       sync.Mutex
	root     string
	next     int
	cleanups []func()
	failed   bool
}

// stop is the panic value of Fatal and Skip.
type stop struct{ msg string }

// NewT returns a T whose temporary directories live under a fresh directory in os.TempDir.
func NewT() (*T, error) {
	root, err := os.MkdirTemp("", "socketpipe-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	// Sessions run as root, but keep the tree readable as sshd's sessions of other users would need.
	os.Chmod(root, 0o755)
	return &T{root: root}, nil
}

// Do runs f, returning the message of a Fatal or Skip inside it as an error.
func (t *T) Do(f func()) (err error) {
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

// Close runs the cleanups, last registered first, and removes the temporary directories.
func (t *T) Close() {
	t.mu.Lock()
	cs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		t.Do(cs[i])
	}
	os.RemoveAll(t.root)
}

func (t *T) Helper()          {}
func (t *T) Name() string     { return "bench" }
func (t *T) Cleanup(f func()) { t.mu.Lock(); t.cleanups = append(t.cleanups, f); t.mu.Unlock() }
func (t *T) Fail()            { t.mu.Lock(); t.failed = true; t.mu.Unlock() }
func (t *T) Failed() bool     { t.mu.Lock(); defer t.mu.Unlock(); return t.failed }
func (t *T) Skipped() bool    { return false }
func (t *T) FailNow()         { t.Fail(); panic(stop{"failed"}) }
func (t *T) SkipNow()         { panic(stop{"skipped"}) }

func (t *T) Log(args ...any) { t.Logf("%s", fmt.Sprintln(args...)) }
func (t *T) Logf(format string, args ...any) {
	if t.Out != nil {
		fmt.Fprintf(t.Out, "spbench: "+format+"\n", args...)
	}
}
func (t *T) Error(args ...any)                 { t.Fail(); t.Log(args...) }
func (t *T) Errorf(format string, args ...any) { t.Fail(); t.Logf(format, args...) }
func (t *T) Fatal(args ...any)                 { t.Fail(); panic(stop{fmt.Sprint(args...)}) }
func (t *T) Fatalf(format string, args ...any) { t.Fail(); panic(stop{fmt.Sprintf(format, args...)}) }
func (t *T) Skip(args ...any)                  { panic(stop{fmt.Sprint(args...)}) }
func (t *T) Skipf(format string, args ...any)  { panic(stop{fmt.Sprintf(format, args...)}) }

func (t *T) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	os.Setenv(key, value)
	t.Cleanup(func() {
		if had {
			os.Setenv(key, old)
		} else {
			os.Unsetenv(key)
		}
	})
}

// TempDir returns a fresh directory under T's root.
func (t *T) TempDir() string {
	t.mu.Lock()
	t.next++
	dir := filepath.Join(t.root, strconv.Itoa(t.next))
	t.mu.Unlock()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("bench: %v", err)
	}
	return dir
}

var _ testing.TB = (*T)(nil)
