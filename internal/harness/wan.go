//go:build linux

package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BitRate is a link rate in bits per second.
type BitRate int64

// Units of BitRate.
const (
	Kbps BitRate = 1000
	Mbps         = 1000 * Kbps
	Gbps         = 1000 * Mbps
)

func (r BitRate) String() string {
	switch {
	case r == 0:
		return "unlimited"
	case r%Gbps == 0:
		return fmt.Sprintf("%d Gbit/s", r/Gbps)
	case r%Mbps == 0:
		return fmt.Sprintf("%d Mbit/s", r/Mbps)
	}
	return fmt.Sprintf("%d bit/s", int64(r))
}

// WANOptions configures [NewWAN] and [WAN.Set]. The zero value is a plain wire: no delay, no
// rate limit, no loss.
type WANOptions struct {
	// RTT is the round trip the path adds, half in each direction, before any queueing.
	RTT time.Duration
	// Rate is the link rate in each direction, counting whole IP packets (headers included,
	// no Ethernet framing): one TCP stream's goodput tops out near Rate × 1448/1500. 0 means
	// no limit (packets only wait for the delay).
	Rate BitRate
	// Queue is the drop-tail buffer in front of each direction's link, in bytes of IP packets
	// waiting to be sent (the one being sent included): a packet that does not fit is dropped.
	// 0 means one bandwidth-delay product (Rate × RTT), at least 64 KiB, the classic rule
	// for a router's buffer. Unused without a Rate.
	Queue int
	// Loss is the probability that each packet (each 1500-byte segment, however the hosts
	// batched it) is lost, independently, in each direction, before it reaches the queue.
	Loss float64
	// Seed seeds the random loss, so that a failing run can be repeated with the same
	// choices; 0 picks a random seed ([WAN.Seed] tells which). NewWAN only.
	Seed uint64
	// MTU of both hosts' interfaces; 0 means 1500. NewWAN only.
	MTU int
	// NoOffload turns off GSO on the hosts' interfaces, so that the emulator moves one
	// segment per system call instead of up to 64 KiB: to measure what offload saves.
	// NewWAN only.
	NoOffload bool
}

func (o WANOptions) String() string {
	s := fmt.Sprintf("RTT %v, %v, queue %d B", o.RTT, o.Rate, o.Queue)
	if o.Loss > 0 {
		s += fmt.Sprintf(", loss %g (seed %d)", o.Loss, o.Seed)
	}
	return s
}

// withDefaults checks o and fills in what 0 stands for.
func (o WANOptions) withDefaults() (WANOptions, error) {
	if o.MTU == 0 {
		o.MTU = 1500
	}
	switch {
	case o.RTT < 0:
		return o, fmt.Errorf("RTT %v < 0", o.RTT)
	case o.Rate < 0:
		return o, fmt.Errorf("rate %d < 0", o.Rate)
	case o.Queue < 0:
		return o, fmt.Errorf("queue %d < 0", o.Queue)
	case !(o.Loss >= 0 && o.Loss < 1):
		return o, fmt.Errorf("loss %g not in [0, 1)", o.Loss)
	case o.MTU < 1280 || o.MTU > 65535:
		return o, fmt.Errorf("MTU %d not in [1280, 65535] (IPv6 needs 1280)", o.MTU)
	}
	if o.Rate > 0 && o.Queue == 0 {
		bdp := float64(o.Rate) / 8 * o.RTT.Seconds()
		o.Queue = max(64<<10, int(math.Min(bdp, math.MaxInt32)))
	}
	if o.Rate > 0 && o.Queue < o.MTU {
		return o, fmt.Errorf("queue %d B cannot hold one %d-byte packet", o.Queue, o.MTU)
	}
	return o, nil
}

func (o WANOptions) params() wanParams {
	return wanParams{Delay: int64(o.RTT / 2), Rate: int64(o.Rate), Queue: int64(o.Queue), Loss: o.Loss}
}

