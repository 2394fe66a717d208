package sshlogin

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/pkg/sshconfig"
)

// hermetic gives c the test home (Resolve takes the home from the password database).
func (h *testHome) hermetic(c *Cmd) *Cmd {
	env := sshconfig.DefaultEnv()
	env.Home = h.dir
	env.Getenv = os.Getenv
	c.Env = &env
	return c
}

func TestNativeCommandAndSessions(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, pub, _ := h.key("id_ed25519", "")
	s.authorize(pub)

	login := h.hermetic(Command(h.login(s, "-o", "SetEnv=SP_A=1"), "echo from-command"))
	login.NativeCommand = func() (string, error) { return "wait", nil }
	login.Logf = t.Logf
	in, err := login.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := login.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}

	run := func(command string) (string, error) {
		t.Helper()
		c, err := login.Session(command)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		c.Stdout = &out
		err = c.Run(testCtx(t))
		if started := c.run != nil; started && (!c.Native() || c.RemoteAddr() == nil) {
			t.Errorf("session: Native %v, RemoteAddr %v", c.Native(), c.RemoteAddr())
		}
		return out.String(), err
	}
	if out, err := run("echo second"); err != nil || out != "second\n" {
		t.Fatalf("second session: %q, %v", out, err)
	}
	var ee *ExitError
	if _, err := run("exit 3"); !errors.As(err, &ee) || ee.Status != 3 {
		t.Fatalf("a session's exit status: %v", err)
	}
	if out, err := run("env"); err != nil || !strings.Contains(out, "SP_A=1\n") {
		t.Fatalf("a session lacks the login's SetEnv: %q, %v", out, err)
	}
	if n := s.logins.Load(); n != 1 {
		t.Errorf("%d logins for three sessions, want 1", n)
	}

	// The first session ("wait", from NativeCommand) outlived the others.
	in.Close()
	if err := login.Wait(); err != nil {
		t.Fatalf("the login's own session: %v", err)
	}
	if _, err := login.Session("echo late"); err != nil {
		t.Fatal(err)
	} else if _, err := run("echo late"); err == nil {
		t.Fatal("a session after the login's Wait (which closes the connection) started")
	}
}

func TestSessionNeedsNativeLogin(t *testing.T) {
	c := Command([]string{"/bin/sh", "-c"}, "true")
	if _, err := c.Session("true"); err == nil {
		t.Fatal("Session before Start succeeded")
	}
	c.Stdout = io.Discard
	if err := c.Run(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Session("true"); err == nil {
		t.Fatal("Session on the exec path succeeded")
	}
}
