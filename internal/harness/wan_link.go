//go:build linux

package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// wanLoopEnv set to "1" makes any binary that imports the harness run the WAN emulator's
// loop instead of its main (see init below): NewWAN re-executes its own binary, which is
// thus always the same code, in tests and in spbench alike, with no build step.
const wanLoopEnv = "SOCKETPIPE_HARNESS_WAN_LOOP"

// The loop's TUN devices are inherited as these descriptors (exec.Cmd.ExtraFiles).
const (
	wanFD0 = 3 // Hosts[0]'s eth0
	wanFD1 = 4 // Hosts[1]'s eth0
)

func init() {
	if os.Getenv(wanLoopEnv) == "1" {
		os.Exit(wanLoopMain(os.Stdin, os.Stdout, os.Stderr))
	}
}

// wanParams is what a link does to each packet, in the units the loop computes with.
type wanParams struct {
	Delay int64   `json:"delay_ns"` // one way
	Rate  int64   `json:"rate"`     // bits per second; 0: no limit
	Queue int64   `json:"queue"`    // bytes; ignored without a rate
	Loss  float64 `json:"loss"`
}

// wanRequest is one line the test process writes to the loop's standard input.
type wanRequest struct {
	Op     string    `json:"op"` // "start" (first, once), "set" or "stats"
	Params wanParams `json:"params"`
	Seed   uint64    `json:"seed,omitempty"` // start only
	MTU    int       `json:"mtu,omitempty"`  // start only
}

// wanReply answers each request with one line on the loop's standard output.
type wanReply struct {
	Err   string    `json:"err,omitempty"`
	Stats *WANStats `json:"stats,omitempty"`
}

// wanLoopMain runs the emulator: two links, each a reader goroutine that timestamps, drops and
// schedules what one host sends, and a writer goroutine that hands it to the other host when
// its time comes, all four on one P and waiting in Go's poller. It ends when its standard
// input does: the test process closed it, or died.
func wanLoopMain(stdin io.Reader, stdout, stderr io.Writer) int {
	// One P: the loop is a single-threaded event loop, without idle Ps spinning and waking
	// each other for every packet.
	runtime.GOMAXPROCS(1)
	niceAll(-10)
	setMonoOrigin()
	start := mono()
	in := bufio.NewScanner(stdin)
	enc := json.NewEncoder(stdout)
	var links [2]*wanLink
	for in.Scan() {
		var req wanRequest
		var rep wanReply
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			rep.Err = err.Error()
		} else if req.Op != "start" && links[0] == nil {
			rep.Err = "not started"
		} else {
			switch req.Op {
			case "start":
				if links[0] != nil {
					rep.Err = "started twice"
					break
				}
				pools := newWANPools(req.MTU)
				links[0] = newWANLink(wanFD0, wanFD1, req.Params, req.Seed, 0, pools)
				links[1] = newWANLink(wanFD1, wanFD0, req.Params, req.Seed, 1, pools)
				for _, l := range links {
					go func() {
						if err := l.writeLoop(); err != nil {
							fmt.Fprintf(stderr, "wan loop: writer to fd %d: %v\n", l.outFD, err)
							os.Exit(1)
						}
					}()
					go func() {
						if err := l.readLoop(); err != nil {
							fmt.Fprintf(stderr, "wan loop: reading fd %d: %v\n", l.inFD, err)
							os.Exit(1)
						}
					}()
				}
			case "set":
				for _, l := range links {
					l.set(req.Params)
				}
			case "stats":
				st := WANStats{Wall: time.Duration(mono() - start)}
				for i, l := range links {
					st.Dir[i] = l.stats()
				}
				var ru unix.Rusage
				if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
					rep.Err = err.Error()
					break
				}
				st.User = time.Duration(ru.Utime.Nano())
				st.Sys = time.Duration(ru.Stime.Nano())
				rep.Stats = &st
			default:
				rep.Err = fmt.Sprintf("unknown op %q", req.Op)
			}
		}
		if err := enc.Encode(&rep); err != nil {
			fmt.Fprintf(stderr, "wan loop: %v\n", err)
			return 1
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(stderr, "wan loop: %v\n", err)
		return 1
	}
	return 0
}

// niceAll raises the priority of every thread of the process (Linux's setpriority applies to
// one thread; threads started later inherit it), so that a busy machine delays packets less.
// The loop uses little CPU, so it cannot starve anything.
func niceAll(prio int) {
	tids, _ := filepath.Glob("/proc/self/task/*")
	for _, d := range tids {
		if tid, err := strconv.Atoi(filepath.Base(d)); err == nil {
			unix.Setpriority(unix.PRIO_PROCESS, tid, prio)
		}
	}
}

var (
	monoBase   = time.Now()
	monoOrigin int64 // CLOCK_MONOTONIC at monoBase, set by wanLoopMain
)

// mono is the loop's clock, in nanoseconds since monoBase: CLOCK_MONOTONIC, as Go's monotonic
// time reads it; monoOrigin+mono() is the clock itself, for timerfd.
func mono() int64 { return int64(time.Since(monoBase)) }

