package seal

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/socketpipe/socketpipe/internal/platform"
)

var ciphers = []string{CipherAES256GCM, CipherChaCha20Poly1305}

// testKeys returns the client's and the server's keys for one session.
func testKeys(t testing.TB, cipherName string) (clientSeal, clientOpen, serverSeal, serverOpen cipher.AEAD) {
	t.Helper()
	secret := bytes.Repeat([]byte{0x5e}, 32)
	nc := bytes.Repeat([]byte{'c'}, 16)
	ns := bytes.Repeat([]byte{'s'}, 16)
	clientSeal, clientOpen, err := SessionKeys(secret, nc, ns, cipherName, true)
	if err != nil {
		t.Fatal(err)
	}
	serverSeal, serverOpen, err = SessionKeys(secret, nc, ns, cipherName, false)
	if err != nil {
		t.Fatal(err)
	}
	return clientSeal, clientOpen, serverSeal, serverOpen
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sealStream seals data with frames of at most size bytes, end-of-stream included.
func sealStream(t testing.TB, aead cipher.AEAD, data []byte, size int) []byte {
	t.Helper()
	var out bytes.Buffer
	s := newSealWriterSize(&out, aead, size)
	if _, err := s.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// splitFrames cuts a stream into its frames, trusting the headers.
func splitFrames(t testing.TB, stream []byte) [][]byte {
	t.Helper()
	var frames [][]byte
	for len(stream) > 0 {
		n := frameHeaderLen + int(binary.BigEndian.Uint32(stream)&frameLengthMask) + 16
		if n > len(stream) {
			t.Fatalf("stream cut inside a frame")
		}
		frames = append(frames, stream[:n:n])
		stream = stream[n:]
	}
	return frames
}

func openStream(aead cipher.AEAD, stream []byte) ([]byte, error) {
	var out bytes.Buffer
	_, err := NewOpenReader(bytes.NewReader(stream), aead).WriteTo(&out)
	return out.Bytes(), err
}

func TestChooseCipher(t *testing.T) {
	auto := CipherChaCha20Poly1305
	if platform.HasAESGCM() {
		auto = CipherAES256GCM
	}
	for _, tc := range []struct{ in, want, err string }{
		{CipherAuto, auto, ""},
		{"aes-256-gcm", CipherAES256GCM, ""},
		{"chacha20-poly1305", CipherChaCha20Poly1305, ""},
		{"aes128-ctr", "", `unknown cipher "aes128-ctr" (valid: aes-256-gcm, chacha20-poly1305)`},
		{"AES-256-GCM", "", "unknown cipher"},
	} {
		got, err := ChooseCipher(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ChooseCipher(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ChooseCipher(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestSessionKeys(t *testing.T) {
	for _, c := range ciphers {
		t.Run(c, func(t *testing.T) {
			clientSeal, clientOpen, serverSeal, serverOpen := testKeys(t, c)
			nonce := make([]byte, 12)
			msg := []byte("the same message under the same nonce")
			seal := func(a cipher.AEAD) []byte { return a.Seal(nil, nonce, msg, nil) }

			if _, err := serverOpen.Open(nil, nonce, seal(clientSeal), nil); err != nil {
				t.Errorf("server cannot open what the client sealed: %v", err)
			}
			if _, err := clientOpen.Open(nil, nonce, seal(serverSeal), nil); err != nil {
				t.Errorf("client cannot open what the server sealed: %v", err)
			}
			if bytes.Equal(seal(clientSeal), seal(serverSeal)) {
				t.Error("c2s and s2c keys are the same")
			}
			if _, err := clientOpen.Open(nil, nonce, seal(clientSeal), nil); err == nil {
				t.Error("client opens its own frames: a reflected stream would pass")
			}

			// Another session (other nonces, or the other cipher) has other keys.
			secret := bytes.Repeat([]byte{0x5e}, 32)
			other, _, err := SessionKeys(secret, bytes.Repeat([]byte{'C'}, 16), bytes.Repeat([]byte{'s'}, 16), c, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := serverOpen.Open(nil, nonce, seal(other), nil); err == nil {
				t.Error("keys do not depend on the client nonce")
			}
		})
	}

	secret, n16 := make([]byte, 32), make([]byte, 16)
	for _, tc := range []struct {
		name                  string
		secret, nc, ns        []byte
		cipherName, errSubstr string
	}{
		{"short secret", secret[:16], n16, n16, CipherAES256GCM, "secret is 16 bytes"},
		{"short nonce", secret, n16[:8], n16, CipherAES256GCM, "nonces are 8 and 16 bytes"},
		{"auto", secret, n16, n16, CipherAuto, "not resolved"},
		{"unknown", secret, n16, n16, "rc4", `unknown cipher "rc4"`},
	} {
		_, _, err := SessionKeys(tc.secret, tc.nc, tc.ns, tc.cipherName, true)
		if err == nil || !strings.Contains(err.Error(), tc.errSubstr) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.errSubstr)
		}
	}
}

// onlyReader hides WriteTo, onlyWriter hides ReadFrom.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// TestRoundTrip sends data one way over a net.Pipe and a loopback TCP
// connection, through Write and Read, and through ReadFrom and WriteTo.
func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, frameSize - 1, frameSize, frameSize + 1, 3*frameSize + 7, 10 << 20}
	type conns struct{ w, r net.Conn }
	transports := map[string]func(t *testing.T) conns{
		"pipe": func(t *testing.T) conns {
			w, r := net.Pipe()
			return conns{w, r}
		},
		"tcp": func(t *testing.T) conns {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			w, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			r, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			return conns{w, r}
		},
	}
	type path struct {
		send func(*SealWriter, []byte) error
		recv func(*OpenReader) ([]byte, error)
	}
	paths := map[string]path{
		"Write/Read": {
			send: func(s *SealWriter, data []byte) error {
				r := rand.New(rand.NewPCG(1, 2))
				for len(data) > 0 {
					n := min(len(data), r.IntN(3*frameSize))
					if _, err := s.Write(data[:n]); err != nil {
						return err
					}
					data = data[n:]
				}
				return nil
			},
			recv: func(o *OpenReader) ([]byte, error) { return io.ReadAll(onlyReader{o}) },
		},
		"ReadFrom/WriteTo": {
			send: func(s *SealWriter, data []byte) error {
				n, err := s.ReadFrom(onlyReader{bytes.NewReader(data)})
				if err == nil && n != int64(len(data)) {
					err = fmt.Errorf("ReadFrom = %d, want %d", n, len(data))
				}
				return err
			},
			recv: func(o *OpenReader) ([]byte, error) {
				var b bytes.Buffer
				n, err := o.WriteTo(onlyWriter{&b})
				if err == nil && n != int64(b.Len()) {
					err = fmt.Errorf("WriteTo = %d, wrote %d", n, b.Len())
				}
				return b.Bytes(), err
			},
		},
	}
	for _, c := range ciphers {
		clientSeal, _, _, serverOpen := testKeys(t, c)
		for tname, transport := range transports {
			for pname, p := range paths {
				for _, size := range sizes {
					t.Run(fmt.Sprintf("%s/%s/%s/%d", c, tname, pname, size), func(t *testing.T) {
						data := randomBytes(size, uint64(size))
						cs := transport(t)
						defer cs.w.Close()
						defer cs.r.Close()
						s := NewSealWriter(cs.w, clientSeal)
						sent := make(chan error, 1)
						go func() {
							err := p.send(s, data)
							if err == nil {
								err = s.Close()
							}
							if tcp, ok := cs.w.(*net.TCPConn); ok {
								tcp.CloseWrite()
							} else {
								cs.w.Close()
							}
							sent <- err
						}()
						o := NewOpenReader(cs.r, serverOpen)
						got, err := p.recv(o)
						if err != nil {
							t.Fatalf("receive: %v", err)
						}
						if err := <-sent; err != nil {
							t.Fatalf("send: %v", err)
						}
						if !bytes.Equal(got, data) {
							t.Fatalf("received %d bytes, not the %d sent", len(got), len(data))
						}
						if s.Bytes() != int64(size) || o.Bytes() != int64(size) {
							t.Errorf("Bytes() = %d sealed, %d opened; want %d", s.Bytes(), o.Bytes(), size)
						}
					})
				}
			}
		}
	}
}

// TestFrameFormat pins the wire format documented in seal.go.
func TestFrameFormat(t *testing.T) {
	for _, c := range ciphers {
		clientSeal, _, _, serverOpen := testKeys(t, c)
		data := randomBytes(frameSize+5, 7)
		frames := splitFrames(t, sealStream(t, clientSeal, data, frameSize))
		want := []struct {
			header uint32
			plain  []byte
		}{
			{frameSize, data[:frameSize]},
			{5, data[frameSize:]},
			{1 << 31, nil},
		}
		if len(frames) != len(want) {
			t.Fatalf("%s: %d frames, want %d", c, len(frames), len(want))
		}
		for i, f := range frames {
			if h := binary.BigEndian.Uint32(f); h != want[i].header {
				t.Errorf("%s: frame %d header %#08x, want %#08x", c, i, h, want[i].header)
			}
			nonce := make([]byte, 12)
			binary.BigEndian.PutUint64(nonce[4:], uint64(i))
			plain, err := serverOpen.Open(nil, nonce, f[4:], f[:4])
			if err != nil || !bytes.Equal(plain, want[i].plain) {
				t.Errorf("%s: frame %d does not open with nonce %x and its header as additional data: %v", c, i, nonce, err)
			}
		}
	}
}

// TestBitFlip flips every bit of a stream in turn: each must fail, and
// everything before the damaged frame must still arrive.
func TestBitFlip(t *testing.T) {
	for _, c := range ciphers {
		clientSeal, _, _, serverOpen := testKeys(t, c)
		data := randomBytes(350, 3)
		stream := sealStream(t, clientSeal, data, 100)
		frames := splitFrames(t, stream)
		if len(frames) != 5 {
			t.Fatalf("%d frames, want 5", len(frames))
		}
		start, good := 0, 0 // where the current frame starts; plaintext before it
		for _, f := range frames {
			for i := range len(f) * 8 {
				bad := bytes.Clone(stream)
				bad[start+i/8] ^= 1 << (i % 8)
				got, err := openStream(serverOpen, bad)
				want := ErrTampered
				if i/8 < frameHeaderLen {
					// A longer length can run past the end of the stream, which
					// is then indistinguishable from a cut connection.
					h := binary.BigEndian.Uint32(bad[start:])
					if n := int(h & frameLengthMask); h&frameFlagsMask == 0 && h&frameEOS == 0 &&
						n <= maxFramePayload && start+frameHeaderLen+n+16 > len(stream) {
						want = ErrEndedEarly
					}
				}
				if err != want {
					t.Fatalf("%s: bit %d of byte %d: err = %v, want %v", c, i%8, start+i/8, err, want)
				}
				if !bytes.Equal(got, data[:good]) {
					t.Fatalf("%s: bit %d of byte %d: got %d bytes, want the %d before the frame", c, i%8, start+i/8, len(got), good)
				}
			}
			start += len(f)
			good += len(f) - frameHeaderLen - 16
		}
	}
}

// TestStreamAttacks rearranges whole frames, as an attacker on the path can.
func TestStreamAttacks(t *testing.T) {
	for _, c := range ciphers {
		clientSeal, clientOpen, _, serverOpen := testKeys(t, c)
		data := randomBytes(350, 4)
		stream := sealStream(t, clientSeal, data, 100)
		f := splitFrames(t, stream) // 4 data frames of 100, 100, 100 and 50 bytes, then EOS
		join := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
		header := func(h uint32) []byte { return binary.BigEndian.AppendUint32(nil, h) }
		wrongKey, _, _, _ := testKeys(t, ciphers[1-indexOf(ciphers, c)])
		_, _, reuse, _ := testKeys(t, c) // a server key: same secret, other direction
		for _, tc := range []struct {
			name   string
			open   cipher.AEAD
			stream []byte
			want   error
			good   int // plaintext bytes that must arrive
		}{
			{"intact", serverOpen, stream, nil, 350},
			{"data after end of stream is never read", serverOpen, join(stream, f[1]), nil, 350},
			{"empty", serverOpen, nil, ErrEndedEarly, 0},
			{"end of stream dropped", serverOpen, join(f[0], f[1], f[2], f[3]), ErrEndedEarly, 350},
			{"cut inside a frame", serverOpen, join(f[0], f[1][:50]), ErrEndedEarly, 100},
			{"cut inside a header", serverOpen, join(f[0], f[1][:2]), ErrEndedEarly, 100},
			{"cut inside the end of stream", serverOpen, join(f[0], f[1], f[2], f[3], f[4][:10]), ErrEndedEarly, 350},
			{"last data frame dropped", serverOpen, join(f[0], f[1], f[2], f[4]), ErrTampered, 300},
			{"middle frame dropped", serverOpen, join(f[0], f[2], f[3], f[4]), ErrTampered, 100},
			{"frames swapped", serverOpen, join(f[0], f[2], f[1], f[3], f[4]), ErrTampered, 100},
			{"frame replayed", serverOpen, join(f[0], f[1], f[1], f[2], f[3], f[4]), ErrTampered, 200},
			{"first frame replayed", serverOpen, join(f[0], f[0], f[1]), ErrTampered, 100},
			{"end of stream early", serverOpen, join(f[0], f[4]), ErrTampered, 100},
			{"length over the maximum", serverOpen, join(f[0], header(maxFramePayload+1)), ErrTampered, 100},
			{"length at 2^24-1", serverOpen, join(f[0], header(frameLengthMask), f[1]), ErrTampered, 100},
			{"unknown flag", serverOpen, join(f[0], header(1<<30|100), f[1][4:]), ErrTampered, 100},
			{"end of stream with data", serverOpen, join(f[0], header(frameEOS|100), f[1][4:]), ErrTampered, 100},
			{"wrong cipher", wrongKey, stream, ErrTampered, 0},
			{"reflected to its sender", clientOpen, stream, ErrTampered, 0},
			{"sealed with the other direction's key", serverOpen, sealStream(t, reuse, data, 100), ErrTampered, 0},
		} {
			got, err := openStream(tc.open, tc.stream)
			if err != tc.want {
				t.Errorf("%s: %s: err = %v, want %v", c, tc.name, err, tc.want)
			}
			if !bytes.Equal(got, data[:tc.good]) {
				t.Errorf("%s: %s: got %d bytes, want the first %d", c, tc.name, len(got), tc.good)
			}
		}
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// TestReadErrors checks Read's error order: data first, then the error, for good.
func TestReadErrors(t *testing.T) {
	clientSeal, _, _, serverOpen := testKeys(t, CipherChaCha20Poly1305)
	data := randomBytes(250, 5)
	f := splitFrames(t, sealStream(t, clientSeal, data, 100))
	bad := bytes.Join([][]byte{f[0], f[2]}, nil)
	o := NewOpenReader(bytes.NewReader(bad), serverOpen)
	if err := iotest.TestReader(io.LimitReader(o, 100), data[:100]); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if n, err := o.Read(make([]byte, 10)); n != 0 || err != ErrTampered {
			t.Fatalf("Read after the good frame = %d, %v; want 0, ErrTampered", n, err)
		}
	}
	if n, err := o.WriteTo(io.Discard); n != 0 || err != ErrTampered {
		t.Fatalf("WriteTo after ErrTampered = %d, %v", n, err)
	}

	// A failing connection is ErrEndedEarly and still says why.
	cause := errors.New("connection reset by peer")
	o = NewOpenReader(io.MultiReader(bytes.NewReader(f[0]), iotest.ErrReader(cause)), serverOpen)
	got, err := io.ReadAll(o)
	if !errors.Is(err, ErrEndedEarly) || !errors.Is(err, cause) || !bytes.Equal(got, data[:100]) {
		t.Fatalf("ReadAll = %d bytes, %v; want 100 bytes, ErrEndedEarly wrapping %v", len(got), err, cause)
	}
	if n, err := o.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v; want 0, nil", n, err)
	}
}

type failWriter struct {
	n   int
	err error
}

func (w *failWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.n++
	return len(p), nil
}

func TestSealWriterBuffering(t *testing.T) {
	clientSeal, _, _, serverOpen := testKeys(t, CipherAES256GCM)
	var out bytes.Buffer
	s := NewSealWriter(&out, clientSeal)
	if n, err := s.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if out.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("a partial frame was sent before Flush: %d bytes", out.Len())
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 4+5+16 || s.Bytes() != 5 {
		t.Fatalf("after Flush: %d bytes on the wire, Bytes() = %d; want one 25-byte frame, 5", out.Len(), s.Bytes())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	if got, err := openStream(serverOpen, out.Bytes()); err != nil || string(got) != "hello" {
		t.Fatalf("open = %q, %v", got, err)
	}

	// A failed write is final.
	cause := errors.New("broken pipe")
	w := &failWriter{}
	s = NewSealWriter(w, clientSeal)
	w.err = cause
	if _, err := s.Write(make([]byte, frameSize)); err != cause {
		t.Fatalf("Write = %v, want %v", err, cause)
	}
	w.err = nil
	if _, err := s.Write([]byte("x")); err != cause {
		t.Fatalf("Write after a failure = %v, want %v", err, cause)
	}
	if err := s.Close(); err != cause || w.n != 0 {
		t.Fatalf("Close after a failure = %v (%d writes), want %v", err, w.n, cause)
	}
}

// TestReadFromDoesNotHoldBack: a reader that trickles must not wait for a full frame.
func TestReadFromDoesNotHoldBack(t *testing.T) {
	clientSeal, _, _, serverOpen := testKeys(t, CipherChaCha20Poly1305)
	w, r := net.Pipe()
	defer r.Close()
	pr, pw := io.Pipe()
	s := NewSealWriter(w, clientSeal)
	done := make(chan error, 1)
	go func() {
		_, err := s.ReadFrom(pr)
		if err == nil {
			err = s.Close()
		}
		w.Close()
		done <- err
	}()
	o := NewOpenReader(r, serverOpen)
	buf := make([]byte, 100)
	for _, msg := range []string{"ls\n", "exit\n"} {
		if _, err := pw.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if n, err := o.Read(buf); err != nil || string(buf[:n]) != msg {
			t.Fatalf("Read = %q, %v; want %q", buf[:n], err, msg)
		}
	}
	pw.CloseWithError(io.EOF)
	if n, err := o.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end = %d, %v; want io.EOF", n, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestNonceLimit: no frame past the 2^64th, on either side.
func TestNonceLimit(t *testing.T) {
	clientSeal, _, _, serverOpen := testKeys(t, CipherAES256GCM)
	var out bytes.Buffer
	s := NewSealWriter(&out, clientSeal)
	s.nonce.next = math.MaxUint64
	if _, err := s.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("the last nonce: %v", err)
	}
	if _, err := s.Write([]byte("one too many")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != errNoncesSpent {
		t.Fatalf("past the last nonce: %v, want %v", err, errNoncesSpent)
	}

	// The reader opens the frame with the last nonce and nothing after it,
	// even a frame that would authenticate with nonce 0 again.
	first := sealStream(t, clientSeal, []byte("wrapped"), 100)
	o := NewOpenReader(io.MultiReader(&out, bytes.NewReader(first)), serverOpen)
	o.nonce.next = math.MaxUint64
	got, err := io.ReadAll(o)
	if string(got) != "last" || err != ErrTampered {
		t.Fatalf("ReadAll = %q, %v; want %q, ErrTampered", got, err, "last")
	}
}

// countingReader returns n bytes without touching them, for allocation counts
// and benchmarks where the source must cost nothing.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	m := int(min(int64(len(p)), r.n))
	r.n -= int64(m)
	return m, nil
}

func resetOpenReader(o *OpenReader, r io.Reader) {
	o.r, o.nonce.next, o.nonce.spent, o.err, o.plain, o.start, o.end = r, 0, false, nil, nil, 0, 0
}

func TestZeroAllocsPerFrame(t *testing.T) {
	for _, c := range ciphers {
		clientSeal, _, _, serverOpen := testKeys(t, c)
		s := NewSealWriter(io.Discard, clientSeal)
		chunk := make([]byte, frameSize)
		if a := testing.AllocsPerRun(100, func() { s.Write(chunk) }); a != 0 {
			t.Errorf("%s: SealWriter.Write: %v allocations per frame", c, a)
		}
		var src countingReader
		if a := testing.AllocsPerRun(20, func() { src.n = 10 * frameSize; s.ReadFrom(&src) }); a != 0 {
			t.Errorf("%s: SealWriter.ReadFrom: %v allocations per 10 frames", c, a)
		}

		stream := sealStream(t, clientSeal, randomBytes(200*4096, 1), 4096)
		var br bytes.Reader
		o := NewOpenReader(&br, serverOpen)
		if a := testing.AllocsPerRun(20, func() {
			br.Reset(stream)
			resetOpenReader(o, &br)
			if _, err := o.WriteTo(io.Discard); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("%s: OpenReader.WriteTo: %v allocations per 200 frames", c, a)
		}
		br.Reset(stream)
		resetOpenReader(o, &br)
		buf := make([]byte, 4096)
		if a := testing.AllocsPerRun(100, func() { io.ReadFull(o, buf) }); a != 0 {
			t.Errorf("%s: OpenReader.Read: %v allocations per frame", c, a)
		}
	}
}

// FuzzOpenReader feeds the reader a valid stream cut anywhere and followed by
// anything: it must never panic, allocate per frame, or return data that was
// not sealed, and must always end in one of its three outcomes.
func FuzzOpenReader(f *testing.F) {
	clientSeal, _, _, serverOpen := testKeys(f, CipherChaCha20Poly1305)
	plain := randomBytes(300, 9)
	valid := sealStream(f, clientSeal, plain, 64)
	frames := splitFrames(f, valid)
	f.Add(uint16(len(valid)), []byte{})
	f.Add(uint16(len(valid)), []byte("trailing"))
	f.Add(uint16(len(valid)-len(frames[len(frames)-1])), []byte{})
	f.Add(uint16(len(valid)-len(frames[len(frames)-1])), frames[1])
	f.Add(uint16(len(frames[0])), []byte{0, 0xff, 0xff, 0xff})
	f.Add(uint16(len(frames[0])), []byte{0x80, 0, 0, 0, 1, 2, 3})
	f.Add(uint16(0), frames[0])
	f.Add(uint16(3), []byte{0x40, 0, 0})

	f.Fuzz(func(t *testing.T, cut uint16, tail []byte) {
		n := int(cut) % (len(valid) + 1)
		stream := append(valid[:n:n], tail...)
		var got bytes.Buffer
		got.Grow(len(plain))
		var err error
		allocs := testing.AllocsPerRun(1, func() {
			got.Reset()
			_, err = NewOpenReader(bytes.NewReader(stream), serverOpen).WriteTo(&got)
		})
		if allocs > 6 {
			t.Errorf("%v allocations for %d bytes of stream", allocs, len(stream))
		}
		if !bytes.HasPrefix(plain, got.Bytes()) {
			t.Fatalf("returned %d bytes that were never sealed", got.Len())
		}
		switch {
		case n == len(valid):
			if err != nil || got.Len() != len(plain) {
				t.Fatalf("intact stream: %d bytes, %v", got.Len(), err)
			}
		case err != ErrTampered && err != ErrEndedEarly:
			t.Fatalf("damaged stream: err = %v", err)
		}
	})
}

type countingWriter struct {
	writes []int // the length of each write
	bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	return w.Buffer.Write(p)
}

// TestBatching: ReadFrom sends what one read returned as frames of the frame size in one
// write, and WriteTo writes the plaintext of all the whole frames one read brought in one
// write. Both start with buffers of a frame's size and move to ioChunk once a read fills them.
func TestBatching(t *testing.T) {
	clientSeal, _, _, serverOpen := testKeys(t, CipherAES256GCM)
	data := randomBytes(ioChunk+3*frameSize+5, 3)
	var wire countingWriter
	s := NewSealWriter(&wire, clientSeal)
	if _, err := s.ReadFrom(onlyReader{bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	// Reads of a frame (which fills the first buffer), of ioChunk, then of the rest.
	frame := frameHeaderLen + frameSize + 16
	if want := []int{frame, ioChunk / frameSize * frame, 2*frame + frameHeaderLen + 5 + 16}; fmt.Sprint(wire.writes) != fmt.Sprint(want) {
		t.Errorf("ReadFrom's writes: %v bytes, want %v", wire.writes, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	frames := splitFrames(t, wire.Bytes())
	for i, f := range frames[:len(frames)-1] {
		if n := len(f) - frameHeaderLen - 16; n > frameSize || n == 0 {
			t.Fatalf("frame %d holds %d bytes, want 1 to %d", i, n, frameSize)
		}
	}
	var plain countingWriter
	if _, err := NewOpenReader(onlyReader{bytes.NewReader(wire.Bytes())}, serverOpen).WriteTo(&plain); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain.Bytes(), data) {
		t.Fatalf("opened %d bytes, not the %d sealed", plain.Len(), len(data))
	}
	// The first read fills the frame-sized buffer (one whole frame and part of the next),
	// the next one the big buffer.
	if len(plain.writes) > 3 || slices.Max(plain.writes) < 6*frameSize {
		t.Errorf("WriteTo's writes for %d frames: %v bytes, want at most 3, one of at least 6 frames", len(frames), plain.writes)
	}
}

// chanWriter hands every write to a channel.
type chanWriter chan []byte

func (w chanWriter) Write(p []byte) (int, error) { w <- append([]byte(nil), p...); return len(p), nil }

// TestWriteToDoesNotHoldBack: WriteTo writes a frame that has come before it waits for the next.
func TestWriteToDoesNotHoldBack(t *testing.T) {
	clientSeal, _, _, serverOpen := testKeys(t, CipherChaCha20Poly1305)
	w, r := net.Pipe()
	defer r.Close()
	s := NewSealWriter(w, clientSeal)
	got := make(chanWriter, 4)
	done := make(chan error, 1)
	go func() {
		_, err := NewOpenReader(r, serverOpen).WriteTo(got)
		done <- err
	}()
	for _, msg := range []string{"first\n", "second\n"} {
		if _, err := s.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if p := <-got; string(p) != msg {
			t.Fatalf("WriteTo wrote %q, want %q", p, msg)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
