// Package rendezvous makes and authenticates socketpipe's data connection. The two halves
// arrange it over the control channel (internal/wire): framed JSON messages over the login
// session.
//
// The data connection is a TCP connection that either side may have dialled. Before any data
// flows, both ends prove knowledge of a 256-bit secret that only ever travelled over the login
// session (Prove): a hello with a fresh nonce each way, then an HMAC-SHA-256 over both nonces
// and the role that dialled, so two listeners spliced together by a relay (both accepted) fail.
// A stranger who connects first learns nothing and is dropped; the Listener keeps waiting for
// the real peer, with a bounded number of proofs under way. Only the client commits a proven
// connection, so when several attempts succeed at once exactly one is used.
//
// The client dials only a port the remote half names, on a host it knew before (the SSH
// connection's, or ReverseHosts), a bounded number of times (MaxReverseDials).
//
// Client and Server run the modes: back (the remote half connects back, as the original
// socketpipe did), reverse (the client connects to the remote half), ssh (no data connection:
// the data flows over the login session) and auto (back and reverse at once; with a native
// login, ssh after FallbackDelay).
//
// With -e, the stream travels in authenticated frames (internal/seal) under keys derived from
// the secret and the proof's nonces (Proven).
//
//	secret, _ := rendezvous.NewSecret()
//	l, _ := rendezvous.Listen(net.IPv4(192, 0, 2, 1), rendezvous.PortRange{}, secret, rendezvous.RoleClient)
//	defer l.Close()
//	// ... tell the peer l.Addr() and the secret over the login session ...
//	p := <-l.Proven()
//	p.Commit()
//	// p.Conn is the data connection.
package rendezvous
