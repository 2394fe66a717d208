//go:build linux

package integration

// A data connection whose path dies while the login's connection lives (a firewall's or a
// NAT's state for it expires, a route changes): the control channel's pings still come, so
// only a watch of the data connection itself can end the run within the liveness bound, and
// say which connection was lost instead of blaming a command.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// dataPort is where the remote half listens for the data connection (-m reverse --ports):
// each test's host B is a fresh namespace, where nothing else listens.
const dataPort = 40100

// dropPort makes host h drop every packet to or from its TCP port, in both directions, as a
// firewall that lost the connection's state does; its sshd's port 22 stays open.
func dropPort(t *testing.T, h *harness.Host, port int) {
	t.Helper()
	h.Nft(t, fmt.Sprintf("table inet sp_datacut {\n"+
		"\tchain input { type filter hook input priority -300; policy accept; tcp dport %d drop; }\n"+
		"\tchain output { type filter hook output priority -300; policy accept; tcp sport %d drop; }\n}\n", port, port))
}

var lostRE = regexp.MustCompile(`socketpipe: error: (remote half: )?data connection to (\S+) lost: .*`)

// TestDataPathCut drops the data connection's packets on the remote host while the SSH
// connection stays up: with data flowing towards the remote command (plain and -e), with data
// flowing from it, with nothing in flight (keepalive's part), and both ways at once, where each
// half has data in flight that nobody acknowledges (a receiver alone is idle, and keepalive
// gives up on it first). The run ends within the liveness bound (6 s here) plus the time to
// tell, with status 2 and a message that names the data connection and its far end, not a
// command; nothing is left on either host.
func TestDataPathCut(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, kind string
		blocks     func(out string) []any
		running    string // the remote command that shows the transfer is under way
		idle       bool   // wait until the first line went through and back, then nothing moves
		how        string // what the message says, "" for either
		opts       []string
	}{
		{"upstream", "native", func(string) []any {
			return []any{block("-i", "cat", "/dev/zero"), block("-r", "sha256sum"), block("-o", "cat")}
		}, "sha256sum", false, "", nil},
		{"upstream", "exec", func(string) []any {
			return []any{block("-i", "cat", "/dev/zero"), block("-r", "sha256sum"), block("-o", "cat")}
		}, "sha256sum", false, "", nil},
		{"downstream", "native", func(string) []any {
			return []any{block("-i", "true"), block("-r", "cat", "/dev/zero"), block("-o", "sha256sum")}
		}, "cat", false, "", nil},
		{"idle", "native", func(out string) []any {
			return []any{block("-i", "sh", "-c", "echo x; exec sleep 100"), block("-r", "cat"), block("-o", "sh", "-c", "exec cat > "+out)}
		}, "cat", true, "", nil},
		{"upstream-encrypted", "native", func(string) []any {
			return []any{block("-i", "cat", "/dev/zero"), block("-r", "sha256sum"), block("-o", "cat")}
		}, "sha256sum", false, "", []string{"-e"}},
		{"both-ways", "native", func(string) []any {
			return []any{block("-i", "cat", "/dev/zero"), block("-r", "cat"), block("-o", "sha256sum")}
		}, "cat", false, "lost: no acknowledgement for 6s", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/"+tc.kind, func(t *testing.T) {
			t.Parallel()
			r, nw, login := cutHosts(t, tc.kind, false)
			a, b := nw.Hosts[0], nw.Hosts[1]
			out := filepath.Join(t.TempDir(), "out")
			bl := tc.blocks(out)
			rn := r.start(t, nil, []string{shortLiveness}, args("-v", "-m", "reverse", "--ports", itoa(dataPort),
				tc.opts, bl[0], login, bl[1], bl[2])...)
			rn.proc(t, "remote "+tc.running, time.Minute, named(tc.running))
			if tc.idle {
				deadline := time.Now().Add(time.Minute)
				for {
					if b, _ := os.ReadFile(out); string(b) == "x\n" {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the first line did not come back; stderr:\n%s", rn.lines)
					}
					time.Sleep(20 * time.Millisecond) // polling the condition itself, bounded by the deadline
				}
			}
			dropPort(t, b, dataPort)
			rn.act()
			// 6 s of silence is the bound; 15 s leaves room for a busy machine, and is far
			// below what the commands alone take (a sender retransmits for 15 minutes).
			res := rn.end(t, tc.name+"/"+tc.kind+": data path cut, SSH up", 15*time.Second)
			want(t, res, 2)
			m := lostRE.FindStringSubmatch(res.stderr)
			if m == nil {
				t.Fatalf("no message naming the lost data connection:\n%s", res.stderr)
			}
			t.Logf("%s", m[0])
			if !strings.Contains(m[0], tc.how) {
				t.Errorf("the message does not say %q", tc.how)
			}
			// The client names the remote's listening port; the remote half names the client.
			if far := m[2]; far != fmt.Sprintf("%s:%d", b.IPv4, dataPort) && !strings.HasPrefix(far, a.IPv4+":") {
				t.Errorf("the message names %s, neither %s:%d nor the client's %s", far, b.IPv4, dataPort, a.IPv4)
			}
			if strings.Contains(res.stderr, "socketpipe: error: remote command") {
				t.Errorf("a command was blamed:\n%s", res.stderr)
			}
			oneError(t, res)
			noPanic(t, res)
			r.noneLeft(t)
		})
	}
}