func setMonoOrigin() {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	monoOrigin = ts.Nano() - mono()
}

// waker sleeps until a given mono() time. Go's timers wake up to a millisecond late (the
// runtime waits in epoll with millisecond timeouts), which would add as much to each direction
// and bunch packets; a timerfd is precise to the scheduler's latency, and waiting for it in
// Go's poller parks only the goroutine.
type waker struct {
	fd int
	rc syscall.RawConn
}

func newWaker() (*waker, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	rc, err := os.NewFile(uintptr(fd), "timerfd").SyscallConn()
	if err != nil {
		return nil, err
	}
	return &waker{fd: fd, rc: rc}, nil
}

func (w *waker) sleepUntil(t int64) error {
	its := unix.ItimerSpec{Value: unix.NsecToTimespec(monoOrigin + t)}
	_, _, e := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(w.fd), unix.TFD_TIMER_ABSTIME, uintptr(unsafe.Pointer(&its)), 0, 0, 0)
	if e != 0 {
		return fmt.Errorf("timerfd_settime: %w", e)
	}
	var expirations [8]byte
	var rerr error
	err := w.rc.Read(func(fd uintptr) bool {
		_, rerr = rawRead(int(fd), expirations[:])
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	return err
}

// rawRead and rawWrite are read(2) and write(2) without telling the Go runtime (no
// entersyscall), as are all the loop's system calls once it runs. None blocks (descriptors
// are nonblocking; a TUN write never waits), and telling the runtime costs more CPU than the
// packets: each entersyscall wakes sysmon when it sleeps, and a TUN write, which runs the
// receiving host's TCP input (up to 100 µs), makes sysmon hand the P to another thread and
// then poll every 20 µs.
func rawRead(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func rawWrite(fd int, b []byte) error {
	_, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return e
	}
	return nil
}

// wanPools recycles packet buffers: a big one per GSO packet (up to 64 KiB), a small one per
// ACK or single segment, so the loop makes almost no garbage.
type wanPools struct {
	big, small chan []byte
	bigSize    int
	smallSize  int
}

func newWANPools(mtu int) *wanPools {
	return &wanPools{
		big:       make(chan []byte, 1024),
		small:     make(chan []byte, 8192),
		bigSize:   vnetHdrLen + 65536, // an IP packet is at most 65535 bytes: a full read is too long
		smallSize: vnetHdrLen + max(mtu, 2048),
	}
}

func (p *wanPools) get(big bool) []byte {
	c, size := p.small, p.smallSize
	if big {
		c, size = p.big, p.bigSize
	}
	select {
	case b := <-c:
		return b[:size]
	default:
		return make([]byte, size)
	}
}

func (p *wanPools) put(b []byte) {
	c := p.small
	if cap(b) == p.bigSize {
		c = p.big
	}
	select {
	case c <- b:
	default:
	}
}

// wanPacket is a packet on its way: on the queue or on the wire.
type wanPacket struct {
	b    []byte // vnet header and IP packet, as written to the receiving TUN
	due  int64  // mono() time it arrives at the other end
	segs int64
	wire int64
}

// wanLink is one direction of the path.
type wanLink struct {
	inFD, outFD int
	in          *os.File // nonblocking, so reads wait in Go's poller
	pools       *wanPools

	mu        sync.Mutex
	p         wanParams
	rng       *rand.Rand
	busyUntil int64 // when the link finishes sending what it has accepted
	lastDue   int64
	q         []wanPacket // FIFO in due order: serialization and delay are both first come, first served
	qHead     int
	lost      []bool // scratch: which segments of the current packet are lost
	st        WANLinkStats
	wake      chan struct{}
}

func newWANLink(inFD, outFD int, p wanParams, seed uint64, dir uint64, pools *wanPools) *wanLink {
	unix.SetNonblock(inFD, true)
	return &wanLink{
		inFD:  inFD,
		outFD: outFD,
		in:    os.NewFile(uintptr(inFD), fmt.Sprintf("tun%d", dir)),
		pools: pools,
		p:     p,
		rng:   rand.New(rand.NewPCG(seed, dir)),
		wake:  make(chan struct{}, 1),
	}
}

func (l *wanLink) set(p wanParams) {
	l.mu.Lock()
	l.p = p
	l.mu.Unlock()
}

func (l *wanLink) stats() WANLinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

func (l *wanLink) readLoop() error {
	rc, err := l.in.SyscallConn()
	if err != nil {
		return err
	}
	buf := l.pools.get(true)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = rawRead(int(fd), buf)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
		now := mono()
		if n < vnetHdrLen+1 {
			continue
		}
		if n == len(buf) {
			l.mu.Lock()
			l.st.Oversize++
			l.mu.Unlock()
			continue
		}
		if l.arrive(buf[:n], now) {
			buf = l.pools.get(true)
		}
	}
}

