// Package rendezvous makes and authenticates socketpipe's data connection, and frames the
// control channel that arranges it.
//
// The control channel (Conn) carries framed JSON messages between the two halves over the
// login session; the first frame in each direction follows a magic string, so the reader finds
// it past whatever a login shell printed first.
//
// The data connection is a TCP connection that either side may have dialled. Before any data
// flows, both ends prove knowledge of a 256-bit secret that only ever travelled over the login
// session (Prove): a hello with a fresh nonce each way, then an HMAC-SHA-256 over both nonces.
// A stranger who connects first learns nothing and is dropped; the Listener keeps waiting for
// the real peer, with a bounded number of proofs under way. Only the client commits a proven
// connection, so when several attempts succeed at once exactly one is used.
//
// Client and Server run the modes: back (the remote half connects back, as the original
// socketpipe did), reverse (the client connects to the remote half), ssh (no data connection:
// the data flows over the login session) and auto (back and reverse at once; with a native
// login, ssh after FallbackDelay).
//
// With -e, SessionKeys derives one key per direction from the secret and the proof's nonces,
// and SealWriter and OpenReader carry the stream in authenticated frames, ending with an
// authenticated end-of-stream frame so that a truncated stream is an error.
//
//	secret, _ := rendezvous.NewSecret()
//	l, _ := rendezvous.Listen(net.IPv4(192, 0, 2, 1), rendezvous.PortRange{}, secret, rendezvous.RoleClient)
//	defer l.Close()
//	// ... tell the peer l.Addr() and the secret over the login session ...
//	p := <-l.Proven()
//	p.Commit()
//	// p.Conn is the data connection.
package rendezvous
