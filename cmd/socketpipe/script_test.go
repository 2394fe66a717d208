package main

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs the command-line scripts in testdata/script. Their `socketpipe` command is
// run() in this process; `status N` checks the exit status of the last one.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"socketpipe": cmdSocketpipe,
			"status":     cmdStatus,
		},
	})
}

const lastStatus = "SOCKETPIPE_LAST_STATUS"

func cmdSocketpipe(ts *testscript.TestScript, neg bool, args []string) {
	stdin, err := os.Open(os.DevNull)
	ts.Check(err)
	defer stdin.Close()
	stdout, err := os.CreateTemp(ts.Getenv("WORK"), "stdout")
	ts.Check(err)
	defer os.Remove(stdout.Name())
	defer stdout.Close()
	stderr, err := os.CreateTemp(ts.Getenv("WORK"), "stderr")
	ts.Check(err)
	defer os.Remove(stderr.Name())
	defer stderr.Close()

	code := run(context.Background(), append([]string{"socketpipe"}, args...), stdin, stdout, stderr)
	ts.Setenv(lastStatus, strconv.Itoa(code))
	out, err := os.ReadFile(stdout.Name())
	ts.Check(err)
	ts.Stdout().Write(out)
	errOut, err := os.ReadFile(stderr.Name())
	ts.Check(err)
	ts.Stderr().Write(errOut)
	if (code != 0) != neg {
		ts.Fatalf("socketpipe exited with status %d", code)
	}
}

func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: status N")
	}
	if got := ts.Getenv(lastStatus); got != args[0] {
		ts.Fatalf("exit status %s, want %s", got, args[0])
	}
}
