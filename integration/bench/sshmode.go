//go:build linux

package bench

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// SSHModeOptions sizes the ssh mode benchmark (issue 10). Zero fields take the defaults.
type SSHModeOptions struct {
	FileSize int64  // the file rsync -a -W copies; default 1 GiB
	TreeSize int64  // the total size of the tree tar streams; default 256 MiB
	Runs     int    // measured runs of each variant, interleaved; default 5
	Alt      string // another socketpipe binary to run beside this one (both halves), or ""
	Log      io.Writer
}

// SSHModeRow is one variant's measurements.
type SSHModeRow struct {
	Workload  string          // "rsync -a -W, 1 GiB file" or "tar cf - | tar xf -, 256 MiB tree"
	Transport string          // "ssh" or "socketpipe --ssh"
	Bytes     int64           // payload size
	Wall      []time.Duration // each run's wall time
	CPU       []time.Duration // each run's client CPU time (user+system of every local process)
	// Medians of Wall and CPU.
	MedianWall, MedianCPU time.Duration
	// Speedup is the ssh variant's median wall time over this one's (1 for ssh itself).
	Speedup float64
}

// BenchSSHMode compares `rsync -a -W` of one big file and a tar stream of a tree, each through
// `ssh` and through `socketpipe --ssh`, on a real sshd on loopback. Runs of the variants are
// interleaved (ssh, socketpipe, ssh, ...) after one warm-up run each, so drift in the machine
// hits both alike. t is a testing.TB (a *testing.B or the bench program's stand-in): it owns the
// temporary directories and the sshd.
func BenchSSHMode(t testing.TB, opts SSHModeOptions) (rows []SSHModeRow, err error) {
	if opts.FileSize == 0 {
		opts.FileSize = 1 << 30
	}
	if opts.TreeSize == 0 {
		opts.TreeSize = 256 << 20
	}
	if opts.Runs == 0 {
		opts.Runs = 5
	}
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, format+"\n", args...)
		}
	}
	for _, tool := range []string{"rsync", "tar", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("bench: %s is needed: %w", tool, err)
		}
	}
	binDir := harness.BuildSocketpipe(t)
	sp := filepath.Join(binDir, "socketpipe")
	sshd := harness.StartSSHD(t, harness.SSHDOptions{PathDirs: []string{binDir}})
	base := t.TempDir()

	src := filepath.Join(base, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		return nil, err
	}
	big := filepath.Join(src, "big")
	if err := writeRandom(big, opts.FileSize, 1); err != nil {
		return nil, err
	}
	tree := filepath.Join(base, "tree")
	if err := writeTree(tree, opts.TreeSize); err != nil {
		return nil, err
	}
	dst := filepath.Join(base, "dst")

	transports := []struct{ name, rsh string }{
		{"ssh", "ssh -F " + sshd.ClientConfig},
		{"socketpipe --ssh", sp + " --ssh -F " + sshd.ClientConfig},
	}
	if opts.Alt != "" {
		transports = append(transports, struct{ name, rsh string }{"socketpipe --ssh [alt]",
			opts.Alt + " --remote-path " + opts.Alt + " --ssh -F " + sshd.ClientConfig})
	}
	type variant struct {
		row  *SSHModeRow
		argv []string
	}
	var vs []variant
	for _, w := range []struct {
		name  string
		bytes int64
		argv  func(rsh string) []string
	}{
		{fmt.Sprintf("rsync -a -W, %s file", size(opts.FileSize)), opts.FileSize, func(rsh string) []string {
			return []string{"rsync", "-a", "-W", "-e", rsh, big, sshd.Alias + ":" + dst + "/"}
		}},
		{fmt.Sprintf("tar cf - | tar xf -, %s tree", size(opts.TreeSize)), opts.TreeSize, func(rsh string) []string {
			return []string{"/bin/sh", "-c", fmt.Sprintf("tar cf - -C %s . | %s %s 'mkdir -p %s && tar xf - -C %s'", tree, rsh, sshd.Alias, dst, dst)}
		}},
		// The other way: the remote tar writes its 10 KiB records to the connection.
		{fmt.Sprintf("remote tar cf - | tar xf -, %s tree", size(opts.TreeSize)), opts.TreeSize, func(rsh string) []string {
			return []string{"/bin/sh", "-c", fmt.Sprintf("mkdir -p %s && %s %s 'tar cf - -C %s .' | tar xf - -C %s", dst, rsh, sshd.Alias, tree, dst)}
		}},
	} {
		for _, tr := range transports {
			vs = append(vs, variant{&SSHModeRow{Workload: w.name, Transport: tr.name, Bytes: w.bytes}, w.argv(tr.rsh)})
		}
	}

	for run := -1; run < opts.Runs; run++ {
		for _, v := range vs {
			if err := os.RemoveAll(dst); err != nil {
				return nil, err
			}
			wall, cpu, err := timeCommand(v.argv)
			if err != nil {
				return nil, fmt.Errorf("bench: %s through %s: %w", v.row.Workload, v.row.Transport, err)
			}
			if run < 0 {
				continue // warm-up: page cache, sshd, binaries
			}
			logf("%-42s %-22s run %d: %v wall, %v client CPU", v.row.Workload, v.row.Transport, run+1, wall.Round(time.Millisecond), cpu.Round(time.Millisecond))
			v.row.Wall = append(v.row.Wall, wall)
			v.row.CPU = append(v.row.CPU, cpu)
		}
	}
	os.RemoveAll(dst)
	for i := range vs {
		r := vs[i].row
		r.MedianWall, r.MedianCPU = median(r.Wall), median(r.CPU)
		sshRow := vs[i-i%len(transports)].row // the ssh row of this workload
		r.Speedup = float64(sshRow.MedianWall) / float64(r.MedianWall)
		rows = append(rows, *r)
	}
	return rows, nil
}

