//go:build linux

package integration

// -e end to end: the encrypted data connection carries 64 MiB intact in every mode,
// a man in the middle who flips a bit, drops the end-of-stream frame or cuts the connection is
// caught (exit 2, never 0), and the data is unreadable on the wire.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// encLine is what -v says when -e encrypts the data connection.
const encLine = "data connection: encrypted with "

// encSSHLine is what -v says when -e meets ssh mode.
const encSSHLine = "-e adds nothing in ssh mode"

// encSays checks that -v told the truth about -e in mode.
func encSays(t *testing.T, mode, stderr string) {
	t.Helper()
	if mode == "ssh" {
		mustContain(t, "-v", stderr, encSSHLine)
		if strings.Contains(stderr, encLine) {
			t.Errorf("-v claims an encrypted data connection in ssh mode:\n%s", stderr)
		}
		return
	}
	mustContain(t, "-v", stderr, encLine)
}

// TestEncrypt64MiB sends 64 MiB of random data with -e in each mode, each way: from the input
// command to the remote command, and from the remote command to the output command.
func TestEncrypt64MiB(t *testing.T) {
	t.Parallel()
	r, _ := twoHosts(t)
	path, sha := randomFile(t, 64<<20)
	check := func(t *testing.T, mode string, res *result) {
		t.Helper()
		want(t, res, 0)
		if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sha {
			t.Fatalf("sha256 %q, want %s\n%v", res.stdout, sha, res)
		}
		if m := chosenMode(res.stderr); mode != "auto" && m != mode {
			t.Errorf("-m %s: -v says %q", mode, m)
		} else if mode == "auto" && m != "back" && m != "reverse" {
			t.Errorf("auto chose %q, want a direct connection", m)
		}
		encSays(t, chosenMode(res.stderr), res.stderr)
	}
	cases := []struct {
		mode  string
		login []string
	}{
		{"back", r.execLogin()},
		{"reverse", r.execLogin()},
		{"ssh", r.execLogin()},
		{"auto", r.nativeLogin()},
	}
	for _, c := range cases {
		name := c.mode
		if c.mode == "auto" {
			name = "native-auto"
		}
		t.Run(name+"/to-remote", func(t *testing.T) {
			res := r.run(t, nil, args("-v", "-e", "-m", c.mode, block("-i", "cat", path), c.login, block("-r", "sha256sum"))...)
			check(t, c.mode, res)
		})
		t.Run(name+"/from-remote", func(t *testing.T) {
			res := r.run(t, nil, args("-v", "-e", "-m", c.mode, c.login, block("-r", "cat", path), block("-o", "sha256sum"))...)
			check(t, c.mode, res)
		})
	}
	r.noneLeft(t)
}

// tamper is what the proxy does to the bytes of one direction of the data connection. Offsets
// count from the connection's first byte, the proof included.
type tamper struct {
	flipAt  int64 // flip one bit of the byte at this offset; -1: none
	cutAt   int64 // after this many bytes, close the connection both ways; 0: never
	dropEOS bool  // drop the -e end-of-stream frame, then end the stream cleanly (a FIN)
}

var noTamper = tamper{flipAt: -1}

// The proof that opens the data connection (DESIGN.md), which the proxy passes on untouched
// before it parses -e frames: each side sends "SPD2", its role, a 16-byte nonce and a 32-byte
// HMAC; the client then sends its 1-byte commit.
const (
	proofToClient = 4 + 1 + 16 + 32
	proofToRemote = proofToClient + 1
)

var errCut = errors.New("cut by the proxy")

// relay copies src to dst, tampered with, then half-closes dst. It returns nil when src ended
// and everything meant to pass was sent, else why it stopped. n counts the bytes sent; eos is
// set when an end-of-stream frame was dropped.
func (tp tamper) relay(dst, src *net.TCPConn, proof int64, n *int64, eos *bool) error {
	if tp.dropEOS {
		return dropEOS(dst, src, proof, n, eos)
	}
	buf := make([]byte, 256<<10)
	var off int64
	for {
		m, rerr := src.Read(buf)
		p := buf[:m]
		if tp.flipAt >= off && tp.flipAt < off+int64(m) {
			p[tp.flipAt-off] ^= 0x10
		}
		cut := tp.cutAt > 0 && off+int64(m) >= tp.cutAt
		if cut {
			p = p[:tp.cutAt-off]
		}
		off += int64(len(p))
		if len(p) > 0 {
			if _, err := dst.Write(p); err != nil {
				return err
			}
			*n += int64(len(p))
		}
		switch {
		case cut:
			return errCut
		case rerr == io.EOF:
			return dst.CloseWrite()
		case rerr != nil:
			return rerr
		}
	}
}

