package stripe

import (
	"fmt"
	"io"
	"testing"
)

// BenchmarkStripe sends over loopback TCP through ReadFrom and WriteTo, by
// connections and chunk size.
func BenchmarkStripe(b *testing.B) {
	for _, conns := range []int{1, 4, 8} {
		for _, chunk := range []int{128 << 10, 256 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("streams=%d/chunk=%dK", conns, chunk>>10), func(b *testing.B) {
				ws, rs := pipes(b, "tcp", conns)
				w := newWriter(ws, chunk)
				r := NewReader(rs)
				defer r.Close()
				const step = 1 << 20
				b.SetBytes(step)
				b.ReportAllocs()
				received := make(chan error, 1)
				go func() {
					_, err := r.WriteTo(io.Discard)
					received <- err
				}()
				b.ResetTimer()
				if _, err := w.ReadFrom(&pattern{n: b.N * step}); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				if err := <-received; err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
