//go:build linux

package bench

// The WAN table of `make bench` (issue 18): the same transfers as the loopback table, between
// two network namespaces joined by the harness's WAN emulator at 1 Gbit/s and a long round
// trip, where one TCP stream is held to its window rather than to the CPU.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// WANRate is the link rate of every path of the WAN table.
const WANRate = harness.Gbps

// WANPath is one column of the WAN table: a round trip, a random loss, the bytes each
// transfer moves, and the rows measured on it.
type WANPath struct {
	RTT  time.Duration
	Loss float64 // per packet and direction, 0.001 for 0.1 %
	Size int64
	Rows []string // keys of WANRows; nil means all
}

// Key names the path in cell keys: "100ms", "50ms-loss".
func (p WANPath) Key() string {
	k := fmt.Sprintf("%dms", p.RTT.Milliseconds())
	if p.Loss > 0 {
		k += "-loss"
	}
	return k
}

// Name is the path's column heading: "100 ms RTT, 256 MiB", "50 ms RTT, 0.1 % loss, 256 MiB".
func (p WANPath) Name() string {
	s := fmt.Sprintf("%d ms RTT", p.RTT.Milliseconds())
	if p.Loss > 0 {
		s += fmt.Sprintf(", %g %% loss", p.Loss*100)
	}
	return s + ", " + Size(p.Size)
}

func (p WANPath) has(row string) bool {
	if p.Rows == nil {
		return true
	}
	for _, r := range p.Rows {
		if r == row {
			return true
		}
	}
	return false
}

// DefaultWANPaths are the table's columns, each size chosen so that a cell takes 3-15 s at
// 1 Gbit/s: one stream's 4 MiB window carries about 28 MB/s at 100 ms, the ssh pipe's 2 MiB
// channel window about half that; at 10 ms the link is the limit.
func DefaultWANPaths() []WANPath {
	return []WANPath{
		{RTT: 10 * time.Millisecond, Size: 1 << 30},
		{RTT: 50 * time.Millisecond, Size: 512 << 20},
		{RTT: 100 * time.Millisecond, Size: 256 << 20},
		{RTT: 50 * time.Millisecond, Loss: 0.001, Size: 256 << 20, Rows: []string{"ssh", "sp"}},
	}
}

// A WANRow is one way of moving a data file from the client's host to a sink on the other.
type WANRow struct {
	Key, Name string
	Run       func(ctx context.Context, e *Env, s *WANSite, data Data) (Result, error)
}

// WANRows are the table's rows, in the order each path runs them.
var WANRows = []WANRow{
	{"raw", "raw TCP, one stream, cat → sink", func(ctx context.Context, e *Env, s *WANSite, data Data) (Result, error) {
		return e.runWANRaw(ctx, s, data)
	}},
	{"ssh", "ssh pipe, cat → ssh host sink", func(ctx context.Context, e *Env, s *WANSite, data Data) (Result, error) {
		return e.RunSSHPipe(ctx, data)
	}},
	wanSocketpipe("sp", "socketpipe (default)"),
	wanSocketpipe("sp1", "socketpipe --streams 1", "--streams", "1"),
	wanSocketpipe("sp8", "socketpipe --streams 8", "--streams", "8"),
	wanSocketpipe("e", "socketpipe -e", "-e"),
	wanSocketpipe("mssh", "socketpipe -m ssh", "-m", "ssh"),
	{"rsync-ssh", "rsync -a -W -e ssh, one file", func(ctx context.Context, e *Env, s *WANSite, data Data) (Result, error) {
		return e.runRsync(ctx, s, data, "ssh -F "+s.SSHD.ClientConfig)
	}},
	{"rsync-sp", "rsync -a -W -e 'socketpipe --ssh', one file", func(ctx context.Context, e *Env, s *WANSite, data Data) (Result, error) {
		return e.runRsync(ctx, s, data, e.Socketpipe+" --ssh -F "+s.SSHD.ClientConfig)
	}},
}

func wanSocketpipe(key, name string, flags ...string) WANRow {
	return WANRow{key, name, func(ctx context.Context, e *Env, s *WANSite, data Data) (Result, error) {
		return e.RunSocketpipe(ctx, data, flags...)
	}}
}

