//go:build linux

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

	"github.com/socketpipe/socketpipe/integration/bench"
)

func main() {
	size := flag.Int64("size", 1<<30, "bytes of the file rsync copies")
	tree := flag.Int64("tree", 256<<20, "bytes of the tree tar streams")
	runs := flag.Int("runs", 5, "measured runs of each variant")
	quiet := flag.Bool("q", false, "print only the table")
	flag.Parse()

	t, err := bench.NewT()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sshmodebench: %v\n", err)
		os.Exit(1)
	}
	if !*quiet {
		t.Out = os.Stderr
	}
	var rows []bench.SSHModeRow
	ferr := t.Do(func() {
		opts := bench.SSHModeOptions{FileSize: *size, TreeSize: *tree, Runs: *runs}
		if !*quiet {
			opts.Log = os.Stderr
		}
		rows, err = bench.BenchSSHMode(t, opts)
	})
	t.Close()
	if ferr != nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sshmodebench: %v\n", err)
		os.Exit(1)
	}
	bench.WriteSSHModeTable(os.Stdout, rows)
}
