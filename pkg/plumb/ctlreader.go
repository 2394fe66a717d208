package plumb

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// ctlReader reads the control channel in the background: control messages go to msgs (closed
// when the channel ends, err then says why), data frames of ssh mode to the sink.
type ctlReader struct {
	conn *wire.Conn
	msgs chan *wire.Message
	err  error // valid once msgs is closed

	sinkMu    sync.Mutex
	sinkReady chan struct{}
	sink      *os.File  // where ssh-mode data goes; closed at the E frame
	sinkIO    io.Writer // writes to sink by the relay's rules (relay.go)
	received  func(int)
	broken    func()
	dataEnded chan struct{} // closed at the E frame

	heard   atomic.Int64  // when the last frame came (UnixNano), for the heartbeat
	busy    atomic.Bool   // blocked writing data to the sink: our stall, not the peer's silence
	closed  chan struct{} // closed when the channel has ended
	silence time.Duration // how long a silent peer is given, once heartbeat has started
}

func newCtlReader(conn *wire.Conn) *ctlReader {
	r := &ctlReader{
		conn:      conn,
		msgs:      make(chan *wire.Message, 16),
		sinkReady: make(chan struct{}),
		dataEnded: make(chan struct{}),
		closed:    make(chan struct{}),
	}
	r.heard.Store(time.Now().UnixNano())
	go r.loop()
	return r
}

// setSink gives the reader the file that ssh-mode data is written to; it closes it at the end
// of the data.
func (r *ctlReader) setSink(f *os.File, counted func(int), broken func()) {
	r.sinkMu.Lock()
	r.sink, r.sinkIO, r.received, r.broken = f, newEndIO(f), counted, broken
	r.sinkMu.Unlock()
	close(r.sinkReady)
}

func (r *ctlReader) loop() {
	defer close(r.closed)
	defer close(r.msgs)
	var buf []byte
	sinkBroken := false
	for {
		typ, n, err := r.conn.ReadFrame()
		if err != nil {
			if err != io.EOF {
				r.err = err
			}
			return
		}
		r.heard.Store(time.Now().UnixNano())
		switch typ {
		case wire.FrameJSON:
			b := make([]byte, n)
			if err := r.conn.ReadPayload(b); err != nil {
				r.err = err
				return
			}
			m, err := wire.DecodeMessage(b)
			if err != nil {
				r.err = err
				return
			}
			if m.Type == wire.MsgPing {
				continue
			}
			r.msgs <- m
		case wire.FrameData:
			<-r.sinkReady
			if buf == nil {
				buf = make([]byte, wire.MaxDataFrame)
			}
			if err := r.conn.ReadPayload(buf[:n]); err != nil {
				r.err = err
				return
			}
			if sinkBroken {
				continue // the reader went away; keep reading control messages
			}
			r.busy.Store(true)
			_, err := r.sinkIO.Write(buf[:n])
			r.heard.Store(time.Now().UnixNano())
			r.busy.Store(false)
			if err != nil {
				sinkBroken = true
				r.sink.Close()
				if r.broken != nil {
					r.broken()
				}
				continue
			}
			if r.received != nil {
				r.received(n)
			}
		case wire.FrameEOF:
			<-r.sinkReady
			if !sinkBroken {
				r.sink.Close()
			}
			select {
			case <-r.dataEnded:
				r.err = fmt.Errorf("second end-of-data frame")
				return
			default:
				close(r.dataEnded)
			}
		}
	}
}

// heartbeat sends the peer a ping every interval and closes the returned channel when the peer
// has said nothing for rendezvous.PingDeadAfter(interval) while we were ready to read; stop
// ends it. With interval 0 (a peer without pings) the channel never closes.
func (r *ctlReader) heartbeat(interval time.Duration) (dead <-chan struct{}, stop func()) {
	if interval <= 0 {
		return nil, func() {}
	}
	deadCh := make(chan struct{})
	done := make(chan struct{})
	var once sync.Once
	after := rendezvous.PingDeadAfter(interval)
	r.silence = after
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		sending := make(chan struct{}, 1)
		for {
			select {
			case <-done:
				return
			case <-r.closed:
				return // the channel's end is reported on its own
			case <-t.C:
			}
			select {
			case sending <- struct{}{}:
				// A write into a dead link may block until the channel is closed.
				go func() {
					r.conn.Send(&wire.Message{Type: wire.MsgPing})
					<-sending
				}()
			default:
			}
			if !r.busy.Load() && time.Since(time.Unix(0, r.heard.Load())) > after {
				close(deadCh)
				return
			}
		}
	}()
	return deadCh, func() { once.Do(func() { close(done) }) }
}
