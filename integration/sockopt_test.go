//go:build linux

package integration

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// TestSocketOptions checks who gets Nagle's algorithm on the data connection (see
// rendezvous.Tune): a command that holds the socket in brace mode keeps the kernel's default,
// as over raw TCP; the remote command of --ssh, whose client relays a program's requests,
// gets TCP_NODELAY, as it would behind sshd.
func TestSocketOptions(t *testing.T) {
	helper := harness.BuildMain(t, "./integration/bench/cmd/spbench")
	r := newRemote(t, harness.SSHDOptions{PathDirs: []string{helper}})
	login := block("-l", r.sshd.SSHArgs()...)
	out := block("-o", "cat")
	for _, tc := range []struct {
		name string
		args []string
		want string // what spbench sockopt prints for its standard input and output
	}{
		// The remote command's standard input and output are the socket (-o needs one too).
		{"brace/remote", args(login, block("-r", "spbench", "sockopt"), out), "0:nagle 1:nagle"},
		{"brace/remote/exec", args("-x", login, block("-r", "spbench", "sockopt"), out), "0:nagle 1:nagle"},
		{"brace/remote/back", args("-m", "back", login, block("-r", "spbench", "sockopt"), out), "0:nagle 1:nagle"},
		{"brace/remote/reverse", args("-m", "reverse", login, block("-r", "spbench", "sockopt"), out), "0:nagle 1:nagle"},
		// The input command's standard output is the socket; cat sends its verdict back.
		{"brace/input", args(block("-i", filepath.Join(helper, "spbench"), "sockopt"), login, block("-r", "cat")), "0:- 1:nagle"},
		{"ssh", args("--ssh", "-F", r.sshd.ClientConfig, r.sshd.Alias, "spbench", "sockopt"), "0:nodelay 1:nodelay"},
		// -n: no requests can come, so it is bulk output like brace mode's.
		{"ssh/n", args("--ssh", "-n", "-F", r.sshd.ClientConfig, r.sshd.Alias, "spbench", "sockopt"), "0:nagle 1:nagle"},
		// -e: the remote command's standard input and output are pipes from the relay.
		{"ssh/e", args("-e", "--ssh", "-F", r.sshd.ClientConfig, r.sshd.Alias, "spbench", "sockopt"), "0:- 1:-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := r.run(t, strings.NewReader(""), tc.args...)
			want(t, res, 0)
			if got := strings.TrimSpace(res.stdout); got != tc.want {
				t.Fatalf("the command's sockets: %q, want %q\n%v", got, tc.want, res)
			}
		})
	}
	r.noneLeft(t)
}
