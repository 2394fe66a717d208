package rendezvous

import (
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/internal/quote"
)

// RemoteError shows the other half's message as Printable makes it: no terminal escapes, and
// cut short.
func TestRemoteErrorPrintable(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"remote half: no data connection", 64, "remote half: no data connection"},
		{"evil\x1b[2J\x07bell", 64, `evil\033[2J\007bell`},
		{strings.Repeat("x", 600), 512, strings.Repeat("x", 512) + "..."},
		{"héllo", 2, "h..."},
		{"bad\xffutf8", 64, `bad\377utf8`},
	}
	for _, tt := range tests {
		if got := quote.Printable(tt.in, tt.max); got != tt.want {
			t.Errorf("Printable(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
	if got := (&RemoteError{Msg: strings.Repeat("y", 1<<20)}).Error(); len(got) > 520 {
		t.Errorf("a remote error of 1 MiB prints %d bytes", len(got))
	}
}
