package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe"
)

// Every line socketpipe prints of a failure is printable, whatever words of the remote host
// a library's error carried (here a server's disconnect reason inside an SSH error): each is
// one line, with its controls escaped, and text already escaped stays as it is.
func TestReportPrintable(t *testing.T) {
	var b strings.Builder
	cause := errors.New("ssh: disconnect, reason 2: bye\x1b]0;owned\x07\nsocketpipe: error: forged")
	status := report(&b, &socketpipe.Error{Msg: "login failed: " + cause.Error() + ` (already \033 escaped)`,
		Hints: []string{"hint\x1b[2J"}, Status: 2, Err: cause})
	want := "socketpipe: error: login failed: ssh: disconnect, reason 2: bye\\033]0;owned\\007\\012socketpipe: error: forged (already \\033 escaped)\n" +
		"socketpipe: hint: hint\\033[2J\n"
	if status != 2 || b.String() != want {
		t.Errorf("report printed (status %d)\n%q\nwant\n%q", status, b.String(), want)
	}
	b.Reset()
	report(&b, &socketpipe.Error{Msg: "Could not resolve hostname \x1b[31mx", Status: 255, Err: &sshVoice{errors.New("x")}})
	if b.String() != "ssh: Could not resolve hostname \\033[31mx\n" {
		t.Errorf("in ssh's voice: %q", b.String())
	}
}

// A -v line is printable too: one line, its controls escaped.
func TestLoggerPrintable(t *testing.T) {
	var b strings.Builder
	logger(&b, 1)("remote said %s", "hi\x1b]0;owned\x07\nsocketpipe: error: forged")
	if got := b.String(); strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "] remote said hi\\033]0;owned\\007\\012socketpipe: error: forged\n") {
		t.Errorf("-v printed %q", got)
	}
}
