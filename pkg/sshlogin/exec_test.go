package sshlogin

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeLogin writes a login command that runs its last argument with /bin/sh -c, as a remote
// shell would, and records its arguments.
func fakeLogin(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	args := filepath.Join(dir, "args")
	script := filepath.Join(dir, "login")
	body := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + args + "\nfor last; do :; done\nexec /bin/sh -c \"$last\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, args
}

func TestExecPath(t *testing.T) {
	login, argsFile := fakeLogin(t)
	c := Command([]string{login, "somehost"}, "echo hello; echo err >&2")
	out, stderr, err := run(t, c)
	if err != nil || out != "hello\n" || stderr != "err\n" {
		t.Fatalf("got %q %q %v", out, stderr, err)
	}
	if c.Native() || c.Client() != nil || c.LocalAddr() != nil {
		t.Error("exec path reports native")
	}
	b, _ := os.ReadFile(argsFile)
	if string(b) != "somehost\necho hello; echo err >&2\n" {
		t.Errorf("login args %q", b)
	}
}

func TestExecPathStatus(t *testing.T) {
	login, _ := fakeLogin(t)
	for _, tc := range []struct {
		cmd    string
		status int
		signal string
	}{
		{"exit 255", 255, ""},
		{"exit 3", 3, ""},
		{"kill -KILL $$", 128 + 9, "KILL"},
	} {
		_, _, err := run(t, Command([]string{login, "h"}, tc.cmd))
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Status != tc.status || ee.Signal != tc.signal {
			t.Errorf("%s: got %v (%+v)", tc.cmd, err, ee)
		}
	}
}

func TestExecPathPipes(t *testing.T) {
	login, _ := fakeLogin(t)
	c := Command([]string{login, "h"}, "tr a-z A-Z")
	in, _ := c.StdinPipe()
	out, _ := c.StdoutPipe()
	if err := c.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	go func() {
		io.WriteString(in, "shout")
		in.Close()
	}()
	b, _ := io.ReadAll(out)
	if err := c.Wait(); err != nil || string(b) != "SHOUT" {
		t.Fatalf("got %q, %v", b, err)
	}
}

func TestExecPathStdinNotTerminal(t *testing.T) {
	login, _ := fakeLogin(t)
	// With no Stdin, the login reads an empty input, never the caller's.
	out, _, err := run(t, Command([]string{login, "h"}, "wc -c"))
	if err != nil || strings.TrimSpace(out) != "0" {
		t.Fatalf("got %q, %v", out, err)
	}
}

func TestForceExec(t *testing.T) {
	dir := t.TempDir()
	fake, args := fakeLogin(t)
	ssh := filepath.Join(dir, "ssh")
	os.Symlink(fake, ssh)
	c := Command([]string{ssh, "host"}, "echo forced")
	c.ForceExec = true
	c.BatchMode = true
	out, _, err := run(t, c)
	if err != nil || out != "forced\n" || c.Native() {
		t.Fatalf("got %q, %v", out, err)
	}
	if b, _ := os.ReadFile(args); string(b) != "-oBatchMode=yes\nhost\necho forced\n" {
		t.Errorf("ssh got %q", b)
	}
}

func TestExecReasonWithoutSSH(t *testing.T) {
	h := newTestHome(t)
	t.Setenv("PATH", t.TempDir())
	c := Command([]string{"ssh", "-F", h.config, "-o", "ProxyCommand=nc %h %p", "host"}, "true")
	c.Env = &h.env
	_, _, err := run(t, c)
	if err == nil || !strings.Contains(err.Error(), "ProxyCommand") && !strings.Contains(err.Error(), "proxycommand") {
		t.Fatalf("got %v", err)
	}
}

func TestExecReasonRunsSSH(t *testing.T) {
	h := newTestHome(t)
	fake, args := fakeLogin(t)
	dir := t.TempDir()
	os.Symlink(fake, filepath.Join(dir, "ssh"))
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	var logs []string
	c := Command([]string{"ssh", "-F", h.config, "-o", "ProxyCommand=nc %h %p", "host"}, "echo via-ssh")
	c.Env = &h.env
	out, _, err := run(t, c)
	_ = logs
	if err != nil || out != "via-ssh\n" || c.Native() {
		t.Fatalf("got %q, %v", out, err)
	}
	b, _ := os.ReadFile(args)
	if !strings.Contains(string(b), "ProxyCommand=nc %h %p\nhost\necho via-ssh\n") {
		t.Errorf("args %q", b)
	}
}

// An executed ssh asked for a subsystem gets -s, and the subsystem's name as its last word.
func TestExecPathSubsystem(t *testing.T) {
	login, argsFile := fakeLogin(t)
	ssh := filepath.Join(filepath.Dir(login), "ssh")
	if err := os.Rename(login, ssh); err != nil {
		t.Fatal(err)
	}
	c := Command([]string{ssh, "-F", "cfg", "somehost"}, "true")
	c.Subsystem, c.ForceExec = true, true
	if _, _, err := run(t, c); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(argsFile); string(b) != "-s\n-F\ncfg\nsomehost\ntrue\n" {
		t.Errorf("login args %q", b)
	}
}
