// Package seal is -e's data connection: each direction is a stream of AEAD frames.
//
//	frame  = header (4 bytes) | ciphertext (length bytes) | tag (16 bytes)
//	header = big-endian uint32: bit 31 end-of-stream, bits 30-24 zero,
//	         bits 23-0 plaintext length (at most 256 KiB; writers use 128 KiB)
//
// The header is the AEAD's additional data, so a changed length or flag fails
// authentication. The nonce is the frame's number in its direction: 64-bit
// big-endian in the nonce's last 8 bytes, the first 4 zero, starting at 0. A
// dropped, repeated or reordered frame is therefore opened with the wrong nonce
// and fails. No direction may carry more than 2^64 frames.
//
// The last frame is the end-of-stream frame: flag set, length 0, just a tag.
// Without it a stream is incomplete, so a cut connection can never pass for a
// short but complete one. Each direction has its own key (SessionKeys), so a
// frame cannot be reflected back to its sender.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/socketpipe/socketpipe/internal/platform"
)

// Cipher names, as given to -e and carried in the request.
const (
	// CipherAuto picks AES-256-GCM when the CPU has AES instructions
	// (platform.HasAESGCM), else ChaCha20-Poly1305.
	CipherAuto             = ""
	CipherAES256GCM        = "aes-256-gcm"
	CipherChaCha20Poly1305 = "chacha20-poly1305"
)

const (
	frameHeaderLen  = 4
	maxFramePayload = 256 << 10
	frameSize       = 128 << 10 // a frame's plaintext when the writer has enough
	// ioChunk is the most a SealWriter reads (ReadFrom) and an OpenReader writes (WriteTo)
	// at once: a relay pipe's worth, sealed or opened as several frames and moved with one
	// system call, where a call per frame spent more on waking the other end than on it.
	// Their buffers start at a frame's size and grow to it when a read fills them: a short
	// or slow stream never needs the megabytes.
	ioChunk          = 1 << 20
	frameEOS         = 1 << 31
	frameLengthMask  = 1<<24 - 1
	frameFlagsMask   = ^uint32(frameEOS | frameLengthMask)
	sessionSecretLen = 32
	sessionNonceLen  = 16
)

var (
	// ErrEndedEarly is returned by OpenReader when the connection ends, or fails,
	// before the authenticated end-of-stream frame: the data is incomplete.
	// A failure of the connection is wrapped with it.
	ErrEndedEarly = errors.New("data connection ended early")

	// ErrTampered is returned by OpenReader when a frame fails authentication:
	// it was changed, dropped, repeated, reordered or sealed with another key.
	ErrTampered = errors.New("data connection failed authentication (tampered or corrupted)")

	errWriteAfterClose = errors.New("write to a closed sealed stream")
	errNoncesSpent     = errors.New("sealed stream has used all 2^64 nonces of its key")
)

// ChooseCipher resolves CipherAuto for this machine and checks any other name.
// Only one side should choose and tell the other: two machines may resolve
// CipherAuto differently.
func ChooseCipher(name string) (string, error) {
	switch name {
	case CipherAuto:
		if platform.HasAESGCM() {
			return CipherAES256GCM, nil
		}
		return CipherChaCha20Poly1305, nil
	case CipherAES256GCM, CipherChaCha20Poly1305:
		return name, nil
	}
	return "", fmt.Errorf("unknown cipher %q (valid: %s)", name,
		strings.Join([]string{CipherAES256GCM, CipherChaCha20Poly1305}, ", "))
}

// SessionKeys derives the data connection's two keys, one per direction, from
// the run's secret and the nonces both sides sent in the proof, so every
// connection has fresh keys that never crossed the data socket:
//
//	key = HKDF-SHA-256(secret, salt = clientNonce | serverNonce,
//	                   info = "socketpipe c2s v1|" + cipherName)  (and "s2c")
//
// The client seals with the c2s key and opens with the s2c key; the server the
// reverse. cipherName must be resolved (ChooseCipher) and the same on both sides.
func SessionKeys(secret, clientNonce, serverNonce []byte, cipherName string, isClient bool) (seal, open cipher.AEAD, err error) {
	if len(secret) != sessionSecretLen {
		return nil, nil, fmt.Errorf("session secret is %d bytes, want %d", len(secret), sessionSecretLen)
	}
	if len(clientNonce) != sessionNonceLen || len(serverNonce) != sessionNonceLen {
		return nil, nil, fmt.Errorf("proof nonces are %d and %d bytes, want %d",
			len(clientNonce), len(serverNonce), sessionNonceLen)
	}
	if cipherName == CipherAuto {
		return nil, nil, errors.New("session cipher not resolved: both sides must use the cipher one of them chose")
	}
	if _, err := ChooseCipher(cipherName); err != nil {
		return nil, nil, err
	}
	salt := make([]byte, 0, 2*sessionNonceLen)
	salt = append(append(salt, clientNonce...), serverNonce...)
	c2s, err := directionKey(secret, salt, "socketpipe c2s v1|"+cipherName)
	if err != nil {
		return nil, nil, err
	}
	s2c, err := directionKey(secret, salt, "socketpipe s2c v1|"+cipherName)
	if err != nil {
		return nil, nil, err
	}
	if !isClient {
		c2s, s2c = s2c, c2s
	}
	if seal, err = newAEAD(cipherName, c2s); err != nil {
		return nil, nil, err
	}
	if open, err = newAEAD(cipherName, s2c); err != nil {
		return nil, nil, err
	}
	return seal, open, nil
}