// WAN is two hosts joined by an emulated long-distance path: each host is a network namespace
// whose interface eth0 is a TUN device, and a process of the harness's (the emulator) moves
// every packet one host sends to the other, after a one-way delay, at a link rate, through a
// drop-tail queue, losing some at random if asked. Unlike a proxy that delays bytes, the
// kernels' TCP sees a real path: slow start, congestion and receive windows, queueing delay,
// losses and their retransmissions.
//
// The hosts are like a [Network]'s: Hosts[0] is 10.213.X.1 and fd53:5350:0:X::1, Hosts[1] is
// .2 and ::2, each a network namespace that an sshd (SSHDOptions.Netns), Host.Command,
// Host.Listen, Host.Ping or a firewall can use. The harness changes none of their TCP
// settings: a new namespace copies net.ipv4.tcp_wmem, tcp_rmem and the congestion control of
// the machine's own (root) namespace, and net.core.wmem_max and rmem_max are the machine's.
// With the kernel's default tcp_wmem maximum of 4 MiB, one stream carries at most about 3 MB
// per round trip (28 MB/s at 100 ms), the window limit that long fat networks are about.
//
// The hosts keep a 1500-byte MTU and send real 1448-byte segments, but their kernels hand the
// emulator up to 64 KiB of one stream at once (GSO, as to a NIC with TSO), which it passes on
// whole, as a NIC's GRO would deliver them; it cuts such a batch into its segments only when
// some are lost or do not fit the queue. Rate, queue and loss count the segments, so windows,
// slow start and loss behave as with 1500-byte packets. The one difference: a batch arrives
// when its last segment would, so its first segments are late by up to its serialization
// time. Linux sizes batches to about 1 ms of its pacing rate, at most 64 KiB: 0.5 ms at
// 1 Gbit/s, and up to a few ms at 100 Mbit/s and less.
//
// The emulator runs in a process of its own (this binary, re-executed), so the test's own
// goroutines and garbage collection do not delay packets, and its CPU time, which [WAN.Stats]
// reports, is not counted as the test's or as that of the processes a benchmark measures. It
// is a single-threaded loop at raised priority: about 15-25% of one core at 1 Gbit/s, most of
// it the receiving hosts' TCP input, which a TUN write runs in the writer's context.
type WAN struct {
	Name   string  // prefix of the namespace names
	Subnet int     // X in 10.213.X.0/24 and fd53:5350:0:X::/64
	Hosts  []*Host // the two ends; Hosts[0]'s packets to Hosts[1] are Stats().Dir[0]
	Seed   uint64  // the loss's seed, as given or as picked

	mu      sync.Mutex
	opts    WANOptions
	cmd     *exec.Cmd
	ctl     io.WriteCloser
	replies chan wanReplyOrErr
	stderr  *lockedBuffer
	exited  chan struct{}
}

type wanReplyOrErr struct {
	rep wanReply
	err error
}

// WANLinkStats counts what one direction of the path did. A GSO packet (up to 64 KiB the
// sending kernel hands over at once) counts once in Packets and as the segments it stands for
// everywhere else.
type WANLinkStats struct {
	Packets        int64 // read from the sending host
	Segments       int64 // wire packets those stand for
	Bytes          int64 // their wire bytes (IP packets)
	Lost           int64 // segments lost at random (Loss)
	Dropped        int64 // segments dropped because the queue was full
	Delivered      int64 // segments written to the receiving host
	DeliveredBytes int64
	MaxQueue       int64 // the largest backlog, in bytes, right after accepting a packet
	Split          int64 // GSO packets cut into segments because some were lost or dropped
	Oversize       int64 // reads that filled the whole buffer (dropped, never expected)
	WriteErrors    int64 // packets the receiving host's TUN refused (never expected)
	LastWriteError string
	// KernelDrops counts packets the sending host's kernel dropped at its TUN device because
	// the emulator did not read them in time (tx_dropped): not part of the emulated path,
	// never expected.
	KernelDrops int64
}

// WANStats is a snapshot of the emulator's counters since it started.
type WANStats struct {
	Dir       [2]WANLinkStats // Dir[0]: Hosts[0] to Hosts[1]; Dir[1]: back
	Wall      time.Duration   // since the emulator started
	User, Sys time.Duration   // the emulator process's CPU time (getrusage)
}

// CPU is the emulator's CPU time. Its system time includes the receiving host's TCP/IP input
// for the packets it writes (a TUN write runs the stack in the writer's context), which a real
// receiver would spend in its network interrupt, charged to no process.
func (s WANStats) CPU() time.Duration { return s.User + s.Sys }

// Sub returns the counts of s minus those of an earlier snapshot: what happened in between.
// MaxQueue and LastWriteError stay those of s.
func (s WANStats) Sub(earlier WANStats) WANStats {
	d := s
	d.Wall -= earlier.Wall
	d.User -= earlier.User
	d.Sys -= earlier.Sys
	for i := range d.Dir {
		a, b := &d.Dir[i], earlier.Dir[i]
		a.Packets -= b.Packets
		a.Segments -= b.Segments
		a.Bytes -= b.Bytes
		a.Lost -= b.Lost
		a.Dropped -= b.Dropped
		a.Delivered -= b.Delivered
		a.DeliveredBytes -= b.DeliveredBytes
		a.Split -= b.Split
		a.Oversize -= b.Oversize
		a.WriteErrors -= b.WriteErrors
		a.KernelDrops -= b.KernelDrops
	}
	return d
}

