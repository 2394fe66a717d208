//go:build darwin

package plumb

// The kernel's counters of a TCP connection on macOS: getsockopt(TCP_CONNECTION_INFO) for
// struct tcp_connection_info (netinet/tcp.h), which counts data bytes only (no SYN or FIN).

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tcpStateClosed is TCPS_CLOSED of netinet/tcp_fsm.h: after both FINs or a reset.
const tcpStateClosed = 0

// haveTCPCounts says whether readTCP can count a connection's bytes here.
const haveTCPCounts = true

// tcpSample is one reading of a socket's kernel counters.
type tcpSample struct {
	info *unix.TCPConnectionInfo
}

// readTCP reads the kernel's counters of a socket. It holds a reference on the descriptor
// while it does, so a concurrent close cannot make it read another file.
func readTCP(f syscall.Conn) (tcpSample, error) {
	var s tcpSample
	err := onSocket(f, func(fd int) (err error) {
		s.info, err = unix.GetsockoptTCPConnectionInfo(fd, unix.IPPROTO_TCP, unix.TCP_CONNECTION_INFO)
		return err
	})
	return s, err
}

// tcpInfo is the summary a Report carries; macOS gives times in milliseconds and the
// congestion window in bytes.
func (s tcpSample) tcpInfo() *TCPInfo {
	i := s.info
	cwnd := i.Snd_cwnd
	if i.Maxseg > 0 {
		cwnd /= i.Maxseg
	}
	return &TCPInfo{
		RTT:         time.Duration(i.Srtt) * time.Millisecond,
		RTTVar:      time.Duration(i.Rttvar) * time.Millisecond,
		Cwnd:        cwnd,
		Retransmits: uint32(i.Txretransmitpackets),
	}
}

// sentData is how many data bytes went out, each counted once: exactly the data and the proof
// once the send buffer is empty (the peer acknowledged it all).
func (s tcpSample) sentData(dialed, shut bool) int64 {
	return max(int64(s.info.Txbytes)-int64(s.info.Txretransmitbytes)-proofSent, 0)
}

// receivedData is how many data bytes arrived.
func (s tcpSample) receivedData(shut bool) int64 {
	return max(int64(s.info.Rxbytes)-proofReceived, 0)
}

// rtt is the smoothed round-trip time.
func (s tcpSample) rtt() time.Duration { return time.Duration(s.info.Srtt) * time.Millisecond }

// settled reports whether there is nothing left to wait for: the send buffer is empty (all of
// it acknowledged), or the connection is closed.
func (s tcpSample) settled() bool { return s.info.Snd_sbbytes == 0 || s.info.State == tcpStateClosed }

// onSocket runs fn on f's descriptor, holding a reference on it meanwhile, so a concurrent
// close cannot make fn read another file.
func onSocket(f syscall.Conn, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
