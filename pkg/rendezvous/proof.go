package rendezvous

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// SecretSize is the size of the data connection's secret: 256 bits from crypto/rand.
const SecretSize = 32

// NonceSize is the size of each side's fresh nonce in the proof.
const NonceSize = 16

// ProofTimeout bounds how long a peer on the data connection may take to prove the secret.
const ProofTimeout = 5 * time.Second

// Roles in the proof. The client is the side that ran the login; the server is the remote half.
const (
	RoleClient byte = 'C'
	RoleServer byte = 'S'
)

// proofMagic starts each side's hello; protocol 1's "SPD1" proof did not bind the direction.
const proofMagic = "SPD2"
const helloSize = len(proofMagic) + 1 + NonceSize

// ErrProof is returned when a peer on the data connection does not prove the secret.
var ErrProof = errors.New("peer failed to prove the secret")

// NewSecret returns a fresh secret for one run.
func NewSecret() ([]byte, error) {
	s := make([]byte, SecretSize)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("generating the secret: %w", err)
	}
	return s, nil
}

// Proven is a data connection whose peer proved the secret. The nonces bind keys derived
// for -e to this connection.
type Proven struct {
	Conn        net.Conn
	ClientNonce []byte
	ServerNonce []byte
}

// proofMAC is what the sender of a MAC proves: that it knows the secret, its role, which role
// dialled the connection as the sender sees it, and both nonces. A third party that connects
// to both listeners and relays the hellos and MACs between them (a splice) makes each half
// see itself accept, so each half's MAC names the other as the dialler and neither verifies.
func proofMAC(secret []byte, sender, dialler byte, nc, ns []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("socketpipe proof v2"))
	m.Write([]byte{sender, dialler})
	m.Write(nc)
	m.Write(ns)
	return m.Sum(nil)
}

// Prove runs the proof on conn in the given role, within ProofTimeout; dialled says whether
// this side dialled conn (true) or accepted it (false). Both sides send a hello with a fresh
// nonce, then an HMAC-SHA-256 keyed with the secret over both nonces, the sender's role and
// the role that dialled; the secret never crosses the connection. Each side checks the peer's
// MAC against its own view of the direction, so a connection whose two ends both accepted
// (two listeners spliced together by a relay) fails on both. It reads exactly the proof's
// bytes and nothing more, so the connection can be handed over afterwards. The client must
// then Commit (or close) it; the server must AwaitCommit before using it.
func Prove(conn net.Conn, secret []byte, role byte, dialled bool) (*Proven, error) {
	if len(secret) < 16 {
		return nil, errors.New("secret too short")
	}
	conn.SetDeadline(time.Now().Add(ProofTimeout))
	defer conn.SetDeadline(time.Time{})

	mine := make([]byte, NonceSize)
	if _, err := rand.Read(mine); err != nil {
		return nil, err
	}
	hello := make([]byte, 0, helloSize)
	hello = append(append(append(hello, proofMagic...), role), mine...)
	if _, err := conn.Write(hello); err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	peer := make([]byte, helloSize)
	if _, err := io.ReadFull(conn, peer); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProof, err)
	}
	peerRole := RoleServer
	if role == RoleServer {
		peerRole = RoleClient
	}
	if string(peer[:len(proofMagic)]) != proofMagic || peer[len(proofMagic)] != peerRole {
		return nil, fmt.Errorf("%w: not a socketpipe peer", ErrProof)
	}
	theirs := peer[len(proofMagic)+1:]
	dialler := peerRole
	if dialled {
		dialler = role
	}
	p := &Proven{Conn: conn}
	if role == RoleClient {
		p.ClientNonce, p.ServerNonce = mine, theirs
	} else {
		p.ClientNonce, p.ServerNonce = theirs, mine
	}
	if _, err := conn.Write(proofMAC(secret, role, dialler, p.ClientNonce, p.ServerNonce)); err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(conn, got); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProof, err)
	}
	if !hmac.Equal(got, proofMAC(secret, peerRole, dialler, p.ClientNonce, p.ServerNonce)) {
		return nil, fmt.Errorf("%w: wrong proof", ErrProof)
	}
	return p, nil
}

// Commit tells the server that the client uses this connection. Only the client commits, so
// when several connections are proven at once exactly one is used.
func (p *Proven) Commit() error {
	p.Conn.SetWriteDeadline(time.Now().Add(ProofTimeout))
	defer p.Conn.SetWriteDeadline(time.Time{})
	_, err := p.Conn.Write([]byte{1})
	return err
}

// AwaitCommit waits, up to the deadline (zero: forever), for the client's commit.
func (p *Proven) AwaitCommit(deadline time.Time) error {
	p.Conn.SetReadDeadline(deadline)
	defer p.Conn.SetReadDeadline(time.Time{})
	var b [1]byte
	if _, err := io.ReadFull(p.Conn, b[:]); err != nil {
		return fmt.Errorf("waiting for the client's commit: %w", err)
	}
	if b[0] != 1 {
		return fmt.Errorf("%w: bad commit byte", ErrProof)
	}
	return nil
}
