//go:build linux

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Result is one transfer's measurement.
type Result struct {
	Elapsed time.Duration
	MaxRSS  int64 // peak resident set of the measured process, bytes (wait4's ru_maxrss); 0 if none
}

// A Variant is one way of moving a data file from here to a Sink on the sshd's host.
type Variant struct {
	Key  string // a short key: "a", "b", ...
	Name string // what it measures, for the table
	Tiny bool   // moves the tiny file, not the big one
	// Bytes, if not 0, is what one run moves (for the throughput column) when it is not the
	// data file given to Run.
	Bytes int64
	// Rounds, if not 0, makes this a request/response variant: Run's Elapsed is the time of
	// Rounds round trips, and the tables show the time of one.
	Rounds int
	// Socketpipe marks the variants that run socketpipe (as e.Socketpipe, with e.LoginFlags):
	// spbench -alt runs them again with another build.
	Socketpipe bool
	// Run moves data and returns the measurement; it must check the Sum the sink reports.
	Run func(ctx context.Context, e *Env, data Data) (Result, error)
}

// Extra variants are added to `make bench` after the standard ones, interleaved with them and
// moving the same data file. Register them from an init function in this package.
var Extra []Variant

// ExtraReports run after the interleaved variants, each with its own workload and table, with
// e.T as their testing.TB (a Fatal inside one ends that report only); size and runs are
// BENCH_SIZE and BENCH_RUNS. sshmode_report.go registers socketpipe --ssh against ssh with
// rsync and tar.
var ExtraReports []func(ctx context.Context, e *Env, size int64, runs int, w io.Writer) error

// RawTCP is the physical limit here: `cat data` whose standard output is one end of a
// loopback TCP connection, and the sink whose standard input is the other end, in a session
// of its own as a remote command is (remoteSide). No socketpipe, no ssh. The sockets have the
// kernel's defaults, as raw TCP and the original C socketpipe give them (issue 14); until then
// they had Go's TCP_NODELAY, which RawTCPNoDelay keeps for comparison.
func RawTCP() Variant {
	return Variant{Key: "a", Name: "raw TCP, cat → sink over one loopback socket", Run: func(ctx context.Context, e *Env, data Data) (Result, error) {
		return e.runRawPipeline(ctx, [][]string{{"cat", data.Path}, {"spbench", "sink"}}, 1, false, data.Sum)
	}}
}

// RawTCPNoDelay is RawTCP with TCP_NODELAY on both sockets, as Go makes them. For cat's
// 128 KiB writes it is the faster of the two on loopback; for smaller writes it is much
// slower (the workloads show both).
func RawTCPNoDelay() Variant {
	return Variant{Key: "a-nodelay", Name: "raw TCP, cat → sink, TCP_NODELAY (Go's default)", Run: func(ctx context.Context, e *Env, data Data) (Result, error) {
		return e.runRawPipeline(ctx, [][]string{{"cat", data.Path}, {"spbench", "sink"}}, 1, true, data.Sum)
	}}
}

// Socketpipe moves data with `socketpipe [flags] -i { cat data } -l { login } -r { spbench sink }`;
// the sink's verdict comes back through the socket to socketpipe's standard output.
func Socketpipe(key, name string, flags ...string) Variant {
	return Variant{Key: key, Name: name, Socketpipe: true, Run: func(ctx context.Context, e *Env, data Data) (Result, error) {
		return e.RunSocketpipe(ctx, data, flags...)
	}}
}

// RunSocketpipe runs one socketpipe transfer of data to the sink with flags added.
func (e *Env) RunSocketpipe(ctx context.Context, data Data, flags ...string) (Result, error) {
	r, _, err := e.runSocketpipe(ctx, data, flags...)
	return r, err
}

// TraceSocketpipe is RunSocketpipe with -v, returning socketpipe's timeline (its standard error).
func (e *Env) TraceSocketpipe(ctx context.Context, data Data, flags ...string) (Result, string, error) {
	return e.runSocketpipe(ctx, data, append([]string{"-v"}, flags...)...)
}

