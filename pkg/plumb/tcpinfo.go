package plumb

import (
	"crypto/sha256"
	"errors"
	"os"
	"time"

	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// The client's side of the secret proof on the data connection (rendezvous/proof.go): a hello
// ("SPD2", role, nonce) and a MAC each way, then the client's commit byte. The kernel counts
// them with the data, so the counts below take them off.
const (
	proofHello    = 4 + 1 + rendezvous.NonceSize
	proofSent     = proofHello + sha256.Size + 1
	proofReceived = proofHello + sha256.Size
)

// TCPInfo is what the kernel says about the data connection (plain mode only).
type TCPInfo struct {
	RTT         time.Duration // smoothed round-trip time
	RTTVar      time.Duration // its variation
	Cwnd        uint32        // congestion window, in segments
	Retransmits uint32        // segments retransmitted over the connection's life
}

// errNoTCPCounts means the system keeps no byte counts of a TCP connection that socketpipe
// can read: in plain mode, where the commands hold the socket, the counts are unknown.
var errNoTCPCounts = errors.New("this system keeps no byte counts of a TCP connection")

// settle waits, up to d, until the peer has acknowledged everything written on the socket
// (our FIN included), so the final counts are exact; a reset connection has nothing to wait for.
func settle(f *os.File, d time.Duration) (tcpSample, error) {
	deadline := time.Now().Add(d)
	pause := 100 * time.Microsecond
	for {
		s, err := readTCP(f)
		if err != nil || s.settled() || time.Now().After(deadline) {
			return s, err
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}
