//go:build linux

// Command spbench runs `make demo` and `make bench`: it starts a throwaway OpenSSH sshd on
// 127.0.0.1 (generated keys in a temporary directory, sessions with a clean HOME and the
// freshly built socketpipe on PATH), moves data through socketpipe, raw TCP and an ssh pipe,
// checks every transfer's checksum, prints the figures, and removes everything it made, also
// when interrupted.
//
//	spbench -demo              1 GiB through socketpipe and through an ssh pipe, and the ratio
//	spbench [-size N] [-runs N] issue 8's variants a-h and issue 14's workloads (each through
//	                           socketpipe and raw TCP) and request/response round trips,
//	                           interleaved, with the goals table; -only and -alt choose
//	spbench -wan only          the WAN table alone: 10, 50, 100 ms and 0.1 % loss at 1 Gbit/s
//	                           between two network namespaces (-wan 0 leaves it out of the bench)
//	spbench sink               read standard input to its end, print "count crc32c"
//	spbench write -records F   F to standard output as a zfs send writes its records
//	spbench rr-server          answer the request/response workload's requests
//	spbench rr-client ...      make its round trips, over a descriptor or a transport command
//	spbench sockopt            say whether standard input and output have Nagle's algorithm
//
// It needs root (sshd) and Debian's openssh-server and openssh-client, as `.ci/run` installs.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/socketpipe/socketpipe/integration/bench"
	"golang.org/x/sys/unix"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if helper, ok := helpers[args[0]]; ok {
			if err := helper(args[1:]); err != nil {
				fmt.Fprintf(stderr, "spbench: %s: %v\n", args[0], err)
				return 1
			}
			return 0
		}
	}
	fs := flag.NewFlagSet("spbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demo := fs.Bool("demo", false, "one transfer through socketpipe and one through an ssh pipe, and the ratio")
	sizeFlag := fs.String("size", envOr("BENCH_SIZE", "1GiB"), "bytes per transfer (K, M, G, KiB, MiB, GiB suffixes); env BENCH_SIZE")
	runs := fs.Int("runs", atoiOr(os.Getenv("BENCH_RUNS"), 7), "interleaved rounds; env BENCH_RUNS")
	verbose := fs.Bool("v", false, "say what the harness does")
	startup := fs.Bool("startup", false, "trace where a tiny transfer's time goes (socketpipe -v) beside one ssh login")
	forceExec := fs.Bool("x", false, "give socketpipe -x: execute ssh rather than log in natively")
	var o benchOptions
	treeFlag := fs.String("tree", envOr("BENCH_TREE_SIZE", ""), "bytes of the tree the tar workloads move (default: half of -size); env BENCH_TREE_SIZE")
	fs.IntVar(&o.rounds, "rr", atoiOr(os.Getenv("BENCH_RR_ROUNDS"), 2000), "timed round trips of the request/response workload; env BENCH_RR_ROUNDS")
	only := fs.String("only", os.Getenv("BENCH_ONLY"), "run only the variants whose key matches this regular expression (\"sshmode\" for the rsync and tar table); env BENCH_ONLY")
	alt := fs.String("alt", os.Getenv("BENCH_ALT"), "another socketpipe binary: run every socketpipe variant with it too, interleaved (before/after); env BENCH_ALT")
	wanMode := fs.String("wan", envOr("BENCH_WAN", "1"), "the WAN table: 1 after the loopback tables, 0 not at all, only alone; env BENCH_WAN")
	wanSize := fs.String("wan-size", os.Getenv("BENCH_WAN_SIZE"), "bytes per WAN transfer (default per round trip: 1GiB at 10 ms, 512MiB at 50 ms, 256MiB at 100 ms and with loss); env BENCH_WAN_SIZE")
	wanRuns := fs.Int("wan-runs", atoiOr(os.Getenv("BENCH_WAN_RUNS"), 1), "interleaved rounds of the WAN table; env BENCH_WAN_RUNS")
	compressor := fs.String("compressor", os.Getenv("BENCH_COMPRESSOR"), "the remote compressor of the three-stage workload (default: "+strings.Join(bench.Compressor, " ")+"); env BENCH_COMPRESSOR")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	size, err := parseSize(*sizeFlag)
	if err != nil || *runs < 1 || o.rounds < 2 {
		fmt.Fprintf(stderr, "spbench: error: size %q, runs %d or rr %d: give a size like 1GiB, at least one run and two round trips\n", *sizeFlag, *runs, o.rounds)
		return 1
	}
	o.tree = size / 2
	if *treeFlag != "" {
		if o.tree, err = parseSize(*treeFlag); err != nil {
			fmt.Fprintf(stderr, "spbench: error: tree size %q: give a size like 512MiB\n", *treeFlag)
			return 1
		}
	}
	if *only != "" {
		if o.only, err = regexp.Compile(*only); err != nil {
			fmt.Fprintf(stderr, "spbench: error: -only: %v\n", err)
			return 1
		}
	}
	if *alt != "" {
		if o.alt, err = filepath.Abs(*alt); err != nil {
			fmt.Fprintf(stderr, "spbench: error: -alt: %v\n", err)
			return 1
		}
	}
	o.compressor = strings.Fields(*compressor)
	if o.wan, err = parseWAN(*wanMode, *wanSize, *wanRuns); err != nil {
		fmt.Fprintf(stderr, "spbench: error: %v\n", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	var log io.Writer
	if *verbose {
		log = stderr
	}
	fmt.Fprintf(stderr, "spbench: building socketpipe and starting a throwaway sshd on 127.0.0.1\n")
	env, err := bench.Setup(ctx, bench.Options{Log: log})
	if err != nil {
		fmt.Fprintf(stderr, "spbench: error: %v\n", err)
		return 2
	}
	defer env.Close()
	if o.wan.mode == "only" && !*demo && !*startup {
		return exitStatus(ctx, runWAN(ctx, env, o.wan, o.only, *forceExec, stdout, stderr), stderr)
	}
	fmt.Fprintf(stderr, "spbench: writing %s of random data to %s\n", bench.Size(size), env.Dir)
	big, err := env.Data(size)
	if err != nil {
		fmt.Fprintf(stderr, "spbench: error: %v\n", err)
		return 2
	}
	tiny, err := env.Data(bench.TinySize)
	if err != nil {
		fmt.Fprintf(stderr, "spbench: error: %v\n", err)
		return 2
	}
	if *forceExec {
		env.LoginFlags = []string{"-x"}
	} else if err := env.ProbeNative(ctx, tiny); err != nil {
		if ctx.Err() != nil {
			return 130
		}
		if env.LoginFlags == nil {
			fmt.Fprintf(stderr, "spbench: error: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "spbench: note: the native login failed here, so socketpipe executes ssh (-x): %v\n", strings.TrimSpace(err.Error()))
	}
	var status int
	if *startup {
		status = runStartup(ctx, env, tiny, stdout, stderr)
	} else if *demo {
		status = runDemo(ctx, env, big, stdout, stderr)
	} else {
		status = runBench(ctx, env, big, tiny, *runs, o, stdout, stderr)
		if o.wan.mode == "1" && ctx.Err() == nil {
			status = max(status, runWAN(ctx, env, o.wan, o.only, *forceExec, stdout, stderr))
		}
	}
	return exitStatus(ctx, status, stderr)
}

func exitStatus(ctx context.Context, status int, stderr io.Writer) int {
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "spbench: interrupted; sshd stopped, temporary files removed\n")
		return 130
	}
	return status
}

// helpers are the commands the workloads run on both sides of the data connection.
var helpers = map[string]func(args []string) error{
	// sink: read standard input to its end, print "count crc32c".
	"sink": func([]string) error { return bench.Sink(os.Stdin, os.Stdout) },
	// write -records FILE: FILE to standard output as a zfs send writes its records.
	"write": func(args []string) error {
		if len(args) != 2 || args[0] != "-records" {
			return fmt.Errorf("usage: spbench write -records FILE")
		}
		f, err := os.Open(args[1])
		if err != nil {
			return err
		}
		defer f.Close()
		return bench.WriteRecords(os.Stdout, f)
	},
	// rr-server: answer requests on standard input on standard output until its end.
	"rr-server": func([]string) error { return bench.RRServer(os.Stdin, os.Stdout) },
	// rr-client -n ROUNDS -skip K (-fd N | -- TRANSPORT...): make the round trips over
	// descriptor N, or over the standard input and output of TRANSPORT (as git runs ssh), and
	// print "rr ROUNDS rounds, TIMED timed, NS ns".
	"rr-client": rrClient,
	// sockopt: print "0:X 1:Y" for standard input and output, each "nagle" (Nagle's algorithm
	// on, the kernel's default), "nodelay" (TCP_NODELAY) or "-" (not a TCP socket).
	"sockopt": func([]string) error {
		var words []string
		for fd := range 2 {
			w := "-"
			if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); err == nil {
				w = map[bool]string{true: "nodelay", false: "nagle"}[v != 0]
			}
			words = append(words, fmt.Sprintf("%d:%s", fd, w))
		}
		_, err := fmt.Println(strings.Join(words, " "))
		return err
	},
}

func rrClient(args []string) error {
	fs := flag.NewFlagSet("rr-client", flag.ContinueOnError)
	n := fs.Int("n", 1000, "round trips")
	skip := fs.Int("skip", 1, "round trips before the timing starts")
	fd := fs.Int("fd", -1, "talk over this descriptor (a socket) instead of a transport command")
	deadline := fs.Duration("deadline", time.Minute, "kill the transport if the round trips take longer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *skip >= *n {
		return fmt.Errorf("-skip %d leaves nothing of -n %d to time", *skip, *n)
	}
	var d time.Duration
	var err error
	if *fd >= 0 {
		conn := os.NewFile(uintptr(*fd), "connection")
		d, err = bench.RRClient(conn, conn, *n, *skip)
	} else {
		argv := fs.Args()
		if len(argv) == 0 {
			return fmt.Errorf("give -fd or a transport command after --")
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stderr = os.Stderr
		w, werr := cmd.StdinPipe()
		r, rerr := cmd.StdoutPipe()
		if werr != nil || rerr != nil {
			return fmt.Errorf("%v %v", werr, rerr)
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		// A transport that holds an answer back for good (a relay deadlock) must fail the
		// run, not hang the bench: the client's reads end when the transport is killed.
		var stalled atomic.Bool
		watchdog := time.AfterFunc(*deadline, func() { stalled.Store(true); cmd.Process.Kill() })
		d, err = bench.RRClient(r, w, *n, *skip)
		watchdog.Stop()
		if stalled.Load() {
			err = fmt.Errorf("%d round trips took more than %v (the transport was killed): %v", *n, *deadline, err)
		}
		w.Close()
		io.Copy(io.Discard, r)
		if werr := cmd.Wait(); err == nil && werr != nil {
			err = fmt.Errorf("%s: %w", argv[0], werr)
		}
	}
	if err != nil {
		return err
	}
	fmt.Print(bench.RRReport(*n, *n-*skip, d))
	return nil
}

func runDemo(ctx context.Context, env *bench.Env, data bench.Data, stdout, stderr io.Writer) int {
	login := strings.Join(env.Login, " ")
	fmt.Fprintf(stdout, "\n%s of random data from `cat` to a checksumming sink on the other side of sshd at %s:\n\n", bench.Size(data.Sum.N), env.SSHD.Addr)
	sp, err := env.RunSocketpipe(ctx, data)
	if err != nil {
		fmt.Fprintf(stderr, "spbench: error: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "  socketpipe %s-i { cat data } -l { %s } -r { spbench sink }\n      %7.2f s  %6.0f MiB/s  checksum ok\n", flagWords(env.LoginFlags), login, sp.Elapsed.Seconds(), mibps(data, sp))
	ssh, err := env.RunSSHPipe(ctx, data)
	if err != nil {
		fmt.Fprintf(stderr, "spbench: error: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "  cat data | %s spbench sink\n      %7.2f s  %6.0f MiB/s  checksum ok\n", login, ssh.Elapsed.Seconds(), mibps(data, ssh))
	fmt.Fprintf(stdout, "\nsocketpipe: %.1f× faster than the ssh pipe (client peak RSS %.1f MiB)\n", ssh.Elapsed.Seconds()/sp.Elapsed.Seconds(), float64(sp.MaxRSS)/(1<<20))
	return 0
}

// runStartup shows socketpipe's -v timeline of a tiny transfer, after a warm-up, beside the
// time of one `ssh host true`.
func runStartup(ctx context.Context, env *bench.Env, tiny bench.Data, stdout, stderr io.Writer) int {
	env.RunSocketpipe(ctx, tiny)
	r, trace, err := env.TraceSocketpipe(ctx, tiny)
	if err != nil {
		fmt.Fprintf(stderr, "spbench: error: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "socketpipe -v, tiny transfer, %.0f ms:\n%s\n", float64(r.Elapsed)/1e6, trace)
	g, err := bench.SSHLogin().Run(ctx, env, tiny)
	if err != nil {
		fmt.Fprintf(stderr, "spbench: error: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "ssh host true: %.0f ms\n", float64(g.Elapsed)/1e6)
	return 0
}

// benchOptions are make bench's settings beyond the size and the rounds.
type benchOptions struct {
	tree       int64          // bytes of the tar workloads' tree
	rounds     int            // timed round trips of the request/response workload
	only       *regexp.Regexp // nil: every variant
	alt        string         // another socketpipe build to run beside this one
	compressor []string
	wan        wanOptions
}

func runBench(ctx context.Context, env *bench.Env, big, tiny bench.Data, runs int, o benchOptions, stdout, stderr io.Writer) int {
	fmt.Fprintf(stderr, "spbench: writing a %s tree and the workloads' archives\n", bench.Size(o.tree))
	fix, err := env.MakeFixtures(ctx, big, o.tree, o.compressor)
	if err != nil {
		fmt.Fprintf(stderr, "spbench: error: %v\n", err)
		return 2
	}
	plan := bench.Plan{Workloads: bench.Workloads(fix), RR: true, SSHAES128: true}
	variants := append(bench.Standard(), bench.SSHPipeAES128())
	for _, w := range plan.Workloads {
		variants = append(variants, w.RawVariant(), w.SocketpipeVariant(""))
	}
	variants = append(variants, bench.RRWorkload{Rounds: o.rounds, Skip: 2}.Variants()...)
	variants = append(variants, bench.Extra...)
	if o.only != nil {
		var keep []bench.Variant
		for _, v := range variants {
			if o.only.MatchString(v.Key) {
				keep = append(keep, v)
			}
		}
		variants = keep
	}
	if o.alt != "" {
		var both []bench.Variant
		for _, v := range variants {
			both = append(both, v)
			if v.Socketpipe {
				both = append(both, bench.WithBuild(v, "alt", o.alt))
			}
		}
		variants = both
	}
	fmt.Fprintf(stderr, "spbench: %d rounds of %d variants, %s each (BENCH_RUNS, BENCH_SIZE)\n", runs, len(variants), bench.Size(big.Sum.N))
	samples := bench.Interleave(ctx, env, variants, big, tiny, runs, stderr)
	if ctx.Err() != nil {
		return 130
	}
	fmt.Fprintf(stdout, "\nmachine: %s\nload average at the end (1, 5, 15 min): %s (a busy machine slows the CPU-bound ssh variants most)\n", machine(), loadavg())
	met := bench.Report(stdout, samples, big, tiny, runs, plan)
	failed := false
	for _, s := range samples {
		failed = failed || s.Err != nil
	}
	env.Alt = o.alt
	for _, report := range bench.ExtraReports {
		if o.only != nil && !o.only.MatchString("sshmode") {
			break // a chosen few variants, not the whole bench
		}
		var err error
		if terr := env.T.Do(func() { err = report(ctx, env, big.Sum.N, runs, stdout) }); terr != nil {
			err = terr
		}
		if err != nil {
			fmt.Fprintf(stdout, "\nfailed: %v\n", err)
			failed = true
		}
	}
	if failed {
		return 1 // a failed or wrong transfer is a failure of the run
	}
	if !met {
		fmt.Fprintf(stdout, "\nsome goals are missed (the README's performance section says what is known of each)\n")
	}
	return 0
}

func flagWords(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return strings.Join(f, " ") + " "
}

func mibps(d bench.Data, r bench.Result) float64 {
	return float64(d.Sum.N) / (1 << 20) / r.Elapsed.Seconds()
}

// machine describes where the figures were measured: CPU model, cores, kernel, OpenSSH.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		if strings.Contains(string(b), " aes ") {
			model += " (AES-NI)"
		}
	}
	var u syscall.Utsname
	kernel := ""
	if syscall.Uname(&u) == nil {
		kernel = "Linux " + cstr(u.Release[:])
	}
	ssh, _ := bench.OpenSSHVersion()
	return fmt.Sprintf("%s, %d CPUs, %s, %s, %s", model, runtime.NumCPU(), kernel, ssh, runtime.Version())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], ", ")
	}
	return "unknown"
}

func cstr[T int8 | uint8](b []T) string { // Utsname holds int8 on some architectures, uint8 on others (riscv64, ppc64le)
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

// parseSize takes 1073741824, 1G, 1GiB, 512M, 64MiB, 100k.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	lower := strings.ToLower(s)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10}, {"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			s = s[:len(s)-len(u.suffix)]
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size")
	}
	return n * mult, nil
}