func (e *Env) runSocketpipe(ctx context.Context, data Data, flags ...string) (Result, string, error) {
	argv := []string{e.Socketpipe}
	argv = append(argv, e.LoginFlags...)
	argv = append(argv, flags...)
	argv = append(argv, "-i", "{", "cat", data.Path, "}", "-l", "{")
	argv = append(argv, e.Login...)
	argv = append(argv, "}", "-r", "{", "spbench", "sink", "}")
	cmd := e.command(ctx, argv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := Result{Elapsed: time.Since(start), MaxRSS: maxRSS(cmd)}
	if err != nil {
		return r, errb.String(), fmt.Errorf("bench: socketpipe %s: %v: %s", strings.Join(flags, " "), err, errb.Bytes())
	}
	return r, errb.String(), check(out.String(), data)
}

// SSHPipe is `cat data | ssh host spbench sink`: what socketpipe replaces, with OpenSSH's
// default cipher.
func SSHPipe() Variant {
	return Variant{Key: "d", Name: "ssh pipe, cat → ssh host sink", Run: func(ctx context.Context, e *Env, data Data) (Result, error) {
		return e.RunSSHPipe(ctx, data)
	}}
}

// SSHPipeAES128 is SSHPipe with the cipher a user who cares about speed picks: OpenSSH's
// fastest with AES instructions, the one -e must beat by 2× (issue 14).
func SSHPipeAES128() Variant {
	return Variant{Key: "h", Name: "ssh -c aes128-gcm@openssh.com pipe", Run: func(ctx context.Context, e *Env, data Data) (Result, error) {
		return e.RunSSHPipe(ctx, data, "-c", "aes128-gcm@openssh.com")
	}}
}

// RunSSHPipe runs `cat data | ssh -F cfg [sshOptions] alias spbench sink`.
func (e *Env) RunSSHPipe(ctx context.Context, data Data, sshOptions ...string) (Result, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	login := e.Login
	if len(sshOptions) > 0 {
		login = append(append(append([]string{}, login[:len(login)-1]...), sshOptions...), login[len(login)-1])
	}
	argv := append(append([]string{}, login...), "spbench", "sink")
	ssh := e.command(ctx, argv...)
	var out, errb bytes.Buffer
	ssh.Stdin, ssh.Stdout, ssh.Stderr = pr, &out, &errb
	src := e.command(ctx, "cat", data.Path)
	src.Stdout, src.Stderr = pw, &errb
	start := time.Now()
	err = ssh.Start()
	pr.Close()
	if err != nil {
		pw.Close()
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	err = src.Start()
	pw.Close()
	if err != nil {
		ssh.Process.Kill()
		ssh.Wait()
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	serr := src.Wait()
	herr := ssh.Wait()
	r := Result{Elapsed: time.Since(start), MaxRSS: maxRSS(ssh)}
	if serr != nil || herr != nil {
		return r, fmt.Errorf("bench: ssh pipe: cat: %v, ssh: %v: %s", serr, herr, errb.Bytes())
	}
	return r, check(out.String(), data)
}

// SSHLogin is one `ssh host true`: the cost of a login, against which socketpipe's start-up
// is measured.
func SSHLogin() Variant {
	return Variant{Key: "g", Name: "one ssh login, ssh host true", Tiny: true, Run: func(ctx context.Context, e *Env, data Data) (Result, error) {
		argv := append(append([]string{}, e.Login...), "true")
		return timeRun(e.command(ctx, argv...), "ssh true")
	}}
}

// Standard returns variants a to g of issue 8 (and a-nodelay beside a), in the order they run
// in each round.
func Standard() []Variant {
	c := Socketpipe("c", "socketpipe, tiny transfer (start-up)")
	c.Tiny = true
	return []Variant{
		RawTCP(),
		RawTCPNoDelay(),
		Socketpipe("b", "socketpipe, native login, plain"),
		c,
		SSHPipe(),
		Socketpipe("e", "socketpipe -e", "-e"),
		Socketpipe("f", "socketpipe -m ssh", "-m", "ssh"),
		SSHLogin(),
	}
}

// WithBuild returns v run with another socketpipe binary on both hosts (the remote half is
// started as --remote-path bin), its key and name marked with tag.
func WithBuild(v Variant, tag, bin string) Variant {
	run := v.Run
	v.Key += "@" + tag
	v.Name += " [" + tag + "]"
	v.Run = func(ctx context.Context, e *Env, data Data) (Result, error) {
		alt := *e
		alt.Socketpipe = bin
		alt.LoginFlags = append([]string{"--remote-path", bin}, e.LoginFlags...)
		return run(ctx, &alt, data)
	}
	return v
}

func check(out string, data Data) error {
	got, err := ParseSum(out)
	if err != nil {
		return err
	}
	if got != data.Sum {
		return fmt.Errorf("bench: checksum mismatch: sent %v, the sink got %v", data.Sum, got)
	}
	return nil
}

// maxRSS is wait4's ru_maxrss of cmd, in bytes: the peak of the process itself or of the
// largest of its children it waited for.
func maxRSS(cmd *exec.Cmd) int64 {
	if cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return int64(ru.Maxrss) * 1024 // a long is 32 bits on 386 and arm
	}
	return 0
}
