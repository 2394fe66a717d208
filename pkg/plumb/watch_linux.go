//go:build linux && !portable

package plumb

// The data connection's watch on Linux: getsockopt(TCP_INFO) for the state of the connection,
// what is in flight, the probes out, and when the peer was last heard.

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// watchable reports whether rc is a TCP socket the kernel reports on, and its peer's address.
func watchable(rc syscall.RawConn) (peer string, ok bool) {
	var sa unix.Sockaddr
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		if _, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			sa, err = unix.Getpeername(int(fd))
		}
	}); cerr != nil || err != nil {
		return "", false
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String(), true
	case *unix.SockaddrInet6:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String(), true
	}
	return "", false
}

// sampleConn reads the kernel's state of the connection.
func sampleConn(rc syscall.RawConn) (connSample, error) {
	var info *unix.TCPInfo
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); cerr != nil {
		return connSample{}, cerr
	}
	if err != nil {
		return connSample{}, err
	}
	return connSample{
		closed:    info.State == tcpStateClose,
		unacked:   int(info.Unacked),
		probes:    int(info.Probes),
		unsent:    info.Notsent_bytes > 0,
		sinceAck:  time.Duration(info.Last_ack_recv) * time.Millisecond,
		sinceData: time.Duration(info.Last_data_recv) * time.Millisecond,
	}, nil
}
