//go:build linux

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Issue 14's workloads: what the manual's examples and socketpipe's users run, each measured
// through socketpipe and through raw TCP between the same commands. The commands write and
// read with their own block sizes (tar's 10 KiB records, dd's bs, a zfs send's mixed records),
// which is what the socket's options are about; `cat` alone writes 128 KiB at a time.

// Fixtures are the files the workloads move, made once per bench run, and the Sum each
// workload's sink must report.
type Fixtures struct {
	Big     Data   // BENCH_SIZE random bytes: cat, dd bs=8k, the zfs-like writer
	Small   Data   // Big's size / 8: dd bs=512 makes a system call per 512 bytes
	Tree    string // a directory of random files, about TreeSize bytes
	Archive Data   // tar cf of Tree (the remote "tape" in the restore example)
	Content Sum    // the files' contents in the archive's order: what tar xOf prints
	Packed  Sum    // tar cf of Tree through the compressor
	Packer  []string
}

// Compressor is the remote compressor of the manual's third example. The manual has bzip2,
// which compresses at 10-20 MB/s and so measures bzip2, not the data path; zstd -1 leaves the
// data path the bottleneck. BENCH_COMPRESSOR replaces it (e.g. "bzip2 -c").
var Compressor = []string{"zstd", "-1", "-T1", "-q", "-c"}

// MakeFixtures writes the tree and the archive (the big data file comes from Data) and
// computes every workload's expected Sum by running its commands through plain pipes.
func (e *Env) MakeFixtures(ctx context.Context, big Data, treeSize int64, packer []string) (*Fixtures, error) {
	if len(packer) == 0 {
		packer = Compressor
	}
	for _, tool := range []string{"tar", "dd", "sh", packer[0]} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("bench: the workloads need %s: %w", tool, err)
		}
	}
	f := &Fixtures{Big: big, Packer: packer}
	var err error
	if f.Small, err = e.Data(max(big.Sum.N/8, 1<<20)); err != nil {
		return nil, err
	}
	f.Tree = filepath.Join(e.Dir, "tree")
	if _, err := os.Stat(f.Tree); err != nil {
		if err := writeTree(f.Tree, treeSize); err != nil {
			return nil, fmt.Errorf("bench: writing the tree: %w", err)
		}
	}
	archive := filepath.Join(e.Dir, "tree.tar")
	if out, err := e.command(ctx, "tar", "cf", archive, "-C", f.Tree, ".").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: tar cf: %v: %s", err, out)
	}
	if f.Archive, err = e.sumOf(archive); err != nil {
		return nil, err
	}
	// The tar stream must be the archive itself, byte for byte, or the backup workloads'
	// checksums would mean nothing.
	tarSum, err := e.pipeSum(ctx, "tar cf - -C "+shellQuote(f.Tree)+" .")
	if err != nil {
		return nil, err
	}
	if tarSum != f.Archive.Sum {
		return nil, fmt.Errorf("bench: tar cf - of the tree is not reproducible (%v, then %v)", f.Archive.Sum, tarSum)
	}
	if f.Content, err = e.pipeSum(ctx, "tar xOf "+shellQuote(archive)); err != nil {
		return nil, err
	}
	if f.Packed, err = e.pipeSum(ctx, "tar cf - -C "+shellQuote(f.Tree)+" . | "+shellJoin(packer)); err != nil {
		return nil, err
	}
	return f, nil
}

// pipeSum runs a shell pipeline and returns the Sum of what it prints.
func (e *Env) pipeSum(ctx context.Context, pipeline string) (Sum, error) {
	cmd := e.command(ctx, "sh", "-c", pipeline+" | spbench sink")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return Sum{}, fmt.Errorf("bench: %s: %v: %s", pipeline, err, errb.Bytes())
	}
	return ParseSum(string(out))
}

// A Workload is a pipeline of two or three commands: the input (local), the remote command and
// optionally the output (local). The last one prints the sink's verdict, which must be Want.
type Workload struct {
	Key    string // short, unique: the variants are Key+"-raw" and Key+"-sp"
	Name   string // for the tables
	Input  []string
	Remote []string
	Output []string // nil: the remote command's output comes back to socketpipe's stdout
	Want   Sum
	Bytes  int64 // bytes on the data connection, for the throughput column
}