// arrive takes a packet the sending host wrote at time now and drops it or queues it. It
// reports whether b itself was queued (else the caller may reuse it).
func (l *wanLink) arrive(b []byte, now int64) (kept bool) {
	h := parseVnetHdr(b)
	pkt := b[vnetHdrLen:]
	g, err := parseTCPGSO(h, pkt)
	splittable := err == nil
	if !splittable {
		g = tcpGSO{n: 1} // moved or dropped whole
	}
	wire := int64(g.wireLen(pkt))

	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.Packets++
	l.st.Segments += int64(g.n)
	l.st.Bytes += wire

	lost := 0
	if l.p.Loss > 0 {
		l.lost = l.lost[:0]
		for range g.n {
			x := l.rng.Float64() < l.p.Loss
			if x {
				lost++
			}
			l.lost = append(l.lost, x)
		}
	}
	if lost == 0 && l.fits(wire, now) {
		if len(b) <= l.pools.smallSize {
			s := l.pools.get(false)[:len(b)]
			copy(s, b)
			l.enqueue(s, int64(g.n), wire, now)
			return false
		}
		l.enqueue(b, int64(g.n), wire, now)
		return true
	}
	if g.n == 1 {
		if lost > 0 {
			l.st.Lost++
		} else {
			l.st.Dropped++
		}
		return false
	}
	// Some segments are lost or do not all fit: cut the packet as TSO would have, and
	// treat each segment as the router would.
	l.st.Split++
	for i := range g.n {
		if lost > 0 && l.lost[i] {
			l.st.Lost++
			continue
		}
		segWire := int64(g.segLen(pkt, i))
		if !l.fits(segWire, now) {
			l.st.Dropped++
			continue
		}
		s := l.pools.get(false)
		if len(s) < vnetHdrLen+int(segWire) {
			s = make([]byte, vnetHdrLen+int(segWire))
		}
		n := g.segment(s, pkt, i)
		l.enqueue(s[:n], 1, segWire, now)
	}
	return false
}

// backlog is the number of bytes accepted and not yet sent at time now.
func (l *wanLink) backlog(now int64) int64 {
	if l.p.Rate == 0 || l.busyUntil <= now {
		return 0
	}
	return int64(float64(l.busyUntil-now) * float64(l.p.Rate) / 8e9)
}

// fits reports whether wire more bytes fit behind the backlog (drop-tail).
func (l *wanLink) fits(wire, now int64) bool {
	return l.p.Rate == 0 || l.backlog(now)+wire <= l.p.Queue
}

// enqueue schedules a packet: it leaves the link once every byte before it and its own have
// been sent at the link rate (serialization, the token bucket of a one-packet burst), and
// arrives a one-way delay later.
func (l *wanLink) enqueue(b []byte, segs, wire, now int64) {
	done := now
	if l.p.Rate > 0 {
		done = max(now, l.busyUntil) + int64(float64(wire)*8e9/float64(l.p.Rate))
		l.busyUntil = done
		l.st.MaxQueue = max(l.st.MaxQueue, l.backlog(now))
	}
	// A shorter delay set while packets are on the wire must not let new ones overtake them.
	due := max(done+l.p.Delay, l.lastDue)
	l.lastDue = due
	if l.qHead == len(l.q) {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	if l.qHead > 0 && l.qHead >= len(l.q)/2 {
		// Slide the live part down, so a queue that never empties does not grow forever.
		n := copy(l.q, l.q[l.qHead:])
		clear(l.q[n:])
		l.q, l.qHead = l.q[:n], 0
	}
	l.q = append(l.q, wanPacket{b: b, due: due, segs: segs, wire: wire})
}

// writeLoop hands packets to the receiving host at their due times.
func (l *wanLink) writeLoop() error {
	wk, err := newWaker()
	if err != nil {
		return err
	}
	var batch []wanPacket
	for {
		l.mu.Lock()
		if l.qHead == len(l.q) {
			l.mu.Unlock()
			<-l.wake
			continue
		}
		now := mono()
		batch = batch[:0]
		for l.qHead < len(l.q) && l.q[l.qHead].due <= now {
			batch = append(batch, l.q[l.qHead])
			l.q[l.qHead] = wanPacket{}
			l.qHead++
		}
		next := int64(0)
		if l.qHead < len(l.q) {
			next = l.q[l.qHead].due
		}
		l.mu.Unlock()
		if len(batch) == 0 {
			if err := wk.sleepUntil(next); err != nil {
				return err
			}
			continue
		}
		var segs, bytes, errs int64
		var lastErr error
		for _, p := range batch {
			if err := rawWrite(l.outFD, p.b); err != nil {
				errs++
				lastErr = err
			} else {
				segs += p.segs
				bytes += p.wire
			}
			l.pools.put(p.b)
		}
		l.mu.Lock()
		l.st.Delivered += segs
		l.st.DeliveredBytes += bytes
		if errs > 0 {
			l.st.WriteErrors += errs
			l.st.LastWriteError = lastErr.Error()
		}
		l.mu.Unlock()
	}
}
