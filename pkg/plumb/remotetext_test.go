package plumb

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/socketpipe/socketpipe/internal/wire"
)

// hostile is text a remote half could send to take over the user's terminal: ESC sequences
// (OSC sets the title, CSI clears the screen), the 8-bit CSI, a bell, invalid UTF-8, and far
// more of it than a line holds.
var hostile = "\x1b]0;owned\x07\x1b[2J\u009b31m\xff" + strings.Repeat("A", 4000)

// checkPrintable fails unless s holds no byte of hostile's controls and is no longer than max.
func checkPrintable(t *testing.T, what, s string, max int) {
	t.Helper()
	for _, raw := range []string{"\x1b", "\x07", "\u009b", "\n", "\r"} {
		if strings.Contains(s, raw) {
			t.Errorf("%s reaches the terminal with %q raw: %q", what, raw, s)
		}
	}
	if !utf8.ValidString(s) {
		t.Errorf("%s reaches the terminal as invalid UTF-8: %q", what, s)
	}
	if len(s) > max {
		t.Errorf("%s is %d bytes, want at most %d", what, len(s), max)
	}
}

// fakeRemote runs Client c against a remote half played by half, which gets the control
// channel with the request already read. It returns the Report, the error and the -v lines.
func fakeRemote(t *testing.T, c *Client, half func(ctl *wire.Conn, req *wire.Message)) (*Report, error, []string) {
	t.Helper()
	toServerR, toServerW, _ := os.Pipe()
	toClientR, toClientW, _ := os.Pipe()
	go func() {
		defer toClientW.Close()
		ctl := wire.NewConn(toServerR, toClientW)
		req, err := ctl.Recv()
		if err != nil {
			return
		}
		half(ctl, req)
		io.Copy(io.Discard, toServerR) // until the client closes the channel
	}()
	var mu sync.Mutex
	var logs []string
	c.Logf = func(format string, args ...any) {
		mu.Lock()
		logs = append(logs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := c.Run(ctx, toClientR, toServerW)
	toServerW.Close()
	toClientR.Close()
	mu.Lock()
	defer mu.Unlock()
	return rep, err, logs
}

// What the remote half says reaches the terminal escaped and cut short: its version and notes
// under -v, and the signal name in the status, which is printed even without -v.
func TestRemoteTextPrintable(t *testing.T) {
	out, _ := os.Create(t.TempDir() + "/out")
	defer out.Close()
	c := &Client{Remote: []string{"cat"}, Mode: "ssh", Stdout: out, Stderr: os.Stderr}
	rep, err, logs := fakeRemote(t, c, func(ctl *wire.Conn, req *wire.Message) {
		ctl.Send(&wire.Message{Type: wire.MsgHello, Version: "9.9" + hostile, Protocol: wire.Protocol, PID: 1})
		ctl.Send(&wire.Message{Type: wire.MsgNote, Note: hostile})
		ctl.WriteFrame(wire.FrameEOF, nil)
		ctl.Send(&wire.Message{Type: wire.MsgStatus, Exit: 137, Signal: "KILL" + hostile})
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkPrintable(t, "the remote version", rep.RemoteVersion, 64+3)
	if len(logs) < 2 {
		t.Fatalf("-v said only %q", logs)
	}
	for _, l := range logs {
		checkPrintable(t, "a -v line", l, 600)
	}
	serr := rep.StageError()
	if serr == nil {
		t.Fatal("no stage error for a remote command killed by a signal")
	}
	checkPrintable(t, "the status's signal", serr.Error(), 100)
	if !strings.Contains(serr.Error(), `SIGKILL\033]0;owned\007`) {
		t.Errorf("the signal is not shown escaped: %s", serr)
	}
}

// The remote half's notes while the data connection is made (-v, and the reasons an error
// names) are escaped too, and so is the way of connecting they are about.
func TestRemoteRendezvousNotePrintable(t *testing.T) {
	c := &Client{Remote: []string{"cat"}, Mode: "back", Output: []string{"true"}, Timeout: 10 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	_, err, logs := fakeRemote(t, c, func(ctl *wire.Conn, req *wire.Message) {
		ctl.Send(&wire.Message{Type: wire.MsgHello, Version: "1", Protocol: wire.Protocol, PID: 1})
		ctl.Send(&wire.Message{Type: wire.MsgNote, Mode: "back" + hostile, Note: hostile})
		ctl.Send(&wire.Message{Type: wire.MsgNote, Note: hostile})
		ctl.Send(&wire.Message{Type: wire.MsgError, Error: hostile})
	})
	if err == nil {
		t.Fatal("Run succeeded after the remote half's error")
	}
	checkPrintable(t, "the remote error", err.Error(), 600)
	n := 0
	for _, l := range logs {
		if strings.HasPrefix(l, "remote: ") {
			n++
			checkPrintable(t, "a note", l, 600)
		}
	}
	if n != 2 {
		t.Errorf("-v showed %d of the 2 notes: %q", n, logs)
	}
}

// A stage's end is described with the remote half's words escaped.
func TestStageDescribePrintable(t *testing.T) {
	for _, s := range []*Stage{
		{Name: StageRemote, Argv: []string{"dd"}, Exit: 1, Err: hostile},
		{Name: StageRemote, Argv: []string{"dd"}, Exit: 137, Signal: hostile},
	} {
		checkPrintable(t, "describe", s.describe(), 600)
	}
	s := &Stage{Name: StageRemote, Argv: []string{"dd"}, Exit: 141, Signal: "PIPE"}
	if got := s.describe(); got != `remote command "dd" was killed by SIGPIPE` {
		t.Errorf("describe = %q", got)
	}
}