// WriteSSHModeTable writes rows as a table: medians, throughput, speed-up and client CPU.
func WriteSSHModeTable(w io.Writer, rows []SSHModeRow) {
	fmt.Fprintf(w, "%-42s %-22s %10s %11s %9s %12s\n", "workload", "transport", "wall", "throughput", "speed-up", "client CPU")
	for _, r := range rows {
		mbs := float64(r.Bytes) / (1 << 20) / r.MedianWall.Seconds()
		fmt.Fprintf(w, "%-42s %-22s %10v %7.0f MiB/s %8.2fx %12v\n", r.Workload, r.Transport,
			r.MedianWall.Round(time.Millisecond), mbs, r.Speedup, r.MedianCPU.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "(medians of %d interleaved runs on loopback; client CPU is user+system time of every local process)\n", len(rows[0].Wall))
}

// timeCommand runs argv and returns its wall time and the CPU time of it and every process it
// waited for (wait4's rusage includes reaped descendants).
func timeCommand(argv []string) (wall, cpu time.Duration, err error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	wall = time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("%v\n%s", err, stderr.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return wall, cpu, nil
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// writeRandom writes n incompressible bytes to name.
func writeRandom(name string, n int64, seed uint64) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	if _, err := io.CopyN(f, r, n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeTree writes about total bytes as a tree of files from 1 KiB to 4 MiB in nested
// directories: what a tar of a home or a source tree looks like.
func writeTree(dir string, total int64) error {
	rng := rand.New(rand.NewPCG(1, 2))
	var written int64
	for i := 0; written < total; i++ {
		sz := int64(1024) << rng.IntN(13) // 1 KiB .. 4 MiB
		sz = min(sz+rng.Int64N(sz), total-written)
		p := filepath.Join(dir, fmt.Sprintf("d%02d/e%02d/f%05d", i%17, i%5, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeRandom(p, sz, uint64(i)); err != nil {
			return err
		}
		written += sz
	}
	return nil
}