// WANSite is where the WAN table runs: the emulated path, the client's host A and the remote
// host B with its sshd on port 22, whose sessions find socketpipe and spbench on PATH.
type WANSite struct {
	WAN  *harness.WAN
	A, B *harness.Host
	SSHD *harness.SSHD
	Dir  string // scratch on B's side (rsync's destination)
}

// WANCell is one row measured on one path.
type WANCell struct {
	Key   string // "wan-<row>@<path>", which spbench -only matches
	Bytes int64
	Wall  []time.Duration
	// Setup is, for each run, the same row moving TinySize bytes on the same path just
	// before: what the login, the connections and the ending cost, which the data path does
	// not include (as the loopback table's c).
	Setup  []time.Duration
	EmuCPU []time.Duration // the emulator's CPU time during each run (WAN.Stats)
	Err    error           // the first failure; the cell is not run again after it
}

func (c *WANCell) ok() bool { return c != nil && c.Err == nil && len(c.Wall) > 0 }

// dataPath is the cell's median time less its median setup: the time the data took.
func (c *WANCell) dataPath() time.Duration {
	return median(c.Wall) - median(c.Setup)
}

// WANTable is what BenchWAN measured: Cells[row][path] for WANRows and Paths, nil where the
// path has no such row or -only left it out.
type WANTable struct {
	Paths    []WANPath
	Cells    [][]*WANCell
	Runs     int
	Settings string // the hosts' TCP buffers and congestion control, as the emulator's hosts have them
}

// Cell returns the cell of row key on path key, or nil.
func (t *WANTable) Cell(row, path string) *WANCell {
	for i, r := range WANRows {
		for j, p := range t.Paths {
			if r.Key == row && p.Key() == path && i < len(t.Cells) && j < len(t.Cells[i]) {
				return t.Cells[i][j]
			}
		}
	}
	return nil
}

// WANOptions configures BenchWAN. Zero fields take the defaults.
type WANOptions struct {
	Paths []WANPath      // default DefaultWANPaths
	Size  int64          // if not 0, every path's size
	Runs  int            // interleaved rounds; default 1
	Only  *regexp.Regexp // if not nil, only the cells whose key matches
	// LoginFlags go before socketpipe's other flags ({"-x"}); nil probes the native login
	// as Env.ProbeNative does.
	LoginFlags []string
	Progress   io.Writer // a line per run; nil discards
}