// dropEOS passes on the proof and every -e frame but the end-of-stream frame (header bit 31,
// rendezvous/seal.go), which it swallows before ending the stream cleanly: a truncation at
// exactly a frame boundary, invisible to TCP.
func dropEOS(dst, src *net.TCPConn, proof int64, n *int64, eos *bool) error {
	br := bufio.NewReaderSize(src, 256<<10)
	if _, err := io.CopyN(dst, br, proof); err != nil {
		return err
	}
	*n += proof
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return fmt.Errorf("proxy: no end-of-stream frame: %w", err)
		}
		h := binary.BigEndian.Uint32(hdr[:])
		if h&(1<<31) != 0 {
			*eos = true
			io.Copy(io.Discard, br)
			return dst.CloseWrite()
		}
		if _, err := dst.Write(hdr[:]); err != nil {
			return err
		}
		m, err := io.CopyN(dst, br, int64(h&(1<<24-1))+16) // the ciphertext and its tag
		*n += 4 + m
		if err != nil {
			return err
		}
	}
}

// tamperProxy is a man in the middle of the data connection: it accepts the remote half's
// connect-back on its own host and relays it to the client's listener, tampering on the way.
//
// Back mode makes this possible without touching routes: -h names the address the remote half
// dials, here the proxy's; -h is not an address of the client's host, so the client listens on
// the address the login came from (SSH_CONNECTION) instead, and --ports fixes the port it
// listens on, so the proxy knows in advance where to forward: -m back -h <proxy> --ports P.
// The proof passes through untouched: the proxy knows no secret and needs none to tamper.
type tamperProxy struct {
	ln       net.Listener
	up, down tamper // up: client to remote half; down: remote half to client

	mu        sync.Mutex
	conns     int   // connections relayed
	upBytes   int64 // bytes sent on, each way
	downBytes int64
	eosUp     bool // an end-of-stream frame was dropped, each way
	eosDown   bool
	done      chan struct{} // closed when the first relayed connection has ended
}

// startTamperProxy listens on host at port and relays each connection to target, dialled from
// host.
func startTamperProxy(t *testing.T, host *harness.Host, port int, target string, up, down tamper) *tamperProxy {
	t.Helper()
	ln, err := host.Listen("tcp", net.JoinHostPort(host.IPv4, itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	p := &tamperProxy{ln: ln, up: up, down: down, done: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			remote, err := ln.Accept()
			if err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			client, err := host.DialContext(ctx, "tcp", target)
			cancel()
			if err != nil {
				t.Errorf("proxy: dialling the client's listener %s: %v", target, err)
				remote.Close()
				continue
			}
			p.mu.Lock()
			p.conns++
			first := p.conns == 1
			p.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.pair(client.(*net.TCPConn), remote.(*net.TCPConn))
				if first {
					close(p.done)
				}
			}()
		}
	}()
	return p
}

// pair relays one connection both ways. When either way stops early (a cut, a peer that reset),
// both connections are closed, so each end learns of it as it would from a broken network.
func (p *tamperProxy) pair(client, remote *net.TCPConn) {
	defer client.Close()
	defer remote.Close()
	var up, down int64
	var eosUp, eosDown bool
	errs := make(chan error, 2)
	go func() { errs <- p.up.relay(remote, client, proofToRemote, &up, &eosUp) }()
	go func() { errs <- p.down.relay(client, remote, proofToClient, &down, &eosDown) }()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			client.Close()
			remote.Close()
		}
	}
	p.mu.Lock()
	p.upBytes, p.downBytes = up, down
	p.eosUp, p.eosDown = eosUp, eosDown
	p.mu.Unlock()
}

