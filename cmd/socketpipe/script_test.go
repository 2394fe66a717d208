package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// TestScripts runs the command-line scripts in testdata/script. `exec socketpipe` runs this
// package's main in a process of its own (TestMain registers it with testscript.Main), with
// its own signal handling and environment; `status N socketpipe ...` runs it the same way and
// checks that it exits with status N.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds:                harness.ScriptCmds(),
	})
}