func directionKey(secret, salt []byte, info string) ([]byte, error) {
	key, err := hkdf.Key(sha256.New, secret, salt, info, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving session key: %w", err)
	}
	return key, nil
}

func newAEAD(cipherName string, key []byte) (cipher.AEAD, error) {
	switch cipherName {
	case CipherAES256GCM:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cipherName, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cipherName, err)
		}
		return aead, nil
	case CipherChaCha20Poly1305:
		aead, err := chacha20poly1305.New(key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cipherName, err)
		}
		return aead, nil
	}
	_, err := ChooseCipher(cipherName)
	return nil, err
}

// frameNonce is a direction's nonce counter.
type frameNonce struct {
	nonce []byte
	next  uint64
	spent bool // next wrapped: all 2^64 nonces used
}

func newFrameNonce(aead cipher.AEAD) frameNonce {
	if aead.NonceSize() < 8 {
		panic("seal: AEAD nonce shorter than the 8-byte frame counter")
	}
	return frameNonce{nonce: make([]byte, aead.NonceSize())}
}

// take returns the next nonce; the slice is valid until the next call.
func (n *frameNonce) take() ([]byte, bool) {
	if n.spent {
		return nil, false
	}
	binary.BigEndian.PutUint64(n.nonce[len(n.nonce)-8:], n.next)
	n.next++
	n.spent = n.next == 0
	return n.nonce, true
}

// SealWriter encrypts a byte stream into frames written to an underlying
// writer. Like a bufio.Writer it holds back a partial frame until it fills,
// Flush or Close; ReadFrom sends a frame for each read instead.
// A SealWriter is not safe for concurrent use.
type SealWriter struct {
	w     io.Writer
	aead  cipher.AEAD
	nonce frameNonce
	size  int    // plaintext per full frame
	buf   []byte // header | plaintext (size) | tag: one frame, sealed in place
	n     int    // plaintext held in buf
	in    []byte // ReadFrom: what one read returned (allocated on first use)
	out   []byte // ReadFrom: its frames, written at once
	bytes int64
	err   error // sticky: the stream is unusable once a frame failed
}

// NewSealWriter returns a SealWriter that seals with aead, which must take
// nonces of at least 8 bytes (both ciphers here take 12).
func NewSealWriter(w io.Writer, aead cipher.AEAD) *SealWriter {
	return newSealWriterSize(w, aead, frameSize)
}

func newSealWriterSize(w io.Writer, aead cipher.AEAD, size int) *SealWriter {
	if size <= 0 || size > maxFramePayload {
		panic("seal: bad frame size")
	}
	return &SealWriter{
		w:     w,
		aead:  aead,
		nonce: newFrameNonce(aead),
		size:  size,
		buf:   make([]byte, frameHeaderLen+size+aead.Overhead()),
	}
}

// seal sends one frame holding plain, which is either s.buf's own plaintext
// (sealed in place) or caller's memory (sealed straight into s.buf).
func (s *SealWriter) seal(plain []byte, flags uint32) error {
	if s.err != nil {
		return s.err
	}
	nonce, ok := s.nonce.take()
	if !ok {
		s.err = errNoncesSpent
		return s.err
	}
	binary.BigEndian.PutUint32(s.buf, flags|uint32(len(plain)))
	frame := s.aead.Seal(s.buf[frameHeaderLen:frameHeaderLen], nonce, plain, s.buf[:frameHeaderLen])
	if _, err := s.w.Write(s.buf[:frameHeaderLen+len(frame)]); err != nil {
		s.err = err
		return err
	}
	s.bytes += int64(len(plain))
	return nil
}

