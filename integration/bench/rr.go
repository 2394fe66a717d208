//go:build linux

package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The request/response workload is what git, borg and hg do over ssh: many small round trips,
// each message written as two writes (a length, then the body; git's pkt-line header and data,
// hg's length line and payload), the writer then reading the answer. It is the pattern in
// which Nagle's algorithm on one end and a delayed acknowledgement on the other stall a round
// trip for up to 40 ms: the body waits for the acknowledgement of the length, which the reader
// holds back because it has nothing to send until the body has come.
//
// Every message is checked: the server checks each request's body against what round i must
// carry, the client each answer, and the client counts the rounds.

// rrPattern fills b with the bytes message i of the given kind carries.
func rrPattern(b []byte, i uint64, kind uint64) {
	r := rand.NewPCG(i, kind)
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, r.Uint64())
		b = b[8:]
	}
	if len(b) > 0 {
		var t [8]byte
		binary.LittleEndian.PutUint64(t[:], r.Uint64())
		copy(b, t[:])
	}
}

const (
	rrRequestKind  = 1
	rrResponseKind = 2
	rrHeader       = 4
	rrMaxMessage   = 1 << 20
)

// rrSizes are round i's request and response body lengths: requests of 16-200 bytes (a
// command and its arguments; the first 12 bytes say the round and the answer's length),
// answers of 64 bytes to 4 KiB (a few refs, a chunk index, a status).
func rrSizes(i uint64) (req, resp int) {
	return 16 + int(i*37%185), 64 + int(i*977%4033)
}