// NewWAN creates the two hosts and the path between them, and removes them when the test ends
// (killing whatever still runs in them):
//
//	w := harness.NewWAN(t, harness.WANOptions{RTT: 50 * time.Millisecond, Rate: harness.Gbps})
//	a, b := w.Hosts[0], w.Hosts[1]
//	sshd := harness.StartSSHD(t, harness.SSHDOptions{Netns: b.Name, ListenAddr: b.IPv4, Port: 22})
//	out, err := a.Command(ctx, append(sshd.SSHArgs(), "echo", "ok")...).Output()
//
// It needs root, iproute2 and /dev/net/tun ([NeedTUN]).
func NewWAN(t testing.TB, opts WANOptions) *WAN {
	t.Helper()
	Require(t, NeedRoot, NeedIP, NeedNetns, NeedTUN)
	opts, err := opts.withDefaults()
	if err != nil {
		t.Fatalf("harness: NewWAN: %v", err)
	}
	if opts.Seed == 0 {
		opts.Seed = rand.Uint64() | 1
	}
	x, err := allocSubnet()
	if err != nil {
		t.Fatal(err)
	}
	w := &WAN{Name: "sp-" + randomHex(3), Subnet: x, Seed: opts.Seed, opts: opts}
	names := []string{w.Name + "-h0", w.Name + "-h1"}
	makeNamespaces(t, w.Name, names, x)

	var tuns []*os.File
	defer func() {
		for _, f := range tuns {
			f.Close()
		}
	}()
	for i, name := range names {
		h := &Host{
			Name:  name,
			IPv4:  fmt.Sprintf("10.213.%d.%d", x, i+1),
			IPv6:  netip.MustParseAddr(fmt.Sprintf("fd53:5350:0:%x::%x", x, i+1)).String(),
			Link:  "eth0",
			Index: i,
		}
		f, err := openTUN(name, h.Link, !opts.NoOffload)
		if err != nil {
			t.Fatal(err)
		}
		tuns = append(tuns, f)
		// The device's ring (txqueuelen packets) is the host's NIC, not the emulated queue:
		// it must hold what a host sends while the loop is busy, such as the dupACKs for a
		// burst of out-of-order segments the loop writes at once after this busy machine
		// stalled it, which overflow TUN's default of 500.
		mustRun(t, "ip", "-n", name, "link", "set", h.Link, "mtu", fmt.Sprint(opts.MTU), "txqueuelen", "10000")
		mustRun(t, "ip", "-n", name, "addr", "add", h.IPv4+"/24", "dev", h.Link)
		mustRun(t, "ip", "-n", name, "addr", "add", h.IPv6+"/64", "dev", h.Link, "nodad")
		mustRun(t, "ip", "-n", name, "link", "set", h.Link, "up")
		w.Hosts = append(w.Hosts, h)
	}
	if err := w.start(tuns); err != nil {
		t.Fatalf("harness: NewWAN: %v", err)
	}
	t.Cleanup(func() {
		if err := w.stop(); err != nil {
			t.Errorf("harness: %v", err)
		}
	})
	// The loop holds the devices now; without it they must vanish, not linger half-alive.
	for _, f := range tuns {
		f.Close()
	}
	tuns = nil
	return w
}

func mustRun(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("harness: %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

// openTUN creates the TUN device name in network namespace netns. The device lives as long as
// a descriptor of it stays open. With offload, the host's kernel may hand over TCP segments
// in batches of up to 64 KiB with a partial checksum (GSO), described in the virtio_net_hdr
// before each packet; the emulator passes them on as they are, and the receiving kernel takes
// them as a NIC's GRO would deliver them.
func openTUN(netns, name string, offload bool) (*os.File, error) {
	var f *os.File
	err := inNetns(netns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("harness: open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err == nil {
			ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("harness: TUNSETIFF %s in %s: %w", name, netns, err)
		}
		if offload {
			if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
				unix.Close(fd)
				return fmt.Errorf("harness: TUNSETOFFLOAD %s in %s: %w", name, netns, err)
			}
		}
		f = os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
		return nil
	})
	return f, err
}

