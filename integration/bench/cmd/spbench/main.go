// Command spbench runs `make demo` and `make bench`: it starts a throwaway OpenSSH sshd on
// 127.0.0.1 (generated keys in a temporary directory, sessions with a clean HOME and the
// freshly built socketpipe on PATH), moves data through socketpipe, raw TCP and an ssh pipe,
// checks every transfer's checksum, prints the figures, and removes everything it made, also
// when interrupted.
//
//	spbench -demo              1 GiB through socketpipe and through an ssh pipe, and the ratio
//	spbench [-size N] [-runs N] issue 8's variants a-g, interleaved, with the goals table
//	spbench sink               read standard input to its end, print "count crc32c"
//
// It needs root (sshd) and Debian's openssh-server and openssh-client, as `.ci/run` installs.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/socketpipe/socketpipe/integration/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "sink" {
		if err := bench.Sink(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintf(stderr, "spbench: sink: %v\n", err)
			return 1
		}
		return 0
	}
	fs := flag.NewFlagSet("spbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demo := fs.Bool("demo", false, "one transfer through socketpipe and one through an ssh pipe, and the ratio")
	sizeFlag := fs.String("size", envOr("BENCH_SIZE", "1GiB"), "bytes per transfer (K, M, G, KiB, MiB, GiB suffixes); env BENCH_SIZE")
	runs := fs.Int("runs", atoiOr(os.Getenv("BENCH_RUNS"), 5), "interleaved rounds; env BENCH_RUNS")
	verbose := fs.Bool("v", false, "say what the harness does")
	startup := fs.Bool("startup", false, "trace where a tiny transfer's time goes (socketpipe -v) beside one ssh login")
	forceExec := fs.Bool("x", false, "give socketpipe -x: execute ssh rather than log in natively")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	size, err := parseSize(*sizeFlag)
	if err != nil || *runs < 1 {
		fmt.Fprintf(stderr, "spbench: error: size %q or runs %d: give a size like 1GiB and at least one run\n", *sizeFlag, *runs)
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
		status = runBench(ctx, env, big, tiny, *runs, stdout, stderr)
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "spbench: interrupted; sshd stopped, temporary files removed\n")
		return 130
	}
	return status
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

func runBench(ctx context.Context, env *bench.Env, big, tiny bench.Data, runs int, stdout, stderr io.Writer) int {
	variants := append(bench.Standard(), bench.Extra...)
	fmt.Fprintf(stderr, "spbench: %d rounds of %d variants, %s each (BENCH_RUNS, BENCH_SIZE)\n", runs, len(variants), bench.Size(big.Sum.N))
	samples := bench.Interleave(ctx, env, variants, big, tiny, runs, stderr)
	if ctx.Err() != nil {
		return 130
	}
	fmt.Fprintf(stdout, "\nmachine: %s\nload average at the end (1, 5, 15 min): %s (a busy machine slows the CPU-bound ssh variants most)\n", machine(), loadavg())
	met := bench.Report(stdout, samples, big, tiny, runs)
	failed := false
	for _, s := range samples {
		failed = failed || s.Err != nil
	}
	for _, report := range bench.ExtraReports {
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
		fmt.Fprintf(stdout, "\nsome goals are missed (see issue 8 and the README)\n")
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

func cstr(b []int8) string {
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
