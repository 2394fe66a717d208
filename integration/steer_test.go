//go:build linux

package integration

// A remote half that names addresses for the client to dial: the client dials only the port
// of the host its login reached, a bounded number of times, and however many such messages
// come, SIGTERM still ends it at once.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// steeringHalf is a fake remote half whose hello names hello and which then sends a listen
// message for each of listens, and reads its input to the end.
func steeringHalf(t *testing.T, hello string, listens []string) string {
	t.Helper()
	var out strings.Builder
	out.WriteString(wire.Magic)
	msgs := []*wire.Message{{Type: wire.MsgHello, Version: "9.9", Protocol: wire.Protocol, PID: 1, Addr: hello}}
	for _, a := range listens {
		msgs = append(msgs, &wire.Message{Type: wire.MsgListen, Addr: a})
	}
	for _, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString(frame(wire.FrameJSON, string(b)))
	}
	return fakeHalf(t, t.TempDir(), "steering", out.String(), "read")
}

// TestRemoteHalfSteersDials: the hello names a silent port of the login's host and listen
// messages name another host and a dozen more ports, some twice. The client dials the login's
// host only, each address once and at most rendezvous.MaxReverseDials times, and says why it
// dials no more; the run ends when -t runs out.
func TestRemoteHalfSteersDials(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	host := strings.Split(r.sshd.Addr, ":")[0]
	first := harness.NewSilentListener(t, host)
	elsewhere := harness.NewSilentListener(t, "127.0.0.2") // not an address of the login's host
	var ls []*harness.SilentListener
	listens := []string{elsewhere.Addr()}
	for range 12 {
		l := harness.NewSilentListener(t, host)
		ls = append(ls, l)
		listens = append(listens, l.Addr(), l.Addr())
	}
	fake := steeringHalf(t, first.Addr(), listens)
	res := r.run(t, nil, args("-v", "-m", "reverse", "-t", "3", "--remote-path", fake, r.execLogin(),
		block("-r", "cat"), block("-o", "cat"))...)
	want(t, res, 2)
	mustContain(t, "stderr", res.stderr, "socketpipe: error: no data connection within 3s",
		"not dialling the remote half: the remote half listens at 127.0.0.2, which is not an address of",
		fmt.Sprintf("not dialling the remote half: the remote half names more than %d addresses", rendezvous.MaxReverseDials))
	if n := elsewhere.Count(); n != 0 {
		t.Errorf("another host than the login's got %d connections", n)
	}
	total := first.Count()
	for i, l := range ls {
		n := l.Count()
		if n > 1 {
			t.Errorf("port %d of the listen messages got %d connections, want at most 1", i, n)
		}
		total += n
	}
	if total != rendezvous.MaxReverseDials {
		t.Errorf("%d dials of the login's host, want %d:\n%s", total, rendezvous.MaxReverseDials, res.stderr)
	}
	r.noneLeft(t)
}

// TestListenFloodThenSIGTERM: eight listen messages at silent listeners, the client waiting
// forever (-t 0) while its dials hang in the proof; SIGTERM ends it within 10 s.
func TestListenFloodThenSIGTERM(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	host := strings.Split(r.sshd.Addr, ":")[0]
	var ls []*harness.SilentListener
	var listens []string
	for range 9 {
		l := harness.NewSilentListener(t, host)
		ls = append(ls, l)
		listens = append(listens, l.Addr())
	}
	fake := steeringHalf(t, listens[0], listens[1:])
	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	defer cancel()
	cmd := r.spCmd(ctx, args("-v", "-m", "reverse", "-t", "0", "--remote-path", fake, r.execLogin(),
		block("-r", "cat"), block("-o", "cat"))...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the real condition: the client dials the listen messages' ports.
	deadline := time.Now().Add(30 * time.Second)
	for !ls[1].Reached() {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the client never dialled the listen messages' ports:\n%s", stderr.Bytes())
		}
		time.Sleep(20 * time.Millisecond) // polling the condition itself, bounded by the deadline
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if code := exitCode(t, err); code != 128+int(syscall.SIGTERM) {
			t.Errorf("exit %d after SIGTERM, want %d:\n%s", code, 128+int(syscall.SIGTERM), stderr.Bytes())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("socketpipe did not exit within 10 s of SIGTERM:\n%s", stderr.Bytes())
	}
	r.noneLeft(t)
}
