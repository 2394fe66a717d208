//go:build linux

package integration

// Rendezvous modes between network namespaces, connect-back between two hosts among them:
// the client runs in host A, the remote host B has its own sshd on port 22, and nft firewalls
// decide which directions a data connection can take.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// twoHosts makes hosts A (client) and B (sshd on port 22, IPv4 and IPv6).
func twoHosts(t *testing.T) (*remote, *harness.Network) {
	t.Helper()
	nw := harness.NewNetwork(t, 2, harness.NetworkOptions{})
	a, b := nw.Hosts[0], nw.Hosts[1]
	r := newRemote(t, harness.SSHDOptions{Netns: b.Name, ListenAddr: b.IPv4, ExtraListenAddrs: []string{b.IPv6}, Port: 22})
	r.host = a
	return r, nw
}

// execLoginAt is execLogin reaching the sshd at another of its addresses.
func (r *remote) execLoginAt(addr string) []string {
	return append(append([]string{"-x", "-l", "{"}, r.sshd.SSHArgsAt(addr)...), "}")
}

// transfer sends data through `cat` on the remote host with -v and the given options, and
// checks that it arrived intact. It returns the mode -v reported.
func (r *remote) transfer(t *testing.T, data []byte, opts ...any) string {
	t.Helper()
	return chosenMode(r.transferRun(t, data, opts...).stderr)
}

// transferRun is transfer returning the run.
func (r *remote) transferRun(t *testing.T, data []byte, opts ...any) *result {
	t.Helper()
	res := r.run(t, bytes.NewReader(data), args("-v", args(opts...), block("-i", "cat"), block("-r", "cat"), block("-o", "sha256sum"))...)
	want(t, res, 0)
	if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sum(data) {
		t.Fatalf("sha256 %q, want %s\n%v", res.stdout, sum(data), res)
	}
	m := chosenMode(res.stderr)
	if m == "" {
		t.Fatalf("-v did not say which mode was chosen:\n%s", res.stderr)
	}
	return res
}

// TestNetnsModes forces each mode between two namespaces with an executed ssh login; "back" is
// the original's connect-back between two hosts.
func TestNetnsModes(t *testing.T) {
	t.Parallel()
	r, _ := twoHosts(t)
	data := randomBytes(t, 4<<20)
	for _, mode := range []string{"back", "reverse", "ssh"} {
		t.Run(mode, func(t *testing.T) {
			if got := r.transfer(t, data, "-m", mode, r.execLogin()); got != mode {
				t.Errorf("-m %s: -v says %s", mode, got)
			}
		})
	}
	t.Run("auto", func(t *testing.T) {
		if got := r.transfer(t, data, r.execLogin()); got != "back" && got != "reverse" {
			t.Errorf("auto without a firewall chose %s, want a direct connection", got)
		}
	})
	r.noneLeft(t)
}

// TestNetnsIPv6 logs in over IPv6: the data connection uses IPv6 too, in every direct mode.
func TestNetnsIPv6(t *testing.T) {
	t.Parallel()
	r, nw := twoHosts(t)
	a, b := nw.Hosts[0], nw.Hosts[1]
	data := randomBytes(t, 1<<20)
	for _, mode := range []string{"back", "reverse", "auto"} {
		t.Run(mode, func(t *testing.T) {
			res := r.run(t, bytes.NewReader(data), args("-v", "-m", mode, block("-i", "cat"), r.execLoginAt(b.IPv6), block("-r", "cat"), block("-o", "sha256sum"))...)
			want(t, res, 0)
			if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sum(data) {
				t.Fatalf("sha256 %q, want %s\n%v", res.stdout, sum(data), res)
			}
			switch m := chosenMode(res.stderr); {
			case mode != "auto" && m != mode:
				t.Errorf("-m %s: -v says %q", mode, m)
			case m == "back":
				mustContain(t, "-v", res.stderr, "listening for connect-back on ["+a.IPv6+"]:")
			case m == "reverse":
				mustContain(t, "-v", res.stderr, "dialling the remote half at ["+b.IPv6+"]:")
			default:
				t.Errorf("mode %q over IPv6", m)
			}
		})
	}
	// -h with a literal IPv6 address.
	t.Run("back-h", func(t *testing.T) {
		if m := r.transfer(t, data, "-m", "back", "-h", a.IPv6, r.execLogin()); m != "back" {
			t.Errorf("mode %s", m)
		}
	})
	r.noneLeft(t)
}

// TestNetnsAutoLocalFirewall: the client's host takes no new inbound connections, so auto
// must end up in reverse mode.
func TestNetnsAutoLocalFirewall(t *testing.T) {
	t.Parallel()
	r, nw := twoHosts(t)
	nw.Hosts[0].DropInboundExcept(t, 22)
	if m := r.transfer(t, randomBytes(t, 1<<20), r.execLogin()); m != "reverse" {
		t.Errorf("auto behind a local firewall chose %s, want reverse", m)
	}
	r.noneLeft(t)
}

// TestNetnsAutoRemoteFirewall: the remote host takes new connections on port 22 only, so auto
// must end up connecting back.
func TestNetnsAutoRemoteFirewall(t *testing.T) {
	t.Parallel()
	r, nw := twoHosts(t)
	nw.Hosts[1].DropInboundExcept(t, 22)
	if m := r.transfer(t, randomBytes(t, 1<<20), r.execLogin()); m != "back" {
		t.Errorf("auto behind a remote firewall chose %s, want back", m)
	}
	r.noneLeft(t)
}

