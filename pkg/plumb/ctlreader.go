package plumb

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// ctlReader reads the control channel in the background: control messages go to msgs (closed
// when the channel ends, err then says why), data frames of ssh mode to the sink.
type ctlReader struct {
	conn *rendezvous.Conn
	msgs chan *rendezvous.Message
	err  error // valid once msgs is closed

	sinkMu    sync.Mutex
	sinkReady chan struct{}
	sink      *os.File // where ssh-mode data goes; closed at the E frame
	received  func(int)
	broken    func()
	dataEnded chan struct{} // closed at the E frame
}

func newCtlReader(conn *rendezvous.Conn) *ctlReader {
	r := &ctlReader{
		conn:      conn,
		msgs:      make(chan *rendezvous.Message, 16),
		sinkReady: make(chan struct{}),
		dataEnded: make(chan struct{}),
	}
	go r.loop()
	return r
}

// setSink gives the reader the file that ssh-mode data is written to; it closes it at the end
// of the data.
func (r *ctlReader) setSink(f *os.File, counted func(int), broken func()) {
	r.sinkMu.Lock()
	r.sink, r.received, r.broken = f, counted, broken
	r.sinkMu.Unlock()
	close(r.sinkReady)
}

func (r *ctlReader) loop() {
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
		switch typ {
		case rendezvous.FrameJSON:
			b := make([]byte, n)
			if err := r.conn.ReadPayload(b); err != nil {
				r.err = err
				return
			}
			m, err := rendezvous.DecodeMessage(b)
			if err != nil {
				r.err = err
				return
			}
			r.msgs <- m
		case rendezvous.FrameData:
			<-r.sinkReady
			if buf == nil {
				buf = make([]byte, rendezvous.MaxDataFrame)
			}
			if err := r.conn.ReadPayload(buf[:n]); err != nil {
				r.err = err
				return
			}
			if sinkBroken {
				continue // the reader went away; keep reading control messages
			}
			if _, err := r.sink.Write(buf[:n]); err != nil {
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
		case rendezvous.FrameEOF:
			<-r.sinkReady
			if !sinkBroken {
				r.sink.Close()
			}
			select {
			case <-r.dataEnded:
				r.err = fmt.Errorf("rendezvous: second end-of-data frame")
				return
			default:
				close(r.dataEnded)
			}
		}
	}
}
