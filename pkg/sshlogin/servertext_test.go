package sshlogin

import (
	"strings"
	"testing"
)

// hostile is what a server could send to take over the user's terminal: ESC sequences (OSC
// sets the title, OSC 52 writes the clipboard, CSI clears the screen), the 8-bit CSI, a bell
// and invalid UTF-8, between lines that must stay lines.
const hostile = "Welcome\r\n\x1b]0;owned\x07\x1b]52;c;cGF3bmVk\x07\x1b[2J\u009b31m\xff\tend\n"

// escaped is hostile as ssh shows it: each byte of a control character or of invalid UTF-8 as
// \ooo, line breaks and tabs as they are.
const escaped = "Welcome\r\n\\033]0;owned\\007\\033]52;c;cGF3bmVk\\007\\033[2J\\302\\23331m\\377\tend\n"

// The server's banner reaches the terminal as ssh shows it.
func TestBannerEscaped(t *testing.T) {
	s := newTestServer(t)
	s.set(func() { s.banner = hostile })
	h := newTestHome(t)
	h.trust(s)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)
	out, stderr, err := run(t, h.command(s, "echo hi"))
	if err != nil || out != "hi\n" {
		t.Fatalf("got %q, %v; stderr %q", out, err, stderr)
	}
	if !strings.Contains(stderr, escaped) || strings.Contains(stderr, "\x1b") {
		t.Errorf("the banner reached the terminal as %q, want %q", stderr, escaped)
	}
	// ssh -q shows no banner, escaped or not.
	_, stderr, _ = run(t, h.command(s, "echo hi", "-q"))
	if strings.Contains(stderr, "Welcome") {
		t.Errorf("ssh -q showed the banner: %q", stderr)
	}
}

// A server's exit-signal name and message are shown escaped.
func TestExitErrorEscaped(t *testing.T) {
	e := &ExitError{Status: 137, Signal: "KILL\x1b[2J", Msg: "core\x1b]0;owned\x07" + strings.Repeat("x", 2000)}
	got := e.Error()
	if strings.ContainsAny(got, "\x1b\x07") || len(got) > 600 || !strings.HasPrefix(got, `remote command killed by signal KILL\033[2J: core\033]0;owned\007`) {
		t.Errorf("ExitError = %q", got)
	}
}