// BenchWAN measures the WAN table: it makes the two hosts and the path, starts sshd on B, and
// runs each path's rows once per round, round after round (a, b, c, ... a, b, c, ...). A cell
// that fails keeps its error and is left out of the later rounds; the table goes on. It uses
// e's socketpipe and spbench, e.T for the harness (call it inside e.T.Do), and returns an
// error only when the hosts cannot be set up. It needs root, iproute2, /dev/net/tun and sshd.
func BenchWAN(ctx context.Context, e *Env, opts WANOptions) (*WANTable, error) {
	if opts.Paths == nil {
		opts.Paths = DefaultWANPaths()
	}
	if opts.Runs == 0 {
		opts.Runs = 1
	}
	t := &WANTable{Paths: opts.Paths, Runs: opts.Runs, Cells: make([][]*WANCell, len(WANRows))}
	selected := false
	for i, r := range WANRows {
		t.Cells[i] = make([]*WANCell, len(opts.Paths))
		for j, p := range opts.Paths {
			if opts.Size > 0 {
				t.Paths[j].Size = opts.Size
				p.Size = opts.Size
			}
			key := "wan-" + r.Key + "@" + p.Key()
			if p.has(r.Key) && (opts.Only == nil || opts.Only.MatchString(key)) {
				t.Cells[i][j] = &WANCell{Key: key, Bytes: p.Size}
				selected = true
			}
		}
	}
	if !selected {
		return t, nil
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	first := opts.Paths[0]
	wan := harness.NewWAN(e.T, harness.WANOptions{RTT: first.RTT, Rate: WANRate, Loss: first.Loss})
	s := &WANSite{WAN: wan, A: wan.Hosts[0], B: wan.Hosts[1], Dir: e.T.TempDir()}
	s.SSHD = harness.StartSSHD(e.T, harness.SSHDOptions{Netns: s.B.Name, ListenAddr: s.B.IPv4, Port: 22, PathDirs: []string{e.Bin}})
	t.Settings = hostSettings(s.A)
	we := *e
	we.Netns, we.SSHD, we.Login, we.LoginFlags = s.A.Name, s.SSHD, s.SSHD.SSHArgs(), opts.LoginFlags
	tiny, err := e.Data(TinySize)
	if err != nil {
		return t, err
	}
	if opts.LoginFlags == nil {
		if err := we.ProbeNative(ctx, tiny); err != nil {
			if we.LoginFlags == nil {
				return t, err
			}
			fmt.Fprintf(progress, "spbench: note: the native login failed across the WAN, so socketpipe executes ssh (-x): %v\n", strings.TrimSpace(err.Error()))
		}
	}
	for round := 1; round <= opts.Runs; round++ {
		for j, p := range t.Paths {
			if ctx.Err() != nil {
				return t, ctx.Err()
			}
			var todo []int
			for i := range WANRows {
				if c := t.Cells[i][j]; c != nil && c.Err == nil {
					todo = append(todo, i)
				}
			}
			if len(todo) == 0 {
				continue
			}
			if err := wan.Set(harness.WANOptions{RTT: p.RTT, Rate: WANRate, Loss: p.Loss}); err != nil {
				return t, err
			}
			data, err := e.Data(p.Size)
			if err != nil {
				return t, err
			}
			for _, i := range todo {
				c := t.Cells[i][j]
				setup, _, err := runWANCell(ctx, &we, s, WANRows[i], tiny)
				var r Result
				var cpu time.Duration
				if err == nil {
					r, cpu, err = runWANCell(ctx, &we, s, WANRows[i], data)
				}
				if err != nil {
					if ctx.Err() != nil {
						return t, ctx.Err()
					}
					c.Err = err
					fmt.Fprintf(progress, "spbench: round %d/%d %s: FAILED: %v\n", round, opts.Runs, c.Key, err)
					continue
				}
				c.Wall, c.Setup, c.EmuCPU = append(c.Wall, r.Elapsed), append(c.Setup, setup.Elapsed), append(c.EmuCPU, cpu)
				fmt.Fprintf(progress, "spbench: round %d/%d %s: %8.3f s  %s  (setup %.3f s; emulator %.2f s CPU)\n", round, opts.Runs, c.Key, r.Elapsed.Seconds(), rate(c.Bytes, r.Elapsed), setup.Elapsed.Seconds(), cpu.Seconds())
			}
		}
	}
	return t, nil
}

// wanCellTimeout ends a transfer that hangs (a stream that never ends): the cell fails, the
// table goes on.
const wanCellTimeout = 5 * time.Minute

// runWANCell runs one transfer after clearing both hosts' TCP metrics cache, so that no
// transfer starts with what an earlier one learnt of the path (its ssthresh after a loss),
// and returns the emulator's CPU time meanwhile.
func runWANCell(ctx context.Context, e *Env, s *WANSite, row WANRow, data Data) (Result, time.Duration, error) {
	for _, h := range []*harness.Host{s.A, s.B} {
		if out, err := h.Command(ctx, "ip", "tcp_metrics", "flush", "all").CombinedOutput(); err != nil {
			return Result{}, 0, fmt.Errorf("bench: ip tcp_metrics flush in %s: %v: %s", h.Name, err, bytes.TrimSpace(out))
		}
	}
	before, err := s.WAN.Stats()
	if err != nil {
		return Result{}, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, wanCellTimeout)
	defer cancel()
	r, err := row.Run(ctx, e, s, data)
	if err != nil {
		return r, 0, err
	}
	after, err := s.WAN.Stats()
	if err != nil {
		return r, 0, err
	}
	return r, after.Sub(before).CPU(), nil
}

// hostSettings says what limits one TCP stream on the hosts: their buffers' sysctls (copied
// from the machine's own namespace; the harness changes none) and the congestion control.
func hostSettings(h *harness.Host) string {
	var parts []string
	for _, k := range []string{"net.ipv4.tcp_wmem", "net.ipv4.tcp_rmem", "net.core.wmem_max", "net.core.rmem_max", "net.ipv4.tcp_congestion_control"} {
		out, err := h.Command(context.Background(), "cat", "/proc/sys/"+strings.ReplaceAll(k, ".", "/")).Output()
		v := strings.Join(strings.Fields(string(out)), " ")
		if err != nil {
			v = "unknown"
		}
		parts = append(parts, k+" = "+v)
	}
	return strings.Join(parts, ", ")
}

// runWANRaw is raw TCP's one stream across the WAN: `cat data` on A whose standard output is
// a socket connected to B, and the sink on B (in a session of its own, as a remote command
// is) reading the other end; no socketpipe, no ssh, the kernel's default socket options.
func (e *Env) runWANRaw(ctx context.Context, s *WANSite, data Data) (Result, error) {
	l, err := s.B.Listen("tcp", net.JoinHostPort(s.B.IPv4, "0"))
	if err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	defer l.Close()
	dialed, err := s.A.DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	send, err := socketFile(dialed)
	if err != nil {
		return Result{}, err
	}
	defer send.Close()
	accepted, err := l.Accept()
	if err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	recv, err := socketFile(accepted)
	if err != nil {
		return Result{}, err
	}
	defer recv.Close()
	return e.sendRaw(ctx, s, send, recv, data)
}

// sendRaw runs cat on A into send and the sink on B from recv, and checks the sum.
func (e *Env) sendRaw(ctx context.Context, s *WANSite, send, recv *os.File, data Data) (Result, error) {
	var out, errb bytes.Buffer
	src := e.command(ctx, "cat", data.Path)
	src.Stdout, src.Stderr = send, &errb
	b := *e
	b.Netns = s.B.Name
	sink := b.command(ctx, "spbench", "sink")
	remoteSide(sink)
	sink.Stdin, sink.Stdout, sink.Stderr = recv, &out, &errb
	start := time.Now()
	if err := sink.Start(); err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	if err := src.Start(); err != nil {
		sink.Process.Kill()
		sink.Wait()
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	// Only the commands hold the sockets now: the sink sees cat's end of stream.
	send.Close()
	recv.Close()
	serr, kerr := src.Wait(), sink.Wait()
	r := Result{Elapsed: time.Since(start)}
	if serr != nil || kerr != nil {
		return r, fmt.Errorf("bench: raw TCP: cat: %v, sink: %v: %s", serr, kerr, errb.Bytes())
	}
	return r, check(out.String(), data)
}

// socketFile returns c as a blocking file with Nagle's algorithm on (the kernel's default, as
// raw TCP has it), and closes c.
func socketFile(c net.Conn) (*os.File, error) {
	defer c.Close()
	tc := c.(*net.TCPConn)
	if err := tc.SetNoDelay(false); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	f, err := tc.File()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return f, nil
}

// runRsync copies data's file with `rsync -a -W -e rsh` into a fresh directory on B, and
// checks the copy's length and CRC-32C.
func (e *Env) runRsync(ctx context.Context, s *WANSite, data Data, rsh string) (Result, error) {
	dst := filepath.Join(s.Dir, "rsync")
	if err := os.RemoveAll(dst); err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dst)
	r, err := timeRun(e.command(ctx, "rsync", "-a", "-W", "-e", rsh, data.Path, s.SSHD.Alias+":"+dst+"/"), fmt.Sprintf("rsync -e %q", rsh))
	if err != nil {
		return r, err
	}
	got, err := e.sumOf(filepath.Join(dst, filepath.Base(data.Path)))
	if err != nil {
		return r, err
	}
	if got.Sum != data.Sum {
		return r, fmt.Errorf("bench: checksum mismatch: rsync sent %v, the copy is %v", data.Sum, got.Sum)
	}
	return r, nil
}

// timeRun runs cmd and measures it; a failure says what (its name in the error) and what it
// wrote to standard error.
func timeRun(cmd *exec.Cmd, what string) (Result, error) {
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	err := cmd.Run()
	r := Result{Elapsed: time.Since(start), MaxRSS: maxRSS(cmd)}
	if err != nil {
		return r, fmt.Errorf("bench: %s: %v: %s", what, err, errb.Bytes())
	}
	return r, nil
}
