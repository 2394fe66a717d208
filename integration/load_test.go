//go:build linux

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// TestConcurrentTransfers runs 32 transfers of different random data through the same sshd
// at once, half with the native login and half with the ssh binary: every one arrives intact,
// and nothing is left.
func TestConcurrentTransfers(t *testing.T) {
	t.Parallel()
	const n, size = 32, 4 << 20
	r := newRemote(t, harness.SSHDOptions{})
	outDir := t.TempDir()
	type job struct {
		in, sum, out string
	}
	jobs := make([]job, n)
	for i := range jobs {
		in, s := randomFile(t, size)
		jobs[i] = job{in: in, sum: s, out: filepath.Join(outDir, fmt.Sprint(i))}
	}
	start := time.Now()
	var wg sync.WaitGroup
	results := make([]*result, n)
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			login := r.nativeLogin()
			if i%2 == 1 {
				login = r.execLogin()
			}
			// A remote file and back: both directions carry the data.
			res := r.runNoFatal(args(block("-i", "cat", jobs[i].in), login, block("-r", "cat"), block("-o", "dd", "of="+jobs[i].out, "bs=64k", "status=none"))...)
			results[i] = res
		}()
	}
	wg.Wait()
	t.Logf("time to exit: %d concurrent transfers of %d MiB: %v", n, size>>20, time.Since(start).Round(10*time.Millisecond))
	for i, res := range results {
		if res.code != 0 {
			t.Errorf("transfer %d: %v", i, res)
			continue
		}
		if got := fileSum(t, jobs[i].out); got != jobs[i].sum {
			t.Errorf("transfer %d: sha256 %s, want %s", i, got, jobs[i].sum)
		}
		if strings.Contains(res.stderr, "socketpipe: error:") {
			t.Errorf("transfer %d printed an error:\n%s", i, res.stderr)
		}
	}
	r.noneLeft(t)
}

// runNoFatal is run for other goroutines than the test's: it reports a hang as exit -1.
func (r *remote) runNoFatal(args ...string) *result {
	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	defer cancel()
	cmd := r.spCmd(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := &result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.code = -1
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		res.code = -1
		res.stderr += err.Error()
	}
	return res
}
