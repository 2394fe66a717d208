//go:build linux && !portable

package plumb

// The kernel's counters of a TCP connection on Linux: getsockopt(TCP_INFO) for struct tcp_info,
// ioctl(SIOCOUTQ) for the bytes not yet acknowledged, poll(POLLRDHUP) for the peer's FIN.

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tcpStateClose is TCP_CLOSE of include/net/tcp_states.h: where a connection ends up after
// both FINs or a reset.
const tcpStateClose = 7

// haveTCPCounts says whether readTCP can count a connection's bytes here.
const haveTCPCounts = true

// tcpSample is one reading of a socket's kernel counters.
type tcpSample struct {
	info *unix.TCPInfo
	outq int  // bytes written and not yet acknowledged (SIOCOUTQ), FIN included
	fin  bool // the peer ended its stream (or the connection was reset)
}

// readTCP reads the kernel's counters of a socket. It holds a reference on the descriptor
// while it does, so a concurrent close cannot make it read another file.
func readTCP(f syscall.Conn) (tcpSample, error) {
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

// rtt is the smoothed round-trip time.
func (s tcpSample) rtt() time.Duration { return time.Duration(s.info.Rtt) * time.Microsecond }

// settled reports whether there is nothing left to wait for: everything written is
// acknowledged, or the connection is closed.
func (s tcpSample) settled() bool { return s.outq == 0 || s.info.State == tcpStateClose }
