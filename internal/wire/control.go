// Package wire is the control channel's format: the messages the two halves exchange over the
// login session, and the frames that carry them (and, in ssh mode, the data) past whatever a
// login shell prints first.
//
//	channel = banner (anything) | magic | frame...
//	frame   = type (1 byte: 'J', 'D' or 'E') | big-endian uint32 length | payload
//
// A 'J' frame holds one JSON Message; 'D' and 'E' carry ssh mode's stream and its end.
package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// Protocol is the version of the control protocol spoken by this package. Two halves with
// different protocol versions refuse each other with a message that names both. Protocol 2
// binds the data connection's proof to its direction (rendezvous.Prove): a protocol 1 half
// would fail every proof, so the halves must not try.
const Protocol = 2

// Magic precedes the first frame in each direction of the control channel. The reader of the
// remote half's output skips whatever a login shell printed before it.
const Magic = "\x00socketpipe-ctl\x00"

// Frame types on the control channel.
const (
	FrameJSON byte = 'J' // a control message
	FrameData byte = 'D' // stream data (ssh mode)
	FrameEOF  byte = 'E' // end of stream data in this direction (ssh mode)
)

// Limits on what a peer may send.
const (
	MaxControlFrame = 1 << 20   // a JSON control message
	MaxDataFrame    = 256 << 10 // a data frame in ssh mode
	MaxBanner       = 1 << 20   // bytes of login-shell noise skipped before the magic
)

// Message is one control message. Which fields are set depends on Type.
type Message struct {
	Type string `json:"type"`

	// request (client to remote half)
	Version   string   `json:"version,omitempty"`  // the sender's socketpipe version
	Protocol  int      `json:"protocol,omitempty"` // the sender's Protocol
	Argv      []string `json:"argv,omitempty"`     // the remote command, run verbatim
	Mode      string   `json:"mode,omitempty"`     // back, reverse, ssh or auto (and a note's subject)
	Secret    []byte   `json:"secret,omitempty"`   // the data connection's secret
	TimeoutMS int64    `json:"timeout_ms,omitempty"`
	Encrypt   bool     `json:"encrypt,omitempty"`
	Cipher    string   `json:"cipher,omitempty"`
	PortLow   int      `json:"port_low,omitempty"` // --ports
	PortHigh  int      `json:"port_high,omitempty"`
	Shell     bool     `json:"shell,omitempty"` // run Argv[0] through the user's shell (--ssh mode)
	// NoDelay asks for TCP_NODELAY on the remote command's socket in plain mode: the client
	// relays its own standard input and output for a program that may talk request/response
	// (see Tune). A remote half that predates it leaves Go's default, which is the same.
	NoDelay bool `json:"nodelay,omitempty"`
	// PingMS, in the request, offers pings every so many milliseconds while the remote
	// command runs; the remote half accepts by echoing it in its hello. Then each half sends
	// a ping at that interval and gives up on a peer silent for PingDeadAfter. Halves that
	// predate pings neither offer nor accept them.
	PingMS int64 `json:"ping_ms,omitempty"`
	// Streams, in the request, offers to stripe the data over up to so many data
	// connections; the remote half accepts by echoing the most it takes in its hello. Then,
	// once the first data connection is committed, the client sends a streams message with
	// the number it chose (1 included). Halves that predate it neither offer nor accept, and
	// use one connection.
	Streams int `json:"streams,omitempty"`
	// Channels, in the request, offers to carry ssh mode's data over up to so many
	// direct-tcpip channels of the login's SSH connection (a native login can open them);
	// the remote half accepts by echoing the most it takes in its hello. Once ssh mode is
	// agreed, the remote half sends a listen message with its loopback address ("" when it
	// cannot listen), and the client answers with a streams message: the number of channels
	// it opened and proved, 0 to carry the data in frames on the control channel after all.
	Channels int `json:"channels,omitempty"`

	// WindowSend and WindowRecv, in the hello, are the largest TCP send and receive buffers
	// the remote host gives one connection (net.ipv4.tcp_wmem and tcp_rmem on Linux), for
	// the client's choice of streams; 0 when unknown.
	WindowSend int64 `json:"window_send,omitempty"`
	WindowRecv int64 `json:"window_recv,omitempty"`

	// hello (remote half to client)
	PID           int    `json:"pid,omitempty"`
	SSHConnection string `json:"ssh_connection,omitempty"` // the remote half's SSH_CONNECTION

	// listen (either way): dial me here
	Addr string `json:"addr,omitempty"`

	// status (remote half to client)
	Exit   int    `json:"exit"`
	Signal string `json:"signal,omitempty"`

	// error (either way), and notes for -v
	Error string `json:"error,omitempty"`
	Note  string `json:"note,omitempty"` // with Mode set: why that way of connecting fails so far
}

