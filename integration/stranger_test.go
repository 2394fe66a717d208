//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// A gate holds one direction of the control channel until the test opens it, so that strangers
// can be put in front of a listener before the real peer can possibly arrive. It wraps the
// login command: gate.login(ssh...) is the -l block.
type gate struct {
	fifo, script string
}

// newGate makes a gate on the client-to-remote direction ("request": the remote half cannot
// read the request, so it cannot dial back) or on the remote-to-client one ("hello": the client
// cannot read the hello, so it cannot dial the remote half's listener).
func newGate(t *testing.T, direction string) *gate {
	t.Helper()
	dir := t.TempDir()
	g := &gate{fifo: filepath.Join(dir, "gate"), script: filepath.Join(dir, "gated-login")}
	if err := syscall.Mkfifo(g.fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	var body string
	switch direction {
	case "request":
		body = `{ read _ < "$fifo"; exec cat; } | "$@"`
	case "hello":
		body = `"$@" | { read _ < "$fifo"; exec cat; }`
	default:
		t.Fatalf("gate direction %q", direction)
	}
	script := "#!/bin/sh\nfifo=$1; shift\n" + body + "\n"
	if err := os.WriteFile(g.script, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return g
}

// login is the -l block running login through the gate.
func (g *gate) login(login []string) []string {
	return args("-l", "{", g.script, g.fifo, login, "}")
}

// open lets the control channel through.
func (g *gate) open(t *testing.T) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- os.WriteFile(g.fifo, []byte("go\n"), 0o600) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(runBound):
		t.Fatal("nobody read the gate")
	}
}

// lineWatcher collects a process's stderr and lets the test wait for a line.
type lineWatcher struct {
	mu      sync.Mutex
	buf     strings.Builder
	changed chan struct{}
	done    chan struct{}
}

func watchLines(r io.Reader) *lineWatcher {
	w := &lineWatcher{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			w.mu.Lock()
			w.buf.WriteString(sc.Text() + "\n")
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits up to within for match to find something in the text so far.
func (w *lineWatcher) waitFor(within time.Duration, match func(string) string) string {
	deadline := time.After(within)
	for {
		w.mu.Lock()
		s, changed := w.buf.String(), w.changed
		w.mu.Unlock()
		if m := match(s); m != "" {
			return m
		}
		select {
		case <-changed:
		case <-w.done:
			return match(w.String())
		case <-deadline:
			return ""
		}
	}
}

// proofHelloSize is the proof's hello ("SPD2", role, 16-byte nonce) and proofMACSize its MAC:
// all that a peer that cannot prove the secret may ever receive.
const (
	proofHelloSize = 4 + 1 + 16
	proofMACSize   = 32
)

// strangers are the hostile peers put in front of a listener: one silent, one sending garbage,
// one sending a well-formed hello and a wrong proof.
type strangers struct {
	silent, garbage, forger *harness.StrangerConn
}

func connectStrangers(t *testing.T, s *harness.Stranger, addr, peerRole string) *strangers {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var st strangers
	var err error
	if st.silent, err = s.Connect(ctx, addr); err != nil {
		t.Fatalf("stranger connecting to %s: %v", addr, err)
	}
	if st.garbage, err = s.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4096)
	rand.Read(junk)
	st.garbage.Send(junk)
	if st.forger, err = s.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	forged := make([]byte, 16+proofMACSize)
	rand.Read(forged)
	st.forger.Send(append([]byte("SPD2"+peerRole), forged...))
	t.Cleanup(func() {
		st.silent.Close()
		st.garbage.Close()
		st.forger.Close()
	})
	return &st
}

// check fails if a stranger got more than the proof's own bytes, and if the garbage or the
// forged proof was not hung up on.
func (st *strangers) check(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, c := range map[string]*harness.StrangerConn{"silent": st.silent, "garbage": st.garbage, "forger": st.forger} {
		var r harness.StrangerResult
		if name == "silent" {
			r = c.Result()
		} else {
			r = c.Wait(ctx)
			if !r.ClosedByPeer {
				t.Errorf("the %s stranger was not hung up on: %+v", name, r)
			}
		}
		if r.ReceivedN > proofHelloSize+proofMACSize || (len(r.Received) > 0 && !bytes.HasPrefix(r.Received, []byte("SPD2"))) {
			t.Errorf("the %s stranger received %d bytes: %q", name, r.ReceivedN, r.Received)
		}
	}
}

// TestStrangerAtConnectBack puts strangers on the client's connect-back listener before the
// remote half can dial it: they get nothing, and the real transfer goes through at once.
func TestStrangerAtConnectBack(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	g := newGate(t, "request")
	data := randomBytes(t, 4<<20)
	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	defer cancel()
	// -h makes the client listen before the login: -v says where.
	cmd := r.spCmd(ctx, args("-v", "-m", "back", "-h", "127.0.0.1", block("-i", "cat"),
		g.login(r.sshd.SSHArgs()), block("-r", "cat"), block("-o", "sha256sum"))...)
	cmd.Stdin = bytes.NewReader(data)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	errR, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := watchLines(errR)
	addr := lines.waitFor(60*time.Second, func(s string) string {
		if m := listenRE.FindStringSubmatch(s); m != nil {
			return m[1]
		}
		return ""
	})
	if addr == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("socketpipe -v never said where it listens:\n%s", lines)
	}
	st := connectStrangers(t, &harness.Stranger{}, addr, "S")
	released := time.Now()
	g.open(t)
	<-lines.done
	err = cmd.Wait()
	took := time.Since(released)
	if ctx.Err() != nil {
		t.Fatalf("no end within %v:\n%s", runBound, lines)
	}
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("exit %d:\n%s", code, lines)
	}
	if got := strings.Fields(stdout.String()); len(got) == 0 || got[0] != sum(data) {
		t.Fatalf("sha256 %q, want %s", stdout.String(), sum(data))
	}
	if m := chosenMode(lines.String()); m != "back" {
		t.Errorf("mode %q, want back:\n%s", m, lines)
	}
	// A listener that served its peers one at a time would wait out the silent stranger
	// (rendezvous.ProofTimeout, 5 s) before the real one.
	if took >= 5*time.Second {
		t.Errorf("the run took %v after the gate opened: the silent stranger delayed it", took)
	}
	st.check(t)
	r.noneLeft(t)
}
