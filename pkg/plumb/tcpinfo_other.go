//go:build !darwin && (!linux || portable)

package plumb

// Systems whose TCP byte counters socketpipe does not read (OpenBSD, NetBSD, FreeBSD, and
// Linux built with the portable tag): no getsockopt stands in here, so in plain mode, where
// the commands hold the socket, the counts are unknown and --stats and -v say so.
//
// FreeBSD's getsockopt(TCP_INFO) (struct tcp_info, netinet/tcp.h) has no byte counts, only
// sequence numbers (tcpi_snd_una from 14.0, tcpi_snd_nxt, tcpi_rcv_nxt) without the initial
// ones, and they wrap every 4 GiB. Counts from them would need a reading at the hand-over, to
// fix the initial numbers, and readings often enough to count every wrap; a reading at the end
// alone could be off by any multiple of 4 GiB, so FreeBSD stays here rather than guess.

import (
	"syscall"
	"time"
)

// haveTCPCounts says whether readTCP can count a connection's bytes here.
const haveTCPCounts = false

// tcpSample stands for a reading this system cannot make.
type tcpSample struct{}

func readTCP(syscall.Conn) (tcpSample, error) { return tcpSample{}, errNoTCPCounts }

func (tcpSample) tcpInfo() *TCPInfo                { return nil }
func (tcpSample) sentData(dialed, shut bool) int64 { return 0 }
func (tcpSample) receivedData(shut bool) int64     { return 0 }
func (tcpSample) rtt() time.Duration               { return 0 }
func (tcpSample) settled() bool                    { return true }