// relayed waits for the first connection to end and returns how many connections the proxy
// took and the bytes it passed on each way.
func (p *tamperProxy) relayed(t *testing.T) (conns int, up, down int64) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(procBound):
		t.Fatalf("the proxied connection did not end within %v of the run", procBound)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns, p.upBytes, p.downBytes
}

// proxyHosts makes host A (the client), B (the remote host, sshd on port 22) and M (the man in
// the middle).
func proxyHosts(t *testing.T) (*remote, *harness.Network) {
	t.Helper()
	nw := harness.NewNetwork(t, 3, harness.NetworkOptions{})
	a, b := nw.Hosts[0], nw.Hosts[1]
	r := newRemote(t, harness.SSHDOptions{Netns: b.Name, ListenAddr: b.IPv4, Port: 22})
	r.host = a
	return r, nw
}

// oneBitApart fails unless got is want with exactly one bit flipped.
func oneBitApart(t *testing.T, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d bytes arrived, want %d", len(got), len(want))
	}
	diffs, first := 0, -1
	for i := range got {
		if got[i] != want[i] {
			if diffs++; first < 0 {
				first = i
			}
		}
	}
	if diffs != 1 {
		t.Fatalf("%d bytes differ, want exactly one flipped bit", diffs)
	}
	if x := got[first] ^ want[first]; x&(x-1) != 0 {
		t.Fatalf("byte %d differs by %08b, want one bit", first, x)
	}
}

// correctPrefix fails unless got is a prefix of want of at least min bytes.
func correctPrefix(t *testing.T, got, want []byte, min int64) {
	t.Helper()
	if !bytes.HasPrefix(want, got) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("the output (%d bytes) is not a prefix of the data: first difference at byte %d", len(got), i)
	}
	if int64(len(got)) < min {
		t.Errorf("only %d bytes were written before the failure, want at least %d: data that arrived intact was lost", len(got), min)
	}
}

