//go:build linux

package harness

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"
)

// gsoPacket builds a TCP packet of payload bytes as the kernel hands one over with GSO.
func gsoPacket(ipv6 bool, payload, mss int, flags byte) (vnetHdr, []byte) {
	tcpLen := 32 // with the timestamp option, as Linux sends
	var ip []byte
	if ipv6 {
		ip = make([]byte, 40)
		ip[0] = 6 << 4
		binary.BigEndian.PutUint16(ip[4:], uint16(tcpLen+payload))
		ip[6], ip[7] = 6, 64
		copy(ip[8:], net.ParseIP("fd53:5350:0:9::1"))
		copy(ip[24:], net.ParseIP("fd53:5350:0:9::2"))
	} else {
		ip = make([]byte, 20)
		ip[0] = 4<<4 | 5
		binary.BigEndian.PutUint16(ip[2:], uint16(20+tcpLen+payload))
		binary.BigEndian.PutUint16(ip[4:], 0x1234)
		ip[6], ip[8], ip[9] = 0x40, 64, 6
		copy(ip[12:], []byte{10, 213, 9, 1, 10, 213, 9, 2})
	}
	tcp := make([]byte, tcpLen)
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 22)
	binary.BigEndian.PutUint32(tcp[4:], 0xfffff000) // wraps within the packet
	binary.BigEndian.PutUint32(tcp[8:], 777)
	tcp[12] = byte(tcpLen/4) << 4
	tcp[13] = flags
	tcp[20], tcp[21] = 1, 1
	tcp[22], tcp[23] = 8, 10
	pkt := append(append(ip, tcp...), make([]byte, payload)...)
	for i := range payload {
		pkt[len(ip)+tcpLen+i] = byte(i*7 + i>>8)
	}
	typ := byte(gsoTCPv4)
	if ipv6 {
		typ = gsoTCPv6
	}
	return vnetHdr{flags: 1, gsoType: typ, gsoSize: uint16(mss), csumStart: uint16(len(ip)), csumOffset: 16}, pkt
}

func TestWANSegment(t *testing.T) {
	const fin, psh, ack, cwr = 0x01, 0x08, 0x10, 0x80
	for _, ipv6 := range []bool{false, true} {
		for _, payload := range []int{1448, 1449, 10 * 1448, 45*1448 + 3} {
			h, pkt := gsoPacket(ipv6, payload, 1448, cwr|ack|psh|fin)
			g, err := parseTCPGSO(h, pkt)
			if err != nil {
				t.Fatal(err)
			}
			want := (payload + 1447) / 1448
			if g.n != want || g.hdrLen != len(pkt)-payload {
				t.Fatalf("ipv6=%v payload %d: %d segments, headers %d; want %d, %d", ipv6, payload, g.n, g.hdrLen, want, len(pkt)-payload)
			}
			if w := g.wireLen(pkt); w != payload+want*g.hdrLen {
				t.Errorf("wireLen = %d, want %d", w, payload+want*g.hdrLen)
			}
			var joined []byte
			total := 0
			for i := range g.n {
				buf := make([]byte, vnetHdrLen+g.segLen(pkt, i))
				n := g.segment(buf, pkt, i)
				if n != len(buf) || !bytes.Equal(buf[:vnetHdrLen], make([]byte, vnetHdrLen)) {
					t.Fatalf("segment %d: %d bytes of %d, vnet header %x", i, n, len(buf), buf[:vnetHdrLen])
				}
				seg := buf[vnetHdrLen:]
				total += len(seg)
				tcp := seg[g.tcpOff:]
				var pseudo uint32
				if ipv6 {
					if l := int(binary.BigEndian.Uint16(seg[4:])); l != len(seg)-40 {
						t.Errorf("segment %d: IPv6 payload length %d, want %d", i, l, len(seg)-40)
					}
					pseudo = csumAdd(0, seg[8:40])
				} else {
					if l := int(binary.BigEndian.Uint16(seg[2:])); l != len(seg) {
						t.Errorf("segment %d: IPv4 total length %d, want %d", i, l, len(seg))
					}
					if id := binary.BigEndian.Uint16(seg[4:]); id != 0x1234+uint16(i) {
						t.Errorf("segment %d: IPv4 id %#x", i, id)
					}
					if c := csumFold(csumAdd(0, seg[:20])); c != 0 {
						t.Errorf("segment %d: IPv4 header checksum does not verify (%#x)", i, c)
					}
					pseudo = csumAdd(0, seg[12:20])
				}
				if c := csumFold(csumAdd(pseudo+6+uint32(len(tcp)), tcp)); c != 0 {
					t.Errorf("segment %d: TCP checksum does not verify (%#x)", i, c)
				}
				if seq := binary.BigEndian.Uint32(tcp[4:]); seq != 0xfffff000+uint32(i*1448) {
					t.Errorf("segment %d: seq %#x", i, seq)
				}
				wantFlags := byte(ack)
				if i == 0 {
					wantFlags |= cwr
				}
				if i == g.n-1 {
					wantFlags |= psh | fin
				}
				if tcp[13] != wantFlags {
					t.Errorf("segment %d of %d: flags %#x, want %#x", i, g.n, tcp[13], wantFlags)
				}
				joined = append(joined, tcp[32:]...)
			}
			if !bytes.Equal(joined, pkt[g.hdrLen:]) {
				t.Errorf("ipv6=%v payload %d: the segments' payloads do not add up to the packet's", ipv6, payload)
			}
			if total != g.wireLen(pkt) {
				t.Errorf("segments total %d bytes, wireLen says %d", total, g.wireLen(pkt))
			}
		}
	}
	// What the emulator cannot split it moves or drops whole.
	h, pkt := gsoPacket(false, 3000, 1448, ack)
	pkt[9] = 17
	if _, err := parseTCPGSO(h, pkt); !errors.Is(err, errNotSplittable) {
		t.Errorf("UDP in a TCP GSO packet: %v", err)
	}
	if g, err := parseTCPGSO(vnetHdr{}, pkt[:30]); err != nil || g.n != 1 {
		t.Errorf("a packet without GSO: %+v, %v", g, err)
	}
}
