//go:build linux

package integration

// --streams and the default chooser on the harness's emulated long path (harness.NewWAN): the
// client runs in host A, the remote host B has its own sshd, and the packets between them take
// a real round trip at 1 Gbit/s. The transfers are small, to keep CI quick; the bench measures.

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// wanHosts makes hosts A (client) and B (sshd on port 22) joined by the emulated path.
func wanHosts(t *testing.T, opts harness.WANOptions) (*remote, *harness.WAN) {
	t.Helper()
	w := harness.NewWAN(t, opts)
	a, b := w.Hosts[0], w.Hosts[1]
	r := newRemote(t, harness.SSHDOptions{Netns: b.Name, ListenAddr: b.IPv4, Port: 22})
	r.host = a
	return r, w
}

var streamsRE = regexp.MustCompile(`data connection: (one stream|(\d+) streams?)[:,]`)

// chosenStreams is the number of streams -v said the run used, 0 if it did not say.
func chosenStreams(t *testing.T, stderr string) int {
	t.Helper()
	m := streamsRE.FindStringSubmatch(stderr)
	switch {
	case m == nil:
		return 0
	case m[1] == "one stream":
		return 1
	}
	return atoi(t, m[2])
}

// Forced streams carry the data byte-exact both ways through the remote command, back and
// reverse, plain and -e; the default on a 50 ms path stripes, and says why with the figures.
func TestStreamsWAN(t *testing.T) {
	t.Parallel()
	r, _ := wanHosts(t, harness.WANOptions{RTT: 50 * time.Millisecond, Rate: harness.Gbps})
	data := randomBytes(t, 4<<20)
	for _, tt := range []struct {
		name string
		opts []string
	}{
		{"back", []string{"-m", "back"}},
		{"reverse", []string{"-m", "reverse"}},
		{"back -e", []string{"-m", "back", "-e"}},
		{"reverse -e", []string{"-m", "reverse", "-e"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := r.transferRun(t, data, "--streams", "4", tt.opts, r.execLogin())
			if n := chosenStreams(t, res.stderr); n != 4 {
				t.Fatalf("--streams 4: -v says %d streams:\n%s", n, res.stderr)
			}
		})
	}
	t.Run("default", func(t *testing.T) {
		res := r.transferRun(t, data, r.execLogin())
		n := chosenStreams(t, res.stderr)
		if n < 2 {
			t.Fatalf("on a 50 ms path the default chose %d streams:\n%s", n, res.stderr)
		}
		mustContain(t, "-v", res.stderr, "round trip", "one stream's window", "carries about")
	})
	t.Run("--streams 1", func(t *testing.T) {
		res := r.transferRun(t, data, "--streams", "1", r.execLogin())
		if n := chosenStreams(t, res.stderr); n != 1 {
			t.Fatalf("--streams 1: -v says %d streams:\n%s", n, res.stderr)
		}
	})
	r.noneLeft(t)
}

// On loopback the default stays one stream (the commands hold the socket: see
// integration/zerocopy), and -v says why.
func TestStreamsDefaultLoopback(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	res := r.transferRun(t, randomBytes(t, 1<<20), r.execLogin())
	if n := chosenStreams(t, res.stderr); n != 1 {
		t.Fatalf("on loopback the default chose %d streams:\n%s", n, res.stderr)
	}
	mustContain(t, "-v", res.stderr, "one stream: round trip", "enough for 10 Gbit/s")
	r.noneLeft(t)
}

// With 0.1% of the packets lost at random, the default's streams still deliver every byte.
func TestStreamsLoss(t *testing.T) {
	t.Parallel()
	r, w := wanHosts(t, harness.WANOptions{RTT: 50 * time.Millisecond, Rate: harness.Gbps, Loss: 0.001})
	data := randomBytes(t, 4<<20)
	for _, opts := range [][]string{nil, {"-e"}} {
		res := r.transferRun(t, data, opts, r.execLogin())
		if n := chosenStreams(t, res.stderr); n < 2 {
			t.Fatalf("the default chose %d streams on a 50 ms path (loss seed %d):\n%s", n, w.Seed, res.stderr)
		}
	}
	r.noneLeft(t)
}

// One stream cut mid-transfer fails the run, with a message naming the stream; it never
// passes for a success, and the run ends within the liveness bound. Two cuts: the remote
// host's firewall answers the stream's packets with resets, or drops everything of it both
// ways (a blackhole, as a NAT or firewall that forgot the connection): then only the data
// connections' watch can tell, since the control channel and the other streams live on.
func TestStreamsOneCut(t *testing.T) {
	t.Parallel()
	r, w := wanHosts(t, harness.WANOptions{RTT: 20 * time.Millisecond, Rate: harness.Gbps})
	b := w.Hosts[1]
	cuts := map[string]string{
		"reset": "chain input { type filter hook input priority filter; tcp dport %[1]s reject with tcp reset; }",
		"blackhole": "chain input { type filter hook input priority filter; tcp dport %[1]s drop; }\n" +
			"chain output { type filter hook output priority filter; tcp sport %[1]s drop; }",
	}
	for _, cut := range []string{"reset", "blackhole"} {
		for _, enc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/e=%v", cut, enc), func(t *testing.T) {
				streamsCut(t, r, b, cuts[cut], enc)
			})
		}
	}
	r.noneLeft(t)
}

func streamsCut(t *testing.T, r *remote, b *harness.Host, rules string, enc bool) {
	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	defer cancel()
	opts := []string{"-v", "-m", "back", "--streams", "4"}
	if enc {
		opts = append(opts, "-e")
	}
	// An endless trickle, so the run is under way whenever the cut comes; short liveness, so
	// that a blackhole is found in seconds (the bound is 6 s instead of 30 s).
	cmd := r.spCmdWith(ctx, runOpts{env: []string{shortLiveness}}, args(opts, r.execLogin(),
		block("-i", "sh", "-c", "while :; do head -c 300000 /dev/zero; sleep 0.05; done"),
		block("-r", "cat"), block("-o", "sh", "-c", "cat >/dev/null"))...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The remote half's ends of the data connections: B's connections to A other than the
	// login's.
	var ports []string
	deadline := time.Now().Add(30 * time.Second)
	for len(ports) < 4 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		ports = ports[:0]
		for _, line := range strings.Split(b.Exec(t, "ss", "-tnH", "state", "established"), "\n") {
			f := strings.Fields(line)
			if len(f) < 4 || strings.HasSuffix(f[2], ":22") {
				continue
			}
			ports = append(ports, f[2][strings.LastIndex(f[2], ":")+1:])
		}
	}
	if len(ports) != 4 {
		cmd.Process.Kill()
		t.Fatalf("B holds %d data connections, want 4:\n%s", len(ports), string(stderr.Bytes()))
	}
	time.Sleep(500 * time.Millisecond) // data on every stream
	p := ports[2]
	b.Firewall(t, fmt.Sprintf(rules, p))
	defer b.ClearFirewall(t)
	cutAt := time.Now()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("socketpipe went on for 30 s after a stream was cut:\n%s", string(stderr.Bytes()))
	}
	if err == nil {
		t.Fatalf("socketpipe succeeded with a stream cut:\n%s", string(stderr.Bytes()))
	}
	if !regexp.MustCompile(`error: .*stream \d+ of 4`).MatchString(string(stderr.Bytes())) {
		t.Fatalf("the error does not name the stream:\n%s", string(stderr.Bytes()))
	}
	t.Logf("cut the stream at port %s; socketpipe ended %v later:\n%s", p,
		time.Since(cutAt).Round(100*time.Millisecond), lastLines(string(stderr.Bytes()), 3))
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