// TestEncryptTamperingProxy puts a man in the middle of the data connection. With -e, a flipped
// bit, a missing end-of-stream frame or a cut connection, either way, ends the run with exit 2
// and says why, after writing every byte that arrived intact. Without -e the same flipped bit
// goes unnoticed: exit 0 with corrupted output. That is the plain data connection's threat
// model (the original's too): fit only for a network where nobody can tamper; -e is for the rest.
func TestEncryptTamperingProxy(t *testing.T) {
	t.Parallel()
	r, nw := proxyHosts(t)
	a, m := nw.Hosts[0], nw.Hosts[2]
	const size = 64 << 20
	path, _ := randomFile(t, size)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const (
		flipAt = size/2 + 12345 // well inside the data, past the proof
		cutAt  = size / 4
		// The most the receiver may hold back when a frame fails: that frame, at most
		// 256 KiB of data, and the proof before the data.
		slack = 256<<10 + 1024
	)
	cases := []struct {
		name     string
		encrypt  bool
		up, down tamper
		code     int
		msg      string
	}{
		{"flip/from-remote", true, noTamper, tamper{flipAt: flipAt}, 2, "failed authentication"},
		{"flip/to-remote", true, tamper{flipAt: flipAt}, noTamper, 2, "failed authentication"},
		{"drop-eos/from-remote", true, noTamper, tamper{flipAt: -1, dropEOS: true}, 2, "data connection ended early"},
		{"drop-eos/to-remote", true, tamper{flipAt: -1, dropEOS: true}, noTamper, 2, "data connection ended early"},
		{"cut/from-remote", true, noTamper, tamper{flipAt: -1, cutAt: cutAt}, 2, "data connection ended early"},
		{"cut/to-remote", true, tamper{flipAt: -1, cutAt: cutAt}, noTamper, 2, "data connection ended early"},
		{"plain-flip/from-remote", false, noTamper, tamper{flipAt: flipAt}, 0, ""},
		{"plain-flip/to-remote", false, tamper{flipAt: flipAt}, noTamper, 0, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A fresh port for each run: nothing waits for the last one's to be free.
			port := 41000 + i
			p := startTamperProxy(t, m, port, net.JoinHostPort(a.IPv4, itoa(port)), c.up, c.down)
			opts := args("-v", "-m", "back", "-h", m.IPv4, "--ports", itoa(port))
			if c.encrypt {
				opts = append(opts, "-e")
			}
			toRemote := strings.HasSuffix(c.name, "/to-remote")
			out := filepath.Join(t.TempDir(), "out")
			var res *result
			if toRemote {
				res = r.run(t, nil, args(opts, block("-i", "cat", path), r.execLogin(), block("-r", "dd", "of="+out, "bs=1M", "status=none"))...)
			} else {
				res = r.run(t, nil, args(opts, r.execLogin(), block("-r", "cat", path), block("-o", "cat"))...)
			}
			// The run went through the proxy, and only through it.
			mustContain(t, "-v", res.stderr, "(remote dials "+net.JoinHostPort(m.IPv4, itoa(port))+")")
			if mode := chosenMode(res.stderr); mode != "back" {
				p.mu.Lock()
				n := p.conns
				p.mu.Unlock()
				t.Fatalf("mode %q, want back (the proxy took %d connections)\n%v", mode, n, res)
			}
			conns, up, down := p.relayed(t)
			if conns != 1 {
				t.Errorf("the proxy relayed %d connections, want 1", conns)
			}
			if moved := map[bool]int64{true: up, false: down}[toRemote]; moved < cutAt {
				t.Errorf("the proxy passed only %d bytes %s", moved, c.name)
			}
			if tp := map[bool]tamper{true: c.up, false: c.down}[toRemote]; tp.dropEOS {
				p.mu.Lock()
				dropped := map[bool]bool{true: p.eosUp, false: p.eosDown}[toRemote]
				p.mu.Unlock()
				if !dropped {
					t.Errorf("the proxy found no end-of-stream frame to drop")
				}
			}
			r.noneLeft(t) // the remote command has written all it will
			var got []byte
			if toRemote {
				got, _ = os.ReadFile(out)
			} else {
				got = []byte(res.stdout)
			}

			if res.code != c.code {
				t.Fatalf("want exit %d, got %v", c.code, res)
			}
			if !c.encrypt {
				// Undetected: the plain data connection has no integrity.
				oneBitApart(t, got, data)
				return
			}
			mustContain(t, "stderr", res.stderr, "socketpipe: error: ", c.msg)
			oneError(t, res)
			// Found at once: not left to TCP_USER_TIMEOUT (60 s) to end a run whose other
			// half waits on a window nobody drains any more.
			if res.took > 30*time.Second {
				t.Errorf("the run took %v to fail", res.took)
			}
			if i := strings.Index(res.stderr, "socketpipe: error: "); i >= 0 {
				t.Logf("%s", strings.SplitN(res.stderr[i:], "\n", 2)[0])
			}
			switch {
			case toRemote:
				// The remote command is stopped once the run fails, maybe before it wrote all
				// it was given: only the prefix property holds.
				correctPrefix(t, got, data, 0)
			case c.down.flipAt >= 0:
				correctPrefix(t, got, data, flipAt-slack)
				if len(got) > flipAt {
					t.Errorf("%d bytes written, past the flipped byte at %d", len(got), flipAt)
				}
			case c.down.cutAt > 0:
				correctPrefix(t, got, data, cutAt-slack)
			default:
				// Only the end-of-stream frame was lost: every byte arrived, yet the run
				// cannot know the stream was complete, and says so.
				correctPrefix(t, got, data, size)
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader in different goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

// capture is tcpdump running on the test network's bridge.
type capture struct {
	cmd  *exec.Cmd
	pcap *lockedBuffer
	errs *lockedBuffer
	done chan error
}

// startCapture runs tcpdump on the bridge br0 in the network's switch namespace, for TCP port
// port, and returns once tcpdump says it listens. The bridge sees every frame between the hosts
// (tcpdump makes it promiscuous). The frames are large (the veths aggregate segments up to
// 64 KiB) and come in bursts, so the kernel buffer is 64 MiB (-B): with the default 2 MiB the
// kernel drops some on a busy machine. The capture goes to tcpdump's standard output (-w -,
// packet-buffered with -U) rather than a file: the test reads it as it comes, and neither
// tcpdump's dropping of privileges nor an AppArmor profile can stop it from writing.
func startCapture(t *testing.T, nw *harness.Network, port int) *capture {
	t.Helper()
	requireTool(t, "tcpdump")
	c := &capture{pcap: new(lockedBuffer), errs: new(lockedBuffer), done: make(chan error, 1)}
	c.cmd = exec.Command("ip", "netns", "exec", nw.Switch, "tcpdump", "-i", "br0", "-n", "-U", "-s", "0", "-B", "65536", "-w", "-", "tcp", "port", itoa(port))
	c.cmd.Stdout = c.pcap
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			c.errs.Write(append(sc.Bytes(), '\n'))
			if !said && strings.Contains(sc.Text(), "listening on br0") {
				said = true
				close(listening)
			}
		}
		c.done <- c.cmd.Wait()
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
		c.done <- nil
	})
	select {
	case <-listening:
	case err := <-c.done:
		c.done <- err
		t.Fatalf("tcpdump ended before it listened: %v\n%s", err, c.errs.Bytes())
	case <-time.After(60 * time.Second):
		t.Fatalf("tcpdump did not say it listens within 60s:\n%s", c.errs.Bytes())
	}
	return c
}

var droppedRE = regexp.MustCompile(`(\d+) packets? dropped by kernel`)

// stop waits until the capture holds at least n bytes (the data crossed the bridge before it
// arrived, but tcpdump may still be writing it out), stops tcpdump with SIGINT, and returns the
// pcap.
func (c *capture) stop(t *testing.T, n int) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.pcap.Len() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling the condition itself, bounded by the deadline
	}
	c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-c.done:
		c.done <- err
		if err != nil {
			t.Errorf("tcpdump: %v\n%s", err, c.errs.Bytes())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("tcpdump did not stop within 30s of SIGINT")
	}
	pcap := c.pcap.Bytes()
	if m := droppedRE.FindStringSubmatch(string(c.errs.Bytes())); m == nil || m[1] != "0" {
		t.Errorf("tcpdump lost packets, so the capture proves nothing about them:\n%s", c.errs.Bytes())
	}
	if len(pcap) < n {
		t.Fatalf("the capture holds %d bytes, want at least the %d the data took on the wire:\n%s", len(pcap), n, c.errs.Bytes())
	}
	return pcap
}

