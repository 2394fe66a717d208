package quote

import (
	"os/exec"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestWord(t *testing.T) {
	if got := Word("a\x1b[2J"); got != `"a\x1b[2J"` {
		t.Errorf("Word = %s", got)
	}
	long := strings.Repeat("x", 100)
	if got := Word(long); got != `"`+long[:64]+`"...` {
		t.Errorf("Word(100 x) = %s", got)
	}
}

// Printable escapes as ssh escapes a server's text: every byte of a control character or of
// invalid UTF-8 as a backslash and three octal digits, printable characters as they are.
func TestPrintable(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain text", 100, "plain text"},
		{"\x1b]0;owned\x07title", 100, `\033]0;owned\007title`}, // OSC: sets the window title
		{"\x1b[2J\x1b[31mred", 100, `\033[2J\033[31mred`},       // CSI: clears the screen
		{"c1 \u009b2J csi", 100, `c1 \302\2332J csi`},           // the 8-bit CSI, U+009B
		{"c1 \u0085 nel", 100, `c1 \302\205 nel`},
		{"del\x7f", 100, `del\177`},
		{"bad \xff byte", 100, `bad \377 byte`},
		{"cut \xe2\x82 short", 100, `cut \342\202 short`}, // a character's first bytes only
		{"surrogate \xed\xa0\x80", 100, `surrogate \355\240\200`},
		{"nul\x00", 100, `nul\000`},
		{"abcdef", 3, "abc..."},
		{"ab\u00e9cd", 3, "ab..."}, // never cut inside a character
		{"ab\x1bcd", 5, "ab..."},   // nor inside an escape
		{"line\nbreak\r\ttab", 100, `line\012break\015\011tab`},
		{"caf\u00e9 \u65e5\u672c \U0001F600 \ufffd", 100, "caf\u00e9 \u65e5\u672c \U0001F600 \ufffd"},
		{"\u202eevil\u202c", 100, `\342\200\256evil\342\200\254`}, // right-to-left override
		{`back\slash \033`, 100, `back\slash \033`},
	} {
		if got := Printable(c.in, c.max); got != c.want {
			t.Errorf("Printable(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

// PrintableText keeps a banner's line breaks and tabs, as ssh does, and escapes the rest.
func TestPrintableText(t *testing.T) {
	for _, c := range []struct {
		in, want string
	}{
		{"Welcome\r\n\tto the host\n", "Welcome\r\n\tto the host\n"},
		{"\x1b[2J\x1b[Hfake prompt\n", `\033[2J\033[Hfake prompt` + "\n"},
		{"\x1b]52;c;cGF3bmVk\x07", `\033]52;c;cGF3bmVk\007`}, // OSC 52 writes the clipboard
		{"\x9b31m\n", `\233` + "31m\n"},
		{"\u0090q\u009c", `\302\220q\302\234`}, // C1 DCS ... ST
		{"\b\v\f", `\010\013\014`},
	} {
		if got := PrintableText(c.in, 1000); got != c.want {
			t.Errorf("PrintableText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := PrintableText(strings.Repeat("\x1b", 1<<20), 4096); len(got) > 4096+3 || !strings.HasSuffix(got, "...") {
		t.Errorf("1 MiB of ESC made %d bytes", len(got))
	}
}

// FuzzPrintable: whatever the other host sends, what reaches the terminal is valid UTF-8 with
// no control character, within the bound, and escaping it again changes nothing.
func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[2J", "\xff\xfe", "\u009b", "\u202e", "a\nb"} {
		f.Add(s, 64)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		for _, lines := range []bool{false, true} {
			got := printable(s, max, lines)
			if len(got) > max+3 || !utf8.ValidString(got) {
				t.Fatalf("printable(%q, %d, %v) = %q", s, max, lines, got)
			}
			for _, r := range got {
				if unicode.IsControl(r) && !(lines && (r == '\n' || r == '\r' || r == '\t')) ||
					unicode.Is(unicode.Bidi_Control, r) {
					t.Fatalf("printable(%q, %d, %v) = %q: it holds %U", s, max, lines, got, r)
				}
			}
			if again := printable(got, len(got), lines); again != got {
				t.Fatalf("printable of its own result %q changed it to %q", got, again)
			}
		}
	})
}

// TestShell runs each quoted word through a real sh and checks it arrives as one argument,
// byte for byte.
func TestShell(t *testing.T) {
	words := []string{"plain", "", "two words", "it's", `"double"`, "$HOME", "`id`", "a\nb", "*", "~", "-n", "back\\slash", "!bang"}
	for _, w := range words {
		out, err := exec.Command("sh", "-c", `printf '%s' `+Shell(w)).Output()
		if err != nil {
			t.Fatalf("sh with %s: %v", Shell(w), err)
		}
		if string(out) != w {
			t.Errorf("Shell(%q) = %s; sh gave %q", w, Shell(w), out)
		}
	}
	if got := Shell("/usr/bin/socketpipe"); got != "/usr/bin/socketpipe" {
		t.Errorf("a literal word is quoted: %s", got)
	}
}
