//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/socketpipe/socketpipe/integration/bench"
)

// wanOptions are the WAN table's settings (-wan, -wan-size, -wan-runs).
type wanOptions struct {
	mode string // "1": after the loopback tables, "0": not at all, "only": the WAN table alone
	size int64  // 0: each path's default
	runs int
}

// runWAN measures and prints the WAN table (bench.BenchWAN) with env's socketpipe and spbench.
// It returns 1 if a transfer failed.
func runWAN(ctx context.Context, env *bench.Env, w wanOptions, only *regexp.Regexp, forceExec bool, stdout, stderr io.Writer) int {
	opts := bench.WANOptions{Size: w.size, Runs: w.runs, Only: only, Progress: stderr}
	if forceExec {
		opts.LoginFlags = []string{"-x"}
	}
	fmt.Fprintf(stderr, "spbench: the WAN table: two network namespaces, the harness's WAN emulator, sshd on the far host (BENCH_WAN=0 leaves it out)\n")
	var t *bench.WANTable
	var err error
	if terr := env.T.Do(func() { t, err = bench.BenchWAN(ctx, env, opts) }); terr != nil {
		err = terr
	}
	if t != nil {
		if !bench.WriteWANTable(stdout, t) {
			fmt.Fprintf(stdout, "\nsome WAN goals are missed (the README's performance section says what is known of each)\n")
		}
	}
	if err != nil {
		fmt.Fprintf(stdout, "\nWAN table failed: %v\n", strings.TrimSpace(err.Error()))
		return 1
	}
	if t != nil {
		for _, row := range t.Cells {
			for _, c := range row {
				if c != nil && c.Err != nil {
					return 1
				}
			}
		}
	}
	return 0
}

// parseWAN checks -wan, -wan-size and -wan-runs.
func parseWAN(mode, size string, runs int) (wanOptions, error) {
	w := wanOptions{mode: mode, runs: runs}
	if mode != "0" && mode != "1" && mode != "only" {
		return w, fmt.Errorf("-wan %q: give 1, 0 or only", mode)
	}
	if runs < 1 {
		return w, fmt.Errorf("-wan-runs %d: give at least one run", runs)
	}
	if size != "" {
		n, err := parseSize(size)
		if err != nil {
			return w, fmt.Errorf("-wan-size %q: give a size like 256MiB", size)
		}
		w.size = n
	}
	return w, nil
}