// TestEncryptOnTheWire captures the data connection on the bridge between the two hosts: a
// known plaintext marker in the data is there for anyone to read without -e, and nowhere in the
// capture with it.
func TestEncryptOnTheWire(t *testing.T) {
	t.Parallel()
	r, nw := twoHosts(t)
	marker := "socketpipe-plaintext-marker-" + harness.NewMarker()
	data := bytes.Repeat([]byte(marker+"\n"), (1<<20)/(len(marker)+1))
	i := 0
	for _, mode := range []string{"back", "reverse"} {
		for _, encrypt := range []bool{false, true} {
			name := mode + "/plain"
			if encrypt {
				name = mode + "/encrypted"
			}
			port := 42000 + i
			i++
			t.Run(name, func(t *testing.T) {
				c := startCapture(t, nw, port)
				opts := args("-v", "-m", mode, "--ports", itoa(port))
				if encrypt {
					opts = append(opts, "-e")
				}
				res := r.run(t, bytes.NewReader(data), args(opts, block("-i", "cat"), r.execLogin(), block("-r", "cat"), block("-o", "sha256sum"))...)
				want(t, res, 0)
				if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sum(data) {
					t.Fatalf("sha256 %q, want %s\n%v", res.stdout, sum(data), res)
				}
				if m := chosenMode(res.stderr); m != mode {
					t.Fatalf("mode %q, want %s", m, mode)
				}
				if encrypt {
					encSays(t, mode, res.stderr)
				}
				// The data went out and came back: twice its size on the wire, at least.
				pcap := c.stop(t, 2*len(data))
				seen := bytes.Contains(pcap, []byte(marker))
				switch {
				case encrypt && seen:
					t.Errorf("with -e the plaintext marker is in the capture (%d bytes)", len(pcap))
				case !encrypt && !seen:
					t.Errorf("without -e the plaintext marker is not in the capture (%d bytes): is the capture seeing the data?", len(pcap))
				}
			})
		}
	}
	r.noneLeft(t)
}
