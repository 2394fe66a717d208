package quote

import (
	"os/exec"
	"strings"
	"testing"
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

func TestPrintable(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain text", 100, "plain text"},
		{"\x1b]0;owned\x07title", 100, "?]0;owned?title"},
		{"bad \xff byte", 100, "bad ? byte"},
		{"abcdef", 3, "abc..."},
		{"ab\u00e9cd", 3, "ab..."}, // never cut inside a character
		{"line\nbreak\r", 100, "line?break?"},
	} {
		if got := Printable(c.in, c.max); got != c.want {
			t.Errorf("Printable(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
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