// Write seals p. Full frames are sent at once; the rest waits for more data,
// Flush or Close.
func (s *SealWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if s.err != nil {
			return written, s.err
		}
		if s.n == 0 && len(p) >= s.size {
			if err := s.seal(p[:s.size], 0); err != nil {
				return written, err
			}
			written += s.size
			p = p[s.size:]
			continue
		}
		c := copy(s.buf[frameHeaderLen+s.n:frameHeaderLen+s.size], p)
		s.n += c
		written += c
		p = p[c:]
		if s.n == s.size {
			if err := s.Flush(); err != nil {
				return written, err
			}
		}
	}
	return written, s.err
}

// ReadFrom reads r until EOF, up to ioChunk at a time, and after every read
// sends what it returned, as frames of at most the frame size in one write, so
// data that trickles in is not held back. It returns the bytes read from r and,
// like io.Copy, nil at EOF; it does not Close.
func (s *SealWriter) ReadFrom(r io.Reader) (int64, error) {
	if err := s.Flush(); err != nil {
		return 0, err
	}
	if s.in == nil {
		s.grow(s.size)
	}
	var total int64
	for {
		if s.err != nil {
			return total, s.err
		}
		m, rerr := r.Read(s.in)
		if m < 0 || m > len(s.in) {
			return total, errors.New("reader returned an impossible count")
		}
		total += int64(m)
		if m > 0 {
			if err := s.sealChunk(s.in[:m]); err != nil {
				return total, err
			}
		}
		if m == len(s.in) && m < ioChunk {
			s.grow(ioChunk)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// grow makes ReadFrom's buffers hold n bytes of plaintext and their frames.
func (s *SealWriter) grow(n int) {
	s.in = make([]byte, n)
	s.out = make([]byte, 0, n+(n/s.size+1)*(frameHeaderLen+s.aead.Overhead()))
}

// sealChunk sends p as frames of at most s.size bytes, all in one write.
func (s *SealWriter) sealChunk(p []byte) error {
	out := s.out[:0]
	sent := int64(len(p))
	for len(p) > 0 {
		nonce, ok := s.nonce.take()
		if !ok {
			s.err = errNoncesSpent
			return s.err
		}
		k := min(len(p), s.size)
		out = binary.BigEndian.AppendUint32(out, uint32(k))
		out = s.aead.Seal(out, nonce, p[:k], out[len(out)-frameHeaderLen:])
		p = p[k:]
	}
	if _, err := s.w.Write(out); err != nil {
		s.err = err
		return err
	}
	s.bytes += sent
	return nil
}

// Flush sends the plaintext held back, if any, as a frame.
func (s *SealWriter) Flush() error {
	if s.n == 0 {
		return s.err
	}
	n := s.n
	s.n = 0
	return s.seal(s.buf[frameHeaderLen:frameHeaderLen+n], 0)
}

// Close flushes and sends the end-of-stream frame. It does not close the
// underlying writer (half-close the connection after it). Writing after Close
// is an error; closing again does nothing.
func (s *SealWriter) Close() error {
	if s.err == errWriteAfterClose {
		return nil
	}
	if err := s.Flush(); err != nil {
		return err
	}
	if err := s.seal(nil, frameEOS); err != nil {
		return err
	}
	s.err = errWriteAfterClose
	return nil
}

// Bytes returns the plaintext bytes sent so far, not counting any held back.
func (s *SealWriter) Bytes() int64 { return s.bytes }

// OpenReader authenticates and decrypts the frames a SealWriter sealed.
// It returns only authenticated data, and all of it before any error: io.EOF
// after the end-of-stream frame, ErrEndedEarly if the stream stops (or fails,
// wrapped) before it, ErrTampered for a frame that fails authentication.
// A stream cut inside a frame is ErrEndedEarly.
//
// It reads as much as the underlying reader has, up to ioChunk, but never waits
// for more while a whole frame is at hand, and stops reading at the
// end-of-stream frame (the peer may keep the connection open for the other
// direction); whatever followed it in the same read is ignored.
// An OpenReader is not safe for concurrent use.
type OpenReader struct {
	r          io.Reader
	aead       cipher.AEAD
	nonce      frameNonce
	in         []byte // read from r: frames, the last one perhaps incomplete
	start, end int    // in[start:end] is read and not yet opened
	out        []byte // WriteTo: the plaintext of the frames opened since the last write
	plain      []byte // Read: decrypted and not yet returned, within in
	bytes      int64
	err        error // sticky: io.EOF, ErrEndedEarly or ErrTampered
}

// NewOpenReader returns an OpenReader that opens with aead, which must take
// nonces of at least 8 bytes (both ciphers here take 12).
func NewOpenReader(r io.Reader, aead cipher.AEAD) *OpenReader {
	return &OpenReader{
		r:     r,
		aead:  aead,
		nonce: newFrameNonce(aead),
		in:    make([]byte, frameHeaderLen+maxFramePayload+aead.Overhead()),
	}
}

// fill reads until in[start:end] holds at least need bytes, moving what is
// there to the front of in first if need would not fit behind it.
func (o *OpenReader) fill(need int) error {
	if o.start == o.end {
		o.start, o.end = 0, 0
	} else if o.start+need > len(o.in) {
		o.end = copy(o.in, o.in[o.start:o.end])
		o.start = 0
	}
	for o.end-o.start < need {
		n, err := o.r.Read(o.in[o.end:])
		if n < 0 || n > len(o.in)-o.end {
			return errors.New("reader returned an impossible count")
		}
		o.end += n
		if o.end == len(o.in) && len(o.in) < ioChunk {
			// A read filled the buffer: a bulk stream. Move to the big one.
			in := make([]byte, ioChunk)
			o.end = copy(in, o.in[o.start:o.end])
			o.in, o.start = in, 0
		}
		if o.end-o.start >= need {
			return nil
		}
		if err != nil {
			return endedEarly(err)
		}
	}
	return nil
}

// frame returns the next frame's header and its ciphertext and tag, within in,
// reading if wait is set and it is not all there yet; ok is false if it is not
// and wait is not set. A header that no SealWriter writes is ErrTampered.
func (o *OpenReader) frame(wait bool) (header, body []byte, ok bool, err error) {
	if o.end-o.start < frameHeaderLen {
		if !wait {
			return nil, nil, false, nil
		}
		if err := o.fill(frameHeaderLen); err != nil {
			return nil, nil, false, err
		}
	}
	h := binary.BigEndian.Uint32(o.in[o.start:])
	n := int(h & frameLengthMask)
	if h&frameFlagsMask != 0 || n > maxFramePayload || h&frameEOS != 0 && n != 0 {
		return nil, nil, false, ErrTampered
	}
	size := frameHeaderLen + n + o.aead.Overhead()
	if o.end-o.start < size {
		if !wait {
			return nil, nil, false, nil
		}
		if err := o.fill(size); err != nil {
			return nil, nil, false, err
		}
	}
	f := o.in[o.start : o.start+size]
	o.start += size
	return f[:frameHeaderLen], f[frameHeaderLen:], true, nil
}

// open authenticates and decrypts one frame, appending its plaintext to dst;
// io.EOF for the end-of-stream frame.
func (o *OpenReader) open(dst, header, body []byte) ([]byte, error) {
	nonce, ok := o.nonce.take()
	if !ok {
		return dst, ErrTampered // past 2^64 frames no frame can be genuine
	}
	plain, err := o.aead.Open(dst, nonce, body, header)
	if err != nil {
		return dst, ErrTampered
	}
	if binary.BigEndian.Uint32(header)&frameEOS != 0 {
		return plain, io.EOF
	}
	return plain, nil
}

func endedEarly(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return ErrEndedEarly
	}
	return fmt.Errorf("%w: %w", ErrEndedEarly, err)
}

// Read returns authenticated plaintext.
func (o *OpenReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(o.plain) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		header, body, _, err := o.frame(true)
		if err == nil {
			o.plain, err = o.open(body[:0], header, body)
		}
		o.err = err
	}
	n := copy(p, o.plain)
	o.plain = o.plain[n:]
	o.bytes += int64(n)
	return n, nil
}

// WriteTo writes the plaintext of the frames to w, of all those read so far at
// once, and waits for more only when it has written everything. It returns nil
// after the end-of-stream frame, like io.Copy.
func (o *OpenReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	write := func(p []byte) error {
		n, err := w.Write(p)
		if n < 0 || n > len(p) {
			return errors.New("writer returned an impossible count")
		}
		o.bytes += int64(n)
		total += int64(n)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		return err
	}
	if len(o.plain) > 0 { // left by Read
		p := o.plain
		o.plain = nil
		if err := write(p); err != nil {
			return total, err
		}
	}
	for {
		if cap(o.out) < len(o.in) {
			// Between two writes it opens only what one fill left in in.
			o.out = make([]byte, 0, len(o.in))
		}
		out := o.out[:0]
		for o.err == nil {
			header, body, ok, err := o.frame(len(out) == 0)
			if err != nil || !ok {
				o.err = err
				break
			}
			out, o.err = o.open(out, header, body)
		}
		if len(out) > 0 {
			if err := write(out); err != nil {
				return total, err
			}
		}
		if o.err == io.EOF {
			return total, nil
		}
		if o.err != nil {
			return total, o.err
		}
	}
}

// Bytes returns the plaintext bytes returned so far.
func (o *OpenReader) Bytes() int64 { return o.bytes }