// start runs the emulator process with the two devices and waits for it to take them.
func (w *WAN) start(tuns []*os.File) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{wanLoopEnv + "=1"}
	cmd.ExtraFiles = tuns
	w.stderr = &lockedBuffer{}
	cmd.Stderr = w.stderr
	ctl, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the emulator: %w", err)
	}
	w.cmd, w.ctl = cmd, ctl
	w.replies = make(chan wanReplyOrErr)
	w.exited = make(chan struct{})
	go func() {
		dec := json.NewDecoder(bufio.NewReader(out))
		for {
			var r wanReplyOrErr
			r.err = dec.Decode(&r.rep)
			w.replies <- r
			if r.err != nil {
				close(w.exited)
				return
			}
		}
	}()
	_, err = w.call(wanRequest{Op: "start", Params: w.opts.params(), Seed: w.opts.Seed, MTU: w.opts.MTU})
	if err != nil {
		w.stop()
	}
	return err
}

// call sends one request and waits for its reply.
func (w *WAN) call(req wanRequest) (wanReply, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, _ := json.Marshal(req)
	if _, err := w.ctl.Write(append(b, '\n')); err != nil {
		return wanReply{}, w.failed(err)
	}
	select {
	case r := <-w.replies:
		if r.err != nil {
			return wanReply{}, w.failed(r.err)
		}
		if r.rep.Err != "" {
			return r.rep, fmt.Errorf("harness: WAN emulator: %s", r.rep.Err)
		}
		return r.rep, nil
	case <-w.exited:
		return wanReply{}, w.failed(io.EOF)
	case <-time.After(30 * time.Second):
		w.cmd.Process.Kill()
		return wanReply{}, fmt.Errorf("harness: WAN emulator did not answer %q within 30 s; killed it", req.Op)
	}
}

func (w *WAN) failed(err error) error {
	if errors.Is(err, io.EOF) {
		err = errors.New("exited")
	}
	return fmt.Errorf("harness: WAN emulator: %v; its stderr: %q", err, w.stderr.String())
}

// stop ends the emulator (closing its input is the signal) and reports how it ended.
func (w *WAN) stop() error {
	w.ctl.Close()
	done := make(chan error, 1)
	go func() {
		// Drain replies nobody waits for, so the reader reaches EOF.
		for {
			select {
			case <-w.replies:
				continue
			case <-w.exited:
			}
			break
		}
		done <- w.cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("WAN emulator of %s: %v; its stderr: %q", w.Name, err, w.stderr.String())
		}
		return nil
	case <-time.After(10 * time.Second):
		w.cmd.Process.Kill()
		<-done
		return fmt.Errorf("WAN emulator of %s did not exit within 10 s of its input's end; killed it", w.Name)
	}
}

// Options returns the path's current options, with defaults filled in (Queue, MTU, Seed).
func (w *WAN) Options() WANOptions {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.opts
}

// Set changes RTT, Rate, Queue and Loss from now on; packets already on their way keep their
// schedule (none overtakes another). Seed, MTU and NoOffload stay as NewWAN set them. A
// benchmark can run at several round trips with the same hosts and sshd.
func (w *WAN) Set(opts WANOptions) error {
	cur := w.Options()
	opts.Seed, opts.MTU, opts.NoOffload = cur.Seed, cur.MTU, cur.NoOffload
	opts, err := opts.withDefaults()
	if err != nil {
		return fmt.Errorf("harness: WAN.Set: %v", err)
	}
	if _, err := w.call(wanRequest{Op: "set", Params: opts.params()}); err != nil {
		return err
	}
	w.mu.Lock()
	w.opts = opts
	w.mu.Unlock()
	return nil
}

// Stats returns the emulator's counters and CPU time since it started.
func (w *WAN) Stats() (WANStats, error) {
	rep, err := w.call(wanRequest{Op: "stats"})
	if err != nil {
		return WANStats{}, err
	}
	if rep.Stats == nil {
		return WANStats{}, errors.New("harness: WAN emulator: stats reply without stats")
	}
	st := *rep.Stats
	for i, h := range w.Hosts {
		n, err := txDropped(h)
		if err != nil {
			return st, err
		}
		st.Dir[i].KernelDrops = n
	}
	return st, nil
}

// txDropped reads the tx_dropped counter of the host's interface.
func txDropped(h *Host) (int64, error) {
	out, err := exec.Command("ip", "-n", h.Name, "-s", "-j", "link", "show", "dev", h.Link).Output()
	if err != nil {
		return 0, fmt.Errorf("harness: ip -n %s -s link show: %w", h.Name, err)
	}
	var links []struct {
		Stats64 struct {
			TX struct {
				Dropped int64 `json:"dropped"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("harness: ip -n %s -s link show: unexpected output %q", h.Name, out)
	}
	return links[0].Stats64.TX.Dropped, nil
}

// lockedBuffer is a bytes.Buffer safe for exec's copying goroutine and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
