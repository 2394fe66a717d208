//go:build linux

package harness

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"
)

// Ping sends one ICMP echo request from inside the host to addr (a literal IPv4 or IPv6
// address) and returns the round trip to its reply, as ping(8) would show it. It needs root
// (a raw socket); no ping binary is involved.
func (h *Host) Ping(ctx context.Context, addr string) (time.Duration, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return 0, fmt.Errorf("harness: ping: %w", err)
	}
	network, echo, reply := "ip4:icmp", byte(8), byte(0)
	if !ip.Unmap().Is4() {
		network, echo, reply = "ip6:ipv6-icmp", 128, 129
	}
	var c net.PacketConn
	if err := inNetns(h.Name, func() error {
		var err error
		c, err = net.ListenPacket(network, "")
		return err
	}); err != nil {
		return 0, fmt.Errorf("harness: ping from %s: %w", h.Name, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()

	id, seq := uint16(rand.Uint32()), uint16(rand.Uint32())
	msg := make([]byte, 64) // ping's default: 8 bytes of header and 56 of data
	msg[0] = echo
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	if echo == 8 {
		// The kernel fills in ICMPv6 checksums itself; ICMPv4's is ours.
		binary.BigEndian.PutUint16(msg[2:], csumFold(csumAdd(0, msg)))
	}
	dst := &net.IPAddr{IP: ip.AsSlice()}
	sent := time.Now()
	if _, err := c.WriteTo(msg, dst); err != nil {
		return 0, fmt.Errorf("harness: ping %s from %s: %w", addr, h.Name, err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return 0, fmt.Errorf("harness: ping %s from %s: %w", addr, h.Name, err)
		}
		rtt := time.Since(sent)
		// The raw socket sees every ICMP message the host receives: take only our reply.
		if n >= 8 && buf[0] == reply && binary.BigEndian.Uint16(buf[4:]) == id &&
			binary.BigEndian.Uint16(buf[6:]) == seq && from.String() == dst.String() {
			return rtt, nil
		}
	}
}