// Workloads are issue 14's bulk workloads over the fixtures.
func Workloads(f *Fixtures) []Workload {
	sinkAfter := func(cmd string) []string { return []string{"sh", "-c", cmd + " | spbench sink"} }
	tarc := []string{"tar", "cf", "-", "-C", f.Tree, "."}
	return []Workload{
		{Key: "backup", Name: "tar cf - → remote dd bs=32k (the manual's backup)",
			Input: tarc, Remote: sinkAfter("dd bs=32k status=none"),
			Want: f.Archive.Sum, Bytes: f.Archive.Sum.N},
		{Key: "restore", Name: "remote dd if=archive bs=32k → tar xf - (the manual's restore)",
			Input:  nil,
			Remote: []string{"dd", "if=" + f.Archive.Path, "bs=32k", "status=none"},
			Output: sinkAfter("tar xOf -"),
			Want:   f.Content, Bytes: f.Archive.Sum.N},
		{Key: "compress", Name: "tar cf - → remote " + f.Packer[0] + " → dd bs=32k (the manual's three stages)",
			Input: tarc, Remote: f.Packer, Output: sinkAfter("dd bs=32k status=none"),
			Want: f.Packed, Bytes: f.Archive.Sum.N},
		{Key: "dd8k", Name: "dd bs=8k (8 KiB writes, as head and most filters)",
			Input: []string{"dd", "if=" + f.Big.Path, "bs=8k", "status=none"}, Remote: []string{"spbench", "sink"},
			Want: f.Big.Sum, Bytes: f.Big.Sum.N},
		{Key: "dd512", Name: "dd bs=512 (512-byte writes, as a line-buffered filter)",
			Input: []string{"dd", "if=" + f.Small.Path, "bs=512", "status=none"}, Remote: []string{"spbench", "sink"},
			Want: f.Small.Sum, Bytes: f.Small.Sum.N},
		{Key: "zfs", Name: "zfs send-like records (312-byte headers, 512 B-128 KiB payloads)",
			Input: []string{"spbench", "write", "-records", f.Big.Path}, Remote: []string{"spbench", "sink"},
			Want: f.Big.Sum, Bytes: f.Big.Sum.N},
	}
}

// RawVariant runs the workload's commands joined by loopback TCP connections, with the
// kernel's default socket options (Nagle's algorithm on), as the original C socketpipe, nc or
// socat hand them over, and the remote command in a session of its own (remoteSide).
func (w Workload) RawVariant() Variant {
	return Variant{Key: w.Key + "-raw", Name: "raw TCP: " + w.Name, Bytes: w.Bytes,
		Run: func(ctx context.Context, e *Env, _ Data) (Result, error) {
			stages := [][]string{w.Input, w.Remote}
			remote := 1
			if w.Input == nil {
				stages, remote = stages[1:], 0
			}
			if w.Output != nil {
				stages = append(stages, w.Output)
			}
			return e.runRawPipeline(ctx, stages, remote, false, w.Want)
		}}
}

// SocketpipeVariant runs the workload through socketpipe with flags.
func (w Workload) SocketpipeVariant(suffix string, flags ...string) Variant {
	name := "socketpipe"
	if len(flags) > 0 {
		name += " " + strings.Join(flags, " ")
	}
	return Variant{Key: w.Key + "-sp" + suffix, Name: name + ": " + w.Name, Bytes: w.Bytes, Socketpipe: true,
		Run: func(ctx context.Context, e *Env, _ Data) (Result, error) {
			argv := append(append([]string{}, e.LoginFlags...), flags...)
			if w.Input != nil {
				argv = append(append(append(argv, "-i", "{"), w.Input...), "}")
			}
			argv = append(append(append(argv, "-l", "{"), e.Login...), "}")
			argv = append(append(append(argv, "-r", "{"), w.Remote...), "}")
			if w.Output != nil {
				argv = append(append(append(argv, "-o", "{"), w.Output...), "}")
			}
			return e.runChecked(ctx, e.Socketpipe, argv, w.Want)
		}}
}

