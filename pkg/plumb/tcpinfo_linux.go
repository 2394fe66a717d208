package plumb

import (
	"crypto/sha256"
	"os"
	"time"

	"github.com/socketpipe/socketpipe/pkg/rendezvous"
	"golang.org/x/sys/unix"
)

// The client's side of the secret proof on the data connection (rendezvous/proof.go): a hello
// ("SPD2", role, nonce) and a MAC each way, then the client's commit byte. The kernel counts
// them with the data, so the counts below take them off.
const (
	proofHello    = 4 + 1 + rendezvous.NonceSize
	proofSent     = proofHello + sha256.Size + 1
	proofReceived = proofHello + sha256.Size
)

// tcpStateClose is TCP_CLOSE of include/net/tcp_states.h: where a connection ends up after
// both FINs or a reset.
const tcpStateClose = 7

// TCPInfo is what the kernel says about the data connection (plain mode only).
type TCPInfo struct {
	RTT         time.Duration // smoothed round-trip time
	RTTVar      time.Duration // its variation
	Cwnd        uint32        // congestion window, in segments
	Retransmits uint32        // segments retransmitted over the connection's life
}

// tcpSample is one reading of a socket's kernel counters.
type tcpSample struct {
	info *unix.TCPInfo
	outq int  // bytes written and not yet acknowledged (SIOCOUTQ), FIN included
	fin  bool // the peer ended its stream (or the connection was reset)
}

// readTCP reads the kernel's counters of a socket. It holds a reference on the descriptor
// while it does, so a concurrent close cannot make it read another file.
func readTCP(f *os.File) (tcpSample, error) {
	var s tcpSample
	rc, err := f.SyscallConn()
	if err != nil {
		return s, err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		s.info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if serr != nil {
			return
		}
		s.outq, serr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		if serr != nil {
			return
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		if n, err := unix.Poll(fds, 0); err == nil && n > 0 {
			s.fin = fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP) != 0
		}
	})
	if err == nil {
		err = serr
	}
	return s, err
}

// tcpInfo is the summary a Report carries.
func (s tcpSample) tcpInfo() *TCPInfo {
	return &TCPInfo{
		RTT:         time.Duration(s.info.Rtt) * time.Microsecond,
		RTTVar:      time.Duration(s.info.Rttvar) * time.Microsecond,
		Cwnd:        s.info.Snd_cwnd,
		Retransmits: s.info.Total_retrans,
	}
}

// sentData is how many data bytes the peer has acknowledged. tcpi_bytes_acked counts the whole
// sequence space: the proof, the FIN once acknowledged, and (on Linux) the SYN of the side that
// dialled. Once everything written is acknowledged, the bytes sent less the bytes sent again
// are exactly the data and the proof, whoever dialled.
func (s tcpSample) sentData(dialed, shut bool) int64 {
	i := s.info
	var n int64
	if s.outq == 0 && i.Bytes_sent > 0 {
		n = int64(i.Bytes_sent) - int64(i.Bytes_retrans)
	} else {
		n = int64(i.Bytes_acked)
		if dialed {
			n-- // the SYN
		}
		if shut && s.outq == 0 {
			n-- // the FIN (Linux before 4.19 has no tcpi_bytes_sent)
		}
	}
	return max(n-proofSent, 0)
}

// receivedData is how many data bytes arrived. tcpi_bytes_received counts the peer's FIN too.
// A closed state with our own stream unacknowledged is a reset, which brings no FIN.
func (s tcpSample) receivedData(shut bool) int64 {
	n := int64(s.info.Bytes_received)
	reset := s.info.State == tcpStateClose && !(shut && s.outq == 0)
	if s.fin && !reset && n > 0 {
		n--
	}
	return max(n-proofReceived, 0)
}

// settle waits, up to d, until the peer has acknowledged everything written on the socket
// (our FIN included), so the final counts are exact; a reset connection has nothing to wait for.
func settle(f *os.File, d time.Duration) (tcpSample, error) {
	deadline := time.Now().Add(d)
	pause := 100 * time.Microsecond
	for {
		s, err := readTCP(f)
		if err != nil || s.outq == 0 || s.info.State == tcpStateClose || time.Now().After(deadline) {
			return s, err
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}