// TestNetnsAutoBothFirewalled: no direct connection is possible and the login is an executed
// ssh, whose stdio auto mode does not trust for data: a clear failure within -t that names
// -m ssh.
func TestNetnsAutoBothFirewalled(t *testing.T) {
	t.Parallel()
	r, nw := twoHosts(t)
	nw.Hosts[0].DropInboundExcept(t, 22)
	nw.Hosts[1].DropInboundExcept(t, 22)
	const timeout = 3 * time.Second
	res := r.run(t, nil, args("-t", "3", block("-i", "echo", "x"), r.execLogin(), block("-r", "cat"), block("-o", "cat"))...)
	want(t, res, 2)
	mustContain(t, "stderr", res.stderr, "socketpipe: error: no data connection within 3s", "-m ssh")
	oneError(t, res)
	if res.took < timeout || res.took > timeout+20*time.Second {
		t.Errorf("took %v, want about -t %v plus the login", res.took, timeout)
	}
	// And -m ssh, which the message suggests, works there.
	if m := r.transfer(t, randomBytes(t, 1<<20), "-m", "ssh", r.execLogin()); m != "ssh" {
		t.Errorf("mode %s", m)
	}
	r.noneLeft(t)
}

// TestNetnsTimeoutFirewall: -m back into a host whose firewall drops the connection: the
// remote half's SYNs go unanswered, and the client gives up after -t with the firewall hint.
func TestNetnsTimeoutFirewall(t *testing.T) {
	t.Parallel()
	r, nw := twoHosts(t)
	nw.Hosts[0].DropInboundExcept(t)
	const timeout = 2 * time.Second
	res := r.run(t, nil, args("-m", "back", "-t", "2", r.execLogin(), block("-r", "cat"), block("-o", "cat"))...)
	want(t, res, 2)
	mustContain(t, "stderr", res.stderr, "socketpipe: error: no data connection within 2s", "socketpipe: hint: ", "firewall")
	oneError(t, res)
	if res.took < timeout || res.took > timeout+20*time.Second {
		t.Errorf("took %v, want about -t %v plus the login", res.took, timeout)
	}
	r.noneLeft(t)
}

// TestStrangerAtReverse puts strangers from the client's host on the remote half's reverse
// listener (a known port, --ports) before the client has read the hello that names it.
func TestStrangerAtReverse(t *testing.T) {
	t.Parallel()
	r, nw := twoHosts(t)
	a, b := nw.Hosts[0], nw.Hosts[1]
	const port = 40000 // B is a fresh namespace: nothing but sshd listens there
	addr := net.JoinHostPort(b.IPv4, fmt.Sprint(port))
	g := newGate(t, "hello")
	data := randomBytes(t, 4<<20)
	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	defer cancel()
	// The gated login is not ssh: -h names the address the client may dial.
	cmd := r.spCmd(ctx, args("-v", "-m", "reverse", "--ports", fmt.Sprint(port), "-h", b.IPv4, block("-i", "cat"),
		g.login(r.sshd.SSHArgs()), block("-r", "cat"), block("-o", "sha256sum"))...)
	cmd.Stdin = bytes.NewReader(data)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the real condition: the remote half listens.
	stranger := harness.NewStranger(a)
	deadline := time.Now().Add(60 * time.Second)
	for {
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := stranger.Connect(dctx, addr)
		dcancel()
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the remote half never listened at %s: %v\n%s", addr, err, stderr.Bytes())
		}
		time.Sleep(20 * time.Millisecond) // polling the condition itself, bounded by the deadline
	}
	st := connectStrangers(t, stranger, addr, "C")
	released := time.Now()
	g.open(t)
	err := cmd.Wait()
	took := time.Since(released)
	if ctx.Err() != nil {
		t.Fatalf("no end within %v:\n%s", runBound, stderr.Bytes())
	}
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.Bytes())
	}
	if got := strings.Fields(stdout.String()); len(got) == 0 || got[0] != sum(data) {
		t.Fatalf("sha256 %q, want %s", stdout.String(), sum(data))
	}
	if m := chosenMode(stderr.String()); m != "reverse" {
		t.Errorf("mode %q, want reverse:\n%s", m, stderr.Bytes())
	}
	if took >= 5*time.Second {
		t.Errorf("the run took %v after the gate opened: the silent stranger delayed it", took)
	}
	st.check(t)
	r.noneLeft(t)
}

// TestNestedChainThreeHosts runs a socketpipe on the middle host B that reaches C, which does
// not take connections from A at all: the data crosses A-B-C and back.
func TestNestedChainThreeHosts(t *testing.T) {
	t.Parallel()
	nw := harness.NewNetwork(t, 3, harness.NetworkOptions{})
	a, b, c := nw.Hosts[0], nw.Hosts[1], nw.Hosts[2]
	r := newRemote(t, harness.SSHDOptions{Netns: b.Name, ListenAddr: b.IPv4, Port: 22, Alias: "sp-b"})
	r.host = a
	sc := r.addSSHD(t, harness.SSHDOptions{Netns: c.Name, ListenAddr: c.IPv4, Port: 22, Alias: "sp-c"})
	c.Firewall(t, fmt.Sprintf("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tip saddr %s drop\n\t\tip6 saddr %s drop\n\t}", a.IPv4, a.IPv6))
	data := randomBytes(t, 4<<20)
	inner := args("socketpipe", "-x", "-t", "20", block("-i", "cat"), "-l", "{", sc.SSHArgs(), "}", block("-r", "cat"), block("-o", "cat"))
	res := r.run(t, bytes.NewReader(data), args(block("-i", "cat"), r.execLogin(), block("-r", inner...), block("-o", "sha256sum"))...)
	want(t, res, 0)
	if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sum(data) {
		t.Fatalf("sha256 through A-B-C %q, want %s\n%v", res.stdout, sum(data), res)
	}
	if sc.AuthCount() != 1 {
		t.Errorf("C's sshd saw %d logins, want 1", sc.AuthCount())
	}
	r.noneLeft(t)
}
