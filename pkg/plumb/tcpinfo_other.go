//go:build !darwin && (!linux || portable)

package plumb

// Systems whose TCP byte counters socketpipe does not read (OpenBSD, NetBSD, FreeBSD for now,
// and Linux built with the portable tag): no getsockopt stands in here, so in plain mode,
// where the commands hold the socket, the counts are unknown and --stats and -v say so.

import (
	"os"
	"time"
)

// haveTCPCounts says whether readTCP can count a connection's bytes here.
const haveTCPCounts = false

// tcpSample stands for a reading this system cannot make.
type tcpSample struct{}

func readTCP(*os.File) (tcpSample, error) { return tcpSample{}, errNoTCPCounts }

func (tcpSample) tcpInfo() *TCPInfo                { return nil }
func (tcpSample) sentData(dialed, shut bool) int64 { return 0 }
func (tcpSample) receivedData(shut bool) int64     { return 0 }
func (tcpSample) rtt() time.Duration               { return 0 }
func (tcpSample) settled() bool                    { return true }
