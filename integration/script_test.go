//go:build linux

package integration

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// TestScripts runs the end-to-end scripts in testdata/script: the ones that check only exit
// statuses and messages. Each script gets a fresh sshd whose sessions find the socketpipe just
// built, and the variables harness.ScriptSSHD describes ($SSH_CONFIG, $ALIAS, $HOST, ...);
// `status N program ...` checks an exit status. When a script ends, nothing it started may
// still run.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			_, err := harness.ScriptSSHD(env, harness.SSHDOptions{})
			return err
		},
		Cmds: harness.ScriptCmds(),
	})
}
