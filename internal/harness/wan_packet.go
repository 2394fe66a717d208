//go:build linux

package harness

import (
	"encoding/binary"
	"errors"
)

// The emulator's TUN devices carry a virtio_net_hdr before each packet (IFF_VNET_HDR), so the
// kernel can hand over a TCP send of up to 64 KiB as one GSO packet and take it back as one:
// the hosts still see a 1500-byte MTU and real 1448-byte segments, but the emulator moves tens
// of segments per system call. It splits a GSO packet only when some of its segments are to be
// lost or do not fit the queue, which is rare on the paths the tests emulate.

// vnetHdrLen is sizeof(struct virtio_net_hdr), TUN's default vnet header size.
const vnetHdrLen = 10

// virtio_net_hdr gso_type values (include/uapi/linux/virtio_net.h).
const (
	gsoNone  = 0
	gsoTCPv4 = 1
	gsoTCPv6 = 4
	gsoECN   = 0x80
)

// vnetHdr is struct virtio_net_hdr. TUN uses the host's byte order unless IFF_VNET_LE is set.
type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func parseVnetHdr(b []byte) vnetHdr {
	return vnetHdr{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     binary.NativeEndian.Uint16(b[2:]),
		gsoSize:    binary.NativeEndian.Uint16(b[4:]),
		csumStart:  binary.NativeEndian.Uint16(b[6:]),
		csumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

var errNotSplittable = errors.New("not a TCP GSO packet the emulator can split")

// tcpGSO describes a GSO TCP packet: headers of hdrLen bytes (IP header at 0, TCP header at
// tcpOff) followed by a payload cut into segments of mss bytes, the last one shorter.
type tcpGSO struct {
	ipv6   bool
	tcpOff int
	hdrLen int
	mss    int
	n      int // number of segments
}

// parseTCPGSO reads the headers of pkt (an IP packet, no vnet header) sent with h. A packet
// that is not GSO is one segment: n is 1 and the payload is not looked at.
func parseTCPGSO(h vnetHdr, pkt []byte) (tcpGSO, error) {
	if h.gsoType&^gsoECN == gsoNone {
		return tcpGSO{n: 1}, nil
	}
	var g tcpGSO
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4:
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < 20 || len(pkt) < ihl || pkt[9] != 6 || int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) {
			return g, errNotSplittable
		}
		g.tcpOff = ihl
	case len(pkt) >= 40 && pkt[0]>>4 == 6:
		// Linux's TCP never adds extension headers to what it sends, so TCP follows at once.
		if pkt[6] != 6 || int(binary.BigEndian.Uint16(pkt[4:]))+40 != len(pkt) {
			return g, errNotSplittable
		}
		g.ipv6 = true
		g.tcpOff = 40
	default:
		return g, errNotSplittable
	}
	if len(pkt) < g.tcpOff+20 {
		return g, errNotSplittable
	}
	g.hdrLen = g.tcpOff + int(pkt[g.tcpOff+12]>>4)*4
	g.mss = int(h.gsoSize)
	if g.hdrLen < g.tcpOff+20 || len(pkt) < g.hdrLen || g.mss == 0 {
		return g, errNotSplittable
	}
	payload := len(pkt) - g.hdrLen
	g.n = max(1, (payload+g.mss-1)/g.mss)
	return g, nil
}

// wireLen is the number of bytes the packet's segments occupy on the emulated link: every
// segment carries its own IP and TCP headers.
func (g tcpGSO) wireLen(pkt []byte) int {
	if g.n <= 1 {
		return len(pkt)
	}
	return len(pkt) + (g.n-1)*g.hdrLen
}

// segLen is the wire length of segment i.
func (g tcpGSO) segLen(pkt []byte, i int) int {
	if g.n <= 1 {
		return len(pkt)
	}
	payload := len(pkt) - g.hdrLen
	return g.hdrLen + min(g.mss, payload-i*g.mss)
}

// segment writes segment i of the GSO packet pkt into dst, which must hold vnetHdrLen +
// segLen(pkt, i) bytes, as the kernel's TSO would have cut it: its own lengths, IPv4 id and
// sequence number, FIN and PSH only on the last segment, CWR only on the first, and complete
// checksums (the vnet header is zero, so the receiving kernel verifies them). It returns the
// bytes written.
func (g tcpGSO) segment(dst, pkt []byte, i int) int {
	payload := pkt[g.hdrLen:]
	lo := i * g.mss
	hi := min(lo+g.mss, len(payload))
	clear(dst[:vnetHdrLen])
	seg := dst[vnetHdrLen:]
	copy(seg, pkt[:g.hdrLen])
	n := g.hdrLen + copy(seg[g.hdrLen:], payload[lo:hi])
	seg = seg[:n]

	tcp := seg[g.tcpOff:]
	binary.BigEndian.PutUint32(tcp[4:], binary.BigEndian.Uint32(tcp[4:])+uint32(lo))
	const fin, psh, cwr = 0x01, 0x08, 0x80
	if i != g.n-1 {
		tcp[13] &^= fin | psh
	}
	if i != 0 {
		tcp[13] &^= cwr
	}
	tcp[16], tcp[17] = 0, 0

	var sum uint32
	if g.ipv6 {
		binary.BigEndian.PutUint16(seg[4:], uint16(n-40))
		sum = csumAdd(0, seg[8:40]) // source and destination addresses
	} else {
		binary.BigEndian.PutUint16(seg[2:], uint16(n))
		binary.BigEndian.PutUint16(seg[4:], binary.BigEndian.Uint16(seg[4:])+uint16(i))
		seg[10], seg[11] = 0, 0
		binary.BigEndian.PutUint16(seg[10:], csumFold(csumAdd(0, seg[:g.tcpOff])))
		sum = csumAdd(0, seg[12:20])
	}
	sum += 6 + uint32(len(tcp)) // protocol and TCP length of the pseudo-header
	binary.BigEndian.PutUint16(tcp[16:], csumFold(csumAdd(sum, tcp)))
	return vnetHdrLen + n
}

// csumAdd adds b to the ones'-complement running sum of 16-bit big-endian words (RFC 1071).
func csumAdd(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// csumFold folds the running sum to 16 bits and complements it.
func csumFold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
