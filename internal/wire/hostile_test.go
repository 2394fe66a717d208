package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/internal/quote"
)

func hdr(typ byte, n uint32) string {
	var b [5]byte
	b[0] = typ
	binary.BigEndian.PutUint32(b[1:], n)
	return string(b[:])
}

// endless is a reader that never ends: a peer that keeps talking.
type endless struct{ b byte }

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.b
	}
	return len(p), nil
}

// TestHostilePeerFrames feeds a control channel what a malicious or broken peer might send:
// each ends in a clear error, without a panic and without allocating what the peer claims.
func TestHostilePeerFrames(t *testing.T) {
	tests := []struct {
		name string
		in   io.Reader
		want string
	}{
		{"oversized-json", strings.NewReader(Magic + hdr(FrameJSON, 0xffffffff)), "exceeds the limit"},
		{"oversized-data", strings.NewReader(Magic + hdr(FrameData, MaxDataFrame+1)), "exceeds the limit"},
		{"eof-with-payload", strings.NewReader(Magic + hdr(FrameEOF, 3) + "abc"), "end-of-data frame with 3 bytes"},
		{"unknown-type", strings.NewReader(Magic + hdr(0, 0)), "unknown control frame type 0x00"},
		{"truncated-header", strings.NewReader(Magic + "J\x00\x00"), "unexpected EOF"},
		{"truncated-payload", strings.NewReader(Magic + hdr(FrameJSON, 100) + `{"type":`), "unexpected EOF"},
		{"not-json", strings.NewReader(Magic + hdr(FrameJSON, 5) + "\xff\xfe\x00\x01\x02"), "malformed control message"},
		{"json-array", strings.NewReader(Magic + hdr(FrameJSON, 2) + "[]"), "malformed control message"},
		{"wrong-field-types", strings.NewReader(Magic + hdr(FrameJSON, 30) + `{"type":"hello","protocol":"x"}`[:30]), "malformed control message"},
		{"no-type", strings.NewReader(Magic + hdr(FrameJSON, 2) + "{}"), "without a type"},
		{"data-for-message", strings.NewReader(Magic + hdr(FrameData, 1) + "x"), "unexpected frame type"},
		{"no-magic", strings.NewReader("just a login banner\n"), "did not start"},
		{"endless-noise", io.LimitReader(endless{'x'}, 64<<20), "did not start"},
		{"endless-near-magic", io.LimitReader(endless{0}, 64<<20), "did not start"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			c := NewConn(tc.in, io.Discard)
			m, err := c.Recv()
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("accepted %+v", m)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if len(err.Error()) > 400 {
				t.Errorf("an error of %d bytes", len(err.Error()))
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
				t.Errorf("reading it allocated %d bytes", grew)
			}
			var be *BannerError
			if errors.As(err, &be) && len(be.Banner) > 4096 {
				t.Errorf("kept %d bytes of banner", len(be.Banner))
			}
		})
	}
}

// TestHostileJSONValues: well-formed messages with hostile values decode without surprises;
// what a half does with them is checked where it is used.
func TestHostileJSONValues(t *testing.T) {
	big := strings.Repeat("A", MaxControlFrame-64)
	for _, payload := range []string{
		`{"type":"` + big + `"}`,
		`{"type":"hello","protocol":-1,"pid":-5,"version":"` + "\\u0000\\n" + `"}`,
		`{"type":"status","exit":99999999999999999999}`,
		`{"type":"request","argv":[],"secret":"!!notbase64"}`,
		`{"type":"hello","type":"request"}`,
	} {
		var buf bytes.Buffer
		buf.WriteString(Magic + hdr(FrameJSON, uint32(len(payload))) + payload)
		c := NewConn(&buf, io.Discard)
		m, err := c.Recv()
		if err == nil && m.Type == "" {
			t.Errorf("%.60s: a message without a type", payload)
		}
		if err != nil && len(err.Error()) > 400 {
			t.Errorf("%.60s: an error of %d bytes", payload, len(err.Error()))
		}
	}
	if q := quote.Word(big); len(q) > 80 {
		t.Errorf("Quote of a long word is %d bytes", len(q))
	}
}