// Message types.
const (
	MsgRequest      = "request"
	MsgHello        = "hello"
	MsgListen       = "listen"
	MsgUseSSH       = "use-ssh"
	MsgStatus       = "status"
	MsgError        = "error"
	MsgNote         = "note"
	MsgOutputClosed = "output-closed" // client to remote half: the local output stage ended early
	MsgInputUnread  = "input-unread"  // remote half to client: the remote command is gone, input is unread
	MsgPing         = "ping"          // either way, when agreed (PingMS): I am alive
	MsgStreams      = "streams"       // client to remote half, when agreed (Streams): this many data connections
)

// ErrNoMagic is returned when the peer's output ended, or exceeded MaxBanner, before the
// control magic was seen: the remote half never started.
var ErrNoMagic = errors.New("the remote half did not start")

// ErrBannerTooLong is a BannerError's Err when the login printed more than MaxBanner bytes
// without the magic: whatever runs there is not a socketpipe remote half.
var ErrBannerTooLong = errors.New("too much output")

// A BannerError reports that the remote half never spoke; Banner holds the start of what the
// login printed instead, for the error message.
type BannerError struct {
	Banner []byte
	Err    error
}

func (e *BannerError) Error() string {
	if len(e.Banner) == 0 {
		return ErrNoMagic.Error()
	}
	q := strconv.Quote(trimBanner(e.Banner))
	if len(q) > 240 { // binary noise quotes to four times its size
		q = q[:240] + "..."
	}
	return fmt.Sprintf("%v (it printed %s)", ErrNoMagic, q)
}

// Unwrap returns the cause: the read's error, or ErrBannerTooLong.
func (e *BannerError) Unwrap() error { return e.Err }

// Is reports whether target is ErrNoMagic: every BannerError means the remote half never spoke.
func (e *BannerError) Is(target error) bool { return target == ErrNoMagic }

func trimBanner(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 200 {
		b = append(b[:200:200], "..."...)
	}
	return string(b)
}

// Conn is a control channel: framed messages over a byte stream, the login session's
// stdin and stdout. Writes are safe for concurrent use; reads are not.
type Conn struct {
	r        *bufio.Reader
	w        io.Writer
	wmu      sync.Mutex
	sentHead bool
	sawHead  bool
	hdr      [5]byte
	Banner   []byte // what preceded the magic, at most 4 KiB kept
}

// NewConn returns a control channel reading from r and writing to w.
func NewConn(r io.Reader, w io.Writer) *Conn {
	return &Conn{r: bufio.NewReaderSize(r, 64<<10), w: w}
}

// Send writes one control message.
func (c *Conn) Send(m *Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding %s message: %w", m.Type, err)
	}
	return c.WriteFrame(FrameJSON, b)
}

// WriteFrame writes one frame of the given type.
func (c *Conn) WriteFrame(typ byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var hdr [len(Magic) + 5]byte
	n := 0
	if !c.sentHead {
		n = copy(hdr[:], Magic)
	}
	hdr[n] = typ
	binary.BigEndian.PutUint32(hdr[n+1:], uint32(len(payload)))
	n += 5
	if len(payload) <= 4096 {
		// One write keeps a small message in one SSH packet.
		buf := make([]byte, 0, n+len(payload))
		buf = append(append(buf, hdr[:n]...), payload...)
		_, err := c.w.Write(buf)
		if err == nil {
			c.sentHead = true
		}
		return err
	}
	if _, err := c.w.Write(hdr[:n]); err != nil {
		return err
	}
	c.sentHead = true
	_, err := c.w.Write(payload)
	return err
}

