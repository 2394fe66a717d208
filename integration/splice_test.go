//go:build linux

package integration

// A third party that can reach both data listeners connects to each and relays the bytes
// between them. Both halves accepted such a connection, so neither may take it as the other
// half: the proof binds the direction, and the relay carries the two hellos and MACs and
// nothing more.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
	"github.com/socketpipe/socketpipe/internal/testenv"
)

// TestSplicedListeners blocks root's direct paths between the halves (an nft rule on the
// output hook for user 0 and the two --ports), so that only a relay running as nobody reaches
// the listeners. The relay gets the hellos and the MACs, never a payload byte, and the run
// completes over the SSH connection.
func TestSplicedListeners(t *testing.T) {
	t.Parallel()
	_, err := exec.LookPath("setpriv")
	testenv.Need(t, "setpriv (install util-linux)", err)
	relayBin := filepath.Join(harness.BuildMain(t, "integration/testdata/splicerelay"), "splicerelay")
	nw := harness.NewNetwork(t, 1, harness.NetworkOptions{})
	a := nw.Hosts[0]
	r := newRemote(t, harness.SSHDOptions{Netns: a.Name, ListenAddr: a.IPv4, Port: 22})
	r.host = a
	const low, high = 41700, 41701 // a fresh namespace: nothing else listens there
	// Nor may a connection take one as its source port: the relay's dials every 20 ms walk
	// the ephemeral range, and one holding 41700 as a half's listener binds made the run
	// fall back to ssh mode before the relay could splice (it then waited a minute).
	a.Exec(t, "sysctl", "-qw", fmt.Sprintf("net.ipv4.ip_local_reserved_ports=%d-%d", low, high))
	a.Firewall(t, fmt.Sprintf("\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n"+
		"\t\tmeta skuid 0 tcp dport { %d, %d } drop\n\t}", low, high))

	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	defer cancel()
	relay := a.Command(ctx, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", relayBin,
		net.JoinHostPort(a.IPv4, fmt.Sprint(low)), net.JoinHostPort(a.IPv4, fmt.Sprint(high)))
	var relayOut, relayErr bytes.Buffer
	relay.Stdout, relay.Stderr = &relayOut, &relayErr
	if err := relay.Start(); err != nil {
		t.Fatal(err)
	}
	defer relay.Process.Kill()

	data := randomBytes(t, 1<<20)
	res := r.run(t, bytes.NewReader(data), args("-v", "--ports", fmt.Sprintf("%d-%d", low, high), r.nativeLogin(),
		block("-i", "cat"), block("-r", "cat"), block("-o", "sha256sum"))...)
	want(t, res, 0)
	if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sum(data) {
		t.Fatalf("sha256 %q, want %s\n%v", res.stdout, sum(data), res)
	}
	if m := chosenMode(res.stderr); m != "ssh" {
		t.Errorf("mode %q, want ssh (the direct paths are blocked):\n%s", m, res.stderr)
	}

	done := make(chan error, 1)
	go func() { done <- relay.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("relay: %v\n%s", err, relayErr.Bytes())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the relay's connections were still open 30 s after the run\n%s", res.stderr)
	}
	var ab, ba int64
	if _, err := fmt.Sscan(relayOut.String(), &ab, &ba); err != nil {
		t.Fatalf("relay output %q: %v\n%s", relayOut.String(), err, relayErr.Bytes())
	}
	t.Logf("the relay carried %d and %d bytes", ab, ba)
	// It did splice the two listeners (each side's hello went through), and it got nothing
	// past the proof.
	if ab < proofHelloSize || ba < proofHelloSize {
		t.Errorf("the relay carried %d and %d bytes: it never spliced the listeners", ab, ba)
	}
	if max := int64(proofHelloSize + proofMACSize); ab > max || ba > max {
		t.Errorf("the relay carried %d and %d bytes, more than the proof's %d: it got payload", ab, ba, max)
	}
	r.noneLeft(t)
}
