package stripe

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// FuzzReader: arbitrary bytes on one to three connections never panic, never
// hang, and never yield more than the frames carried.
func FuzzReader(f *testing.F) {
	var fr frames
	f.Add(append([]byte{0}, fr.data(0, 5).end(1, 5)...))
	f.Add(append(append([]byte{1}, fr.data(0, 5).data(2, 3).end(3, 12)...), fr.data(1, 4).end(3, 12)...))
	f.Add(append([]byte{2}, fr.end(0, 0)...))
	f.Add(append([]byte{1}, fr.data(1, 5).data(0, 5)...))
	f.Add([]byte{0, 9, 9, 9})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 || len(in) > 1<<16 {
			return
		}
		n := 1 + int(in[0]%3)
		body := in[1:]
		rs := make([]io.Reader, n)
		for i := range n {
			rs[i] = bytes.NewReader(body[i*len(body)/n : (i+1)*len(body)/n])
		}
		// A small window, so that connections also wait for room.
		r := newReader(rs, 8<<10)
		defer r.Close()
		done := make(chan struct{})
		var out bytes.Buffer
		var err error
		go func() {
			_, err = r.WriteTo(&out)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the reader hung on connections that all end")
		}
		if carried := len(body) - headerSize; out.Len() > max(carried, 0) {
			t.Fatalf("read %d bytes from %d bytes of frames", out.Len(), len(body))
		}
		if err != nil {
			if _, ok := err.(*StreamError); !ok {
				t.Fatalf("error %v (%T), want a *StreamError", err, err)
			}
		}
	})
}