// FrameHeader is the size of a frame header: type and length.
const FrameHeader = 5

// WriteFramed writes a frame whose first FrameHeader bytes are reserved for the header, which
// it fills in: the payload goes out in the same write, without a copy.
func (c *Conn) WriteFramed(typ byte, frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.sentHead {
		if _, err := io.WriteString(c.w, Magic); err != nil {
			return err
		}
		c.sentHead = true
	}
	frame[0] = typ
	binary.BigEndian.PutUint32(frame[1:FrameHeader], uint32(len(frame)-FrameHeader))
	_, err := c.w.Write(frame)
	return err
}

// skipBanner consumes everything up to and including the magic.
func (c *Conn) skipBanner() error {
	skipped := 0
	for {
		b, err := c.r.Peek(len(Magic))
		if len(b) == len(Magic) && string(b) == Magic {
			c.r.Discard(len(Magic))
			c.sawHead = true
			return nil
		}
		if err != nil {
			// Keep what we saw for the message, then report.
			rest, _ := c.r.Peek(c.r.Buffered())
			c.keepBanner(rest)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return &BannerError{Banner: c.Banner, Err: err}
		}
		// Skip to the next possible start of the magic.
		i := bytes.IndexByte(b[1:], Magic[0])
		adv := len(b)
		if i >= 0 {
			adv = i + 1
		}
		c.keepBanner(b[:adv])
		c.r.Discard(adv)
		skipped += adv
		if skipped > MaxBanner {
			return &BannerError{Banner: c.Banner, Err: ErrBannerTooLong}
		}
	}
}

func (c *Conn) keepBanner(b []byte) {
	if room := 4096 - len(c.Banner); room > 0 {
		if len(b) > room {
			b = b[:room]
		}
		c.Banner = append(c.Banner, b...)
	}
}

// ReadFrame reads the next frame header and returns its type and length; the payload must then
// be consumed with ReadPayload (or Discard) before the next ReadFrame.
func (c *Conn) ReadFrame() (typ byte, n int, err error) {
	if !c.sawHead {
		if err := c.skipBanner(); err != nil {
			return 0, 0, err
		}
	}
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		if err == io.EOF {
			return 0, 0, io.EOF
		}
		return 0, 0, fmt.Errorf("control channel: %w", err)
	}
	typ = c.hdr[0]
	size := binary.BigEndian.Uint32(c.hdr[1:])
	switch typ {
	case FrameJSON:
		if size > MaxControlFrame {
			return 0, 0, fmt.Errorf("control message of %d bytes exceeds the limit of %d", size, MaxControlFrame)
		}
	case FrameData:
		if size > MaxDataFrame {
			return 0, 0, fmt.Errorf("data frame of %d bytes exceeds the limit of %d", size, MaxDataFrame)
		}
	case FrameEOF:
		if size != 0 {
			return 0, 0, fmt.Errorf("end-of-data frame with %d bytes of payload", size)
		}
	default:
		return 0, 0, fmt.Errorf("unknown control frame type 0x%02x", typ)
	}
	return typ, int(size), nil
}

// ReadPayload reads exactly len(p) bytes of the current frame's payload.
func (c *Conn) ReadPayload(p []byte) error {
	if _, err := io.ReadFull(c.r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("control channel: %w", err)
	}
	return nil
}

// Reader returns the buffered reader under the frames, for relaying payloads without a copy.
func (c *Conn) Reader() *bufio.Reader { return c.r }

// DecodeMessage decodes the payload of a JSON frame.
func DecodeMessage(b []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("malformed control message: %w", err)
	}
	if m.Type == "" {
		return nil, errors.New("control message without a type")
	}
	return &m, nil
}

// Recv reads the next control message. A data frame where a message is expected is an error.
func (c *Conn) Recv() (*Message, error) {
	typ, n, err := c.ReadFrame()
	if err != nil {
		return nil, err
	}
	if typ != FrameJSON {
		return nil, fmt.Errorf("unexpected frame type %q where a control message was expected", typ)
	}
	b := make([]byte, n)
	if err := c.ReadPayload(b); err != nil {
		return nil, err
	}
	return DecodeMessage(b)
}
