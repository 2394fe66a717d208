//go:build linux

package integration

// ssh mode over direct-tcpip channels of a native login's SSH connection (pkg/plumb's
// sshlink.go), against a real OpenSSH sshd on the far side of the emulated long path: the data
// goes over several channels to the remote half's loopback listener, byte-exact both ways; a
// server that refuses forwarding leaves the frames on the login's session; a cut connection
// fails the run. On loopback the frames stay: there the channels' window is no limit.

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
)

var channelsRE = regexp.MustCompile(`ssh mode: the data over (\d+) SSH channels`)

// chosenChannels is the number of SSH channels -v says carried the data; 0 for frames.
func chosenChannels(t *testing.T, stderr string) int {
	t.Helper()
	if m := channelsRE.FindStringSubmatch(stderr); m != nil {
		return atoi(t, m[1])
	}
	if !strings.Contains(stderr, "ssh mode: the data in frames") {
		t.Fatalf("-v says neither channels nor frames:\n%s", stderr)
	}
	return 0
}

var channelRTTRE = regexp.MustCompile(`round trip ([0-9.]+) ms, one SSH channel's 2 MiB window`)

// Channels where the window limits, frames where it does not: on loopback the round trip is
// far below the 1.7 ms where one channel's window stops carrying 10 Gbit/s, so the frames
// stay. A machine so busy that sshd takes longer than that to answer three times may choose
// channels, which is harmless; the choice must still follow the round trip -v reports.
func TestSSHModeChannelsLoopback(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	res := r.transferRun(t, randomBytes(t, 2<<20), "-m", "ssh", r.nativeLogin())
	m := channelRTTRE.FindStringSubmatch(res.stderr)
	if m == nil {
		t.Fatalf("-v does not give the round trip behind its choice:\n%s", res.stderr)
	}
	rtt, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	n := chosenChannels(t, res.stderr)
	switch {
	case rtt < 1.6 && n != 0:
		t.Fatalf("at a round trip of %v ms -m ssh used %d channels:\n%s", rtt, n, res.stderr)
	case rtt > 1.8 && n == 0:
		t.Fatalf("at a round trip of %v ms -m ssh kept the frames:\n%s", rtt, res.stderr)
	case n == 0:
		mustContain(t, "-v", res.stderr, "enough for 10 Gbit/s")
	default:
		t.Logf("a busy machine: loopback's round trip looked like %v ms, so %d channels", rtt, n)
	}
	r.noneLeft(t)
}