func rrWrite(w io.Writer, body []byte) error {
	var h [rrHeader]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(body)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

func rrRead(r io.Reader, buf []byte) ([]byte, error) {
	var h [rrHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > rrMaxMessage {
		return nil, fmt.Errorf("message of %d bytes", n)
	}
	b := buf[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// RRServer answers the requests read from r on w until r ends (`spbench rr-server`).
func RRServer(r io.Reader, w io.Writer) error {
	in := make([]byte, rrMaxMessage)
	out := make([]byte, rrMaxMessage)
	want := make([]byte, rrMaxMessage)
	for next := uint64(0); ; next++ {
		req, err := rrRead(r, in)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("rr-server: request %d: %w", next, err)
		}
		if len(req) < 12 {
			return fmt.Errorf("rr-server: request %d is %d bytes", next, len(req))
		}
		i := binary.BigEndian.Uint64(req)
		n := int(binary.BigEndian.Uint32(req[8:]))
		reqLen, respLen := rrSizes(i)
		rrPattern(want[:reqLen], i, rrRequestKind)
		if i != next || n != respLen || len(req) != reqLen || !bytes.Equal(req[12:], want[12:reqLen]) {
			return fmt.Errorf("rr-server: request %d is not what round %d sends", i, next)
		}
		rrPattern(out[:respLen], i, rrResponseKind)
		if err := rrWrite(w, out[:respLen]); err != nil {
			return fmt.Errorf("rr-server: answer %d: %w", i, err)
		}
	}
}

// RRClient makes rounds round trips over w and r and returns the time the rounds after the
// first skip took (the first ones include the transport's start-up). It checks every answer.
func RRClient(r io.Reader, w io.Writer, rounds, skip int) (time.Duration, error) {
	req := make([]byte, rrMaxMessage)
	want := make([]byte, rrMaxMessage)
	in := make([]byte, rrMaxMessage)
	var start time.Time
	for i := uint64(0); i < uint64(rounds); i++ {
		if i == uint64(skip) {
			start = time.Now()
		}
		reqLen, respLen := rrSizes(i)
		rrPattern(req[:reqLen], i, rrRequestKind)
		binary.BigEndian.PutUint64(req, i)
		binary.BigEndian.PutUint32(req[8:], uint32(respLen))
		if err := rrWrite(w, req[:reqLen]); err != nil {
			return 0, fmt.Errorf("rr-client: request %d: %w", i, err)
		}
		resp, err := rrRead(r, in)
		if err != nil {
			return 0, fmt.Errorf("rr-client: answer %d: %w", i, err)
		}
		rrPattern(want[:respLen], i, rrResponseKind)
		if !bytes.Equal(resp, want[:respLen]) {
			return 0, fmt.Errorf("rr-client: answer %d is wrong (%d bytes, want %d)", i, len(resp), respLen)
		}
	}
	return time.Since(start), nil
}

// RRReport is the line `spbench rr-client` prints, and parseRR reads it back.
func RRReport(rounds, timed int, d time.Duration) string {
	return fmt.Sprintf("rr %d rounds, %d timed, %d ns\n", rounds, timed, d.Nanoseconds())
}

func parseRR(out string, rounds, timed int) (time.Duration, error) {
	var n, t int
	var ns int64
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "rr %d rounds, %d timed, %d ns", &n, &t, &ns); err != nil {
		return 0, fmt.Errorf("bench: rr-client printed %q", out)
	}
	if n != rounds || t != timed {
		return 0, fmt.Errorf("bench: rr-client made %d rounds (%d timed), want %d (%d)", n, t, rounds, timed)
	}
	if ns <= 0 {
		return 0, errors.New("bench: rr-client timed nothing")
	}
	return time.Duration(ns), nil
}

// RRWorkload is the request/response workload's variants: the same client and server joined
// by raw TCP and by each transport a tool would run (`ssh`, `socketpipe --ssh` in its modes).
type RRWorkload struct {
	Rounds int // timed round trips per run
	Skip   int // round trips before the timing starts (the transport's start-up)
}

// RawNoDelay, RawNagle and the others are the keys of the request/response variants.
const (
	RRRawNoDelay = "rr-raw"
	RRRawNagle   = "rr-raw-nagle"
	RRRawRelay   = "rr-raw-socat"
	RRSSH        = "rr-ssh"
	RRSocketpipe = "rr-sp"
	RRSealed     = "rr-sp-e"
	RRSSHMode    = "rr-sp-m-ssh"
)

// Variants returns the request/response variants. Raw TCP with the kernel's defaults (Nagle's
// algorithm on both ends) stalls every round trip on delayed acknowledgements, so it makes
// only a few rounds: it shows what the socket options are about.
func (w RRWorkload) Variants() []Variant {
	nagleRounds := max(w.Rounds/100, 5)
	raw := func(key, name string, nodelay bool, rounds int) Variant {
		return Variant{Key: key, Name: name, Rounds: rounds, Run: func(ctx context.Context, e *Env, _ Data) (Result, error) {
			return e.runRawRR(ctx, nodelay, rounds+w.Skip, w.Skip)
		}}
	}
	over := func(key, name string, transport func(e *Env) []string) Variant {
		return Variant{Key: key, Name: name, Rounds: w.Rounds, Socketpipe: strings.HasPrefix(name, "socketpipe"), Run: func(ctx context.Context, e *Env, _ Data) (Result, error) {
			return e.runRR(ctx, transport(e), w.Rounds+w.Skip, w.Skip)
		}}
	}
	sshArgs := func(e *Env) []string { return e.Login[1:] } // -F config alias
	spSSH := func(flags ...string) func(e *Env) []string {
		return func(e *Env) []string {
			argv := append(append([]string{e.Socketpipe}, e.LoginFlags...), flags...)
			argv = append(append(argv, "--ssh"), sshArgs(e)...)
			return append(argv, "spbench", "rr-server")
		}
	}
	return []Variant{
		raw(RRRawNoDelay, "raw TCP, TCP_NODELAY on both ends", true, w.Rounds),
		raw(RRRawNagle, "raw TCP, kernel defaults (Nagle on both ends)", false, nagleRounds),
		{Key: RRRawRelay, Name: "raw TCP, TCP_NODELAY, the client through socat (as through ssh)", Rounds: w.Rounds,
			Run: func(ctx context.Context, e *Env, _ Data) (Result, error) {
				return e.runRelayedRR(ctx, w.Rounds+w.Skip, w.Skip)
			}},
		over(RRSSH, "ssh host rr-server", func(e *Env) []string {
			return append(append([]string{"ssh"}, sshArgs(e)...), "spbench", "rr-server")
		}),
		over(RRSocketpipe, "socketpipe --ssh host rr-server", spSSH()),
		over(RRSealed, "socketpipe -e --ssh host rr-server", spSSH("-e")),
		over(RRSSHMode, "socketpipe -m ssh --ssh host rr-server", spSSH("-m", "ssh")),
	}
}

// runRR runs `spbench rr-client` with transport as the command it talks through, as git runs
// its ssh command.
func (e *Env) runRR(ctx context.Context, transport []string, rounds, skip int) (Result, error) {
	args := []string{"spbench", "rr-client", "-n", fmt.Sprint(rounds), "-skip", fmt.Sprint(skip), "--"}
	cmd := e.command(ctx, append(args, transport...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("bench: rr-client through %s: %v: %s", strings.Join(transport, " "), err, errb.Bytes())
	}
	d, err := parseRR(out.String(), rounds, rounds-skip)
	return Result{Elapsed: d}, err
}

// runRawRR runs the client and the server on the two ends of one loopback TCP connection.
func (e *Env) runRawRR(ctx context.Context, nodelay bool, rounds, skip int) (Result, error) {
	a, b, err := tcpPair(nodelay)
	if err != nil {
		return Result{}, err
	}
	defer a.Close()
	defer b.Close()
	server := e.command(ctx, "spbench", "rr-server")
	remoteSide(server)
	server.Stdin, server.Stdout = b, b
	var out, errb bytes.Buffer
	server.Stderr = &errb
	client := e.command(ctx, "spbench", "rr-client", "-n", fmt.Sprint(rounds), "-skip", fmt.Sprint(skip), "-fd", "3")
	client.ExtraFiles = []*os.File{a}
	client.Stdout, client.Stderr = &out, &errb
	if err := server.Start(); err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	b.Close()
	if err := client.Start(); err != nil {
		server.Process.Kill()
		server.Wait()
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	a.Close()
	cerr := client.Wait()
	serr := server.Wait()
	if cerr != nil || serr != nil {
		return Result{}, fmt.Errorf("bench: raw request/response: client %v, server %v: %s", cerr, serr, errb.Bytes())
	}
	d, err := parseRR(out.String(), rounds, rounds-skip)
	return Result{Elapsed: d}, err
}

// runRelayedRR is raw TCP for a client that talks through a transport command, as git, borg
// and rsync talk through ssh: the client runs `socat - TCP:addr,nodelay`, which relays its
// standard input and output to a connection whose other end the server holds (TCP_NODELAY on
// both), the plain-TCP counterpart of socketpipe --ssh.
func (e *Env) runRelayedRR(ctx context.Context, rounds, skip int) (Result, error) {
	if _, err := exec.LookPath("socat"); err != nil {
		return Result{}, fmt.Errorf("bench: the relayed raw TCP variant needs socat (apt-get install socat): %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	defer ln.Close()
	args := []string{"spbench", "rr-client", "-n", fmt.Sprint(rounds), "-skip", fmt.Sprint(skip), "--",
		"socat", "-", "TCP:" + ln.Addr().String() + ",nodelay"}
	client := e.command(ctx, args...)
	var out, errb bytes.Buffer
	client.Stdout, client.Stderr = &out, &errb
	if err := client.Start(); err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		client.Process.Kill()
		client.Wait()
		return Result{}, fmt.Errorf("bench: socat did not connect: %v: %s", err, errb.Bytes())
	}
	tc := c.(*net.TCPConn)
	tc.SetNoDelay(true)
	f, err := tc.File()
	c.Close()
	if err != nil {
		client.Process.Kill()
		client.Wait()
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	server := e.command(ctx, "spbench", "rr-server")
	remoteSide(server)
	server.Stdin, server.Stdout, server.Stderr = f, f, &errb
	serr := server.Start()
	f.Close()
	if serr != nil {
		client.Process.Kill()
		client.Wait()
		return Result{}, fmt.Errorf("bench: %w", serr)
	}
	cerr := client.Wait()
	serr = server.Wait()
	if cerr != nil || serr != nil {
		return Result{}, fmt.Errorf("bench: request/response through socat: client %v, server %v: %s", cerr, serr, errb.Bytes())
	}
	d, err := parseRR(out.String(), rounds, rounds-skip)
	return Result{Elapsed: d}, err
}