// runChecked runs one command and checks the Sum it prints.
func (e *Env) runChecked(ctx context.Context, bin string, args []string, want Sum) (Result, error) {
	cmd := e.command(ctx, append([]string{bin}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := Result{Elapsed: time.Since(start), MaxRSS: maxRSS(cmd)}
	if err != nil {
		return r, fmt.Errorf("bench: %s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, errb.Bytes())
	}
	return r, checkSum(out.String(), want)
}

// runRawPipeline runs stages with a loopback TCP connection between each two, every socket
// with TCP_NODELAY as given, and checks the Sum the last stage prints. Stage remote runs in a
// session of its own (remoteSide).
func (e *Env) runRawPipeline(ctx context.Context, stages [][]string, remote int, nodelay bool, want Sum) (Result, error) {
	start := time.Now()
	var cmds []*exec.Cmd
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var out, errb bytes.Buffer
	var prev *os.File
	for i, argv := range stages {
		c := e.command(ctx, argv...)
		if i == remote {
			remoteSide(c)
		}
		c.Stderr = &errb
		if prev != nil {
			c.Stdin = prev
		}
		if i == len(stages)-1 {
			c.Stdout = &out
		} else {
			a, b, err := tcpPair(nodelay)
			if err != nil {
				return Result{}, err
			}
			files = append(files, a, b)
			c.Stdout = a
			prev = b
		}
		cmds = append(cmds, c)
	}
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			for _, s := range cmds[:i] {
				s.Process.Kill()
				s.Wait()
			}
			return Result{}, fmt.Errorf("bench: %w", err)
		}
	}
	// Only the commands hold the sockets now: each end sees the other's end of stream.
	for _, f := range files {
		f.Close()
	}
	files = nil
	var errs []string
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", stages[i][0], err))
		}
	}
	r := Result{Elapsed: time.Since(start)}
	if errs != nil {
		return r, fmt.Errorf("bench: raw TCP: %s: %s", strings.Join(errs, ", "), errb.Bytes())
	}
	return r, checkSum(out.String(), want)
}

// remoteSide makes cmd, the raw-TCP stand-in for a command on the remote host, start a session
// of its own, as a command sshd starts does. Linux's autogroup scheduler gives each session's
// processes their share of the CPUs together: with the two sides in one session, as they were,
// raw TCP had an advantage socketpipe's remote command, under sshd, never has. Measured, dd
// bs=8k of 1 GiB into the sink over raw TCP: 0.75 s with both in one session, 0.82 s with the
// sink in its own (medians of 12 interleaved runs, load 4; the best runs alike).
func remoteSide(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
}

// tcpPair returns the two ends of a fresh loopback TCP connection as files (blocking, as a
// command expects), with TCP_NODELAY set or cleared on both.
func tcpPair(nodelay bool) (a, b *os.File, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	defer ln.Close()
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	defer dialed.Close()
	accepted, err := ln.Accept()
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	defer accepted.Close()
	dc, ac := dialed.(*net.TCPConn), accepted.(*net.TCPConn)
	if err := dc.SetNoDelay(nodelay); err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	if err := ac.SetNoDelay(nodelay); err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	if a, err = dc.File(); err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	if b, err = ac.File(); err != nil {
		a.Close()
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	return a, b, nil
}

func checkSum(out string, want Sum) error {
	got, err := ParseSum(out)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("bench: checksum mismatch: sent %v, the sink got %v", want, got)
	}
	return nil
}

// WriteRecords writes r to w the way a zfs send stream is written: each record a 312-byte
// header (a dmu_replay_record) in one write, then its payload in another, the payloads mostly
// 128 KiB blocks with 4 KiB and odd-sized (compressed) ones between, and header-only records
// (frees, object records) among them (`spbench write -records`).
func WriteRecords(w io.Writer, r io.Reader) error {
	payloads := []int{128 << 10, 128 << 10, 128 << 10, 4 << 10, 128 << 10, 17000, 0, 128 << 10, 512, 128 << 10, 0, 37 << 10}
	buf := make([]byte, 312+128<<10)
	for i := 0; ; i++ {
		for _, n := range []int{312, payloads[i%len(payloads)]} {
			if n == 0 {
				continue
			}
			m, err := io.ReadFull(r, buf[:n])
			if m > 0 {
				if _, werr := w.Write(buf[:m]); werr != nil {
					return werr
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