// On a 10 ms path: -m ssh with a native login takes channels, through the remote command both
// ways, and so does auto mode's fallback to ssh mode; with an executed ssh, or a server that
// refuses forwarding, the frames carry the data; a cut SSH connection fails the run.
func TestSSHModeChannelsWAN(t *testing.T) {
	t.Parallel()
	w := harness.NewWAN(t, harness.WANOptions{RTT: 10 * time.Millisecond, Rate: harness.Gbps})
	a, b := w.Hosts[0], w.Hosts[1]
	r := newRemote(t, harness.SSHDOptions{Netns: b.Name, ListenAddr: b.IPv4, Port: 22})
	r.host = a
	data := randomBytes(t, 4<<20)

	t.Run("native", func(t *testing.T) {
		res := r.transferRun(t, data, "-m", "ssh", r.nativeLogin())
		if n := chosenChannels(t, res.stderr); n < 2 {
			t.Fatalf("native -m ssh on a 10 ms path used %d channels, want at least 2:\n%s", n, res.stderr)
		}
		mustContain(t, "-v", res.stderr, "ms, one SSH channel's 2 MiB window carries about")
	})
	t.Run("remote output", func(t *testing.T) {
		// The remote command's own output, not only what it echoes: the remote end of the
		// channels relays too.
		res := r.run(t, nil, args("-v", "-m", "ssh", r.nativeLogin(), block("-r", "head", "-c", "5000000", "/dev/zero"), block("-o", "wc", "-c"))...)
		want(t, res, 0)
		if got := strings.TrimSpace(res.stdout); got != "5000000" {
			t.Fatalf("the remote command's 5000000 bytes arrived as %q\n%v", got, res)
		}
		if n := chosenChannels(t, res.stderr); n < 2 {
			t.Fatalf("native -m ssh used %d channels:\n%s", n, res.stderr)
		}
	})
	t.Run("executed ssh", func(t *testing.T) {
		res := r.transferRun(t, data, "-m", "ssh", r.execLogin())
		if n := chosenChannels(t, res.stderr); n != 0 {
			t.Fatalf("-m ssh through the ssh binary used %d channels:\n%s", n, res.stderr)
		}
		mustContain(t, "-v", res.stderr, "only a native login opens SSH channels")
	})
	t.Run("refused", func(t *testing.T) {
		s := r.addSSHD(t, harness.SSHDOptions{Netns: b.Name, ListenAddr: b.IPv4, ExtraConfig: []string{"AllowTcpForwarding no"}})
		login := append(append([]string{"-l", "{"}, s.SSHArgs()...), "}")
		res := r.transferRun(t, data, "-m", "ssh", login)
		if n := chosenChannels(t, res.stderr); n != 0 {
			t.Fatalf("with forwarding refused, -v says %d channels:\n%s", n, res.stderr)
		}
		mustContain(t, "-v", res.stderr, "refused a forwarded channel")
	})
	t.Run("fallback", func(t *testing.T) {
		a.DropInboundExcept(t, 22)
		b.DropInboundExcept(t, 22)
		defer a.ClearFirewall(t)
		defer b.ClearFirewall(t)
		res := r.transferRun(t, data, r.nativeLogin())
		if m := chosenMode(res.stderr); m != "ssh" {
			t.Fatalf("behind both firewalls auto chose %s, want ssh:\n%s", m, res.stderr)
		}
		if n := chosenChannels(t, res.stderr); n < 2 {
			t.Fatalf("the fallback to ssh mode used %d channels:\n%s", n, res.stderr)
		}
	})
	t.Run("cut", func(t *testing.T) { sshChannelsCut(t, r, b) })
	r.noneLeft(t)
}

// sshChannelsCut cuts the SSH connection mid-transfer (the server's side answers with resets)
// and wants the run to fail: channels read the cut as a plain end of file, and only the
// stripe format's end frames tell it from the end.
func sshChannelsCut(t *testing.T, r *remote, b *harness.Host) {
	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	defer cancel()
	// An endless stream, so the cut always comes mid-transfer. Short liveness: the remote
	// half, whose sshd never hears of the cut, gives up on the silent client within 6 s.
	cmd := r.spCmdWith(ctx, runOpts{env: []string{shortLiveness}}, args("-v", "-m", "ssh", r.nativeLogin(), block("-r", "cat", "/dev/zero"), block("-o", "wc", "-c"))...)
	var stdout bytes.Buffer
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(string(stderr.Bytes()), "SSH channels") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // data under way on every channel
	b.Firewall(t, "chain input { type filter hook input priority filter; tcp dport 22 reject with tcp reset; }")
	defer b.ClearFirewall(t)
	cutAt := time.Now()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("socketpipe went on for 60 s after the SSH connection was cut:\n%s", string(stderr.Bytes()))
	}
	if code := exitCode(t, err); code == 0 {
		t.Fatalf("a cut SSH connection ended the run with status 0 after %s bytes:\n%s", strings.TrimSpace(stdout.String()), string(stderr.Bytes()))
	}
	mustContain(t, "stderr", string(stderr.Bytes()), "SSH channels", "socketpipe: error:")
	t.Logf("socketpipe ended %v after the cut:\n%s", time.Since(cutAt).Round(100*time.Millisecond), lastLines(string(stderr.Bytes()), 3))
}
