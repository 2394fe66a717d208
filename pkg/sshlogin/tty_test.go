package sshlogin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/socketpipe/socketpipe/internal/testenv"
	"github.com/socketpipe/socketpipe/pkg/sshconfig"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// TestTerminalPrompts answers the host key question and the passphrase prompt on a real
// terminal: the test binary runs itself in a new session whose controlling terminal is a pty.
func TestTerminalPrompts(t *testing.T) {
	if os.Getenv("SP_TTY_HELPER") != "" {
		ttyHelper()
		return
	}
	s := newTestServer(t)
	h := newTestHome(t)
	_, pub, file := h.key("id_ed25519", "pass phrase")
	s.authorize(pub)

	cmd := exec.Command(os.Args[0], "-test.run=^TestTerminalPrompts$")
	cmd.Env = append(os.Environ(), "SP_TTY_HELPER=1", "SP_HOME="+h.dir,
		"SP_LOGIN="+strings.Join(h.login(s), "\x1f"))
	f, err := pty.Start(cmd)
	testenv.Need(t, "a pty", err)
	defer f.Close()
	seen, expect := watchTerminal(t, f)
	// Type a secret only once the prompt has turned echo off, as a person would.
	typeSecret := func(secret string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			tio, err := unix.IoctlGetTermios(int(f.Fd()), ioctlGetTermios)
			if err != nil {
				t.Fatal(err)
			}
			if tio.Lflag&unix.ECHO == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("echo never turned off")
			}
			time.Sleep(5 * time.Millisecond)
		}
		io.WriteString(f, secret+"\n")
	}
	fp := ssh.FingerprintSHA256(s.hostKey.PublicKey())
	expect("ED25519 key fingerprint is " + fp + ".")
	expect("Are you sure you want to continue connecting (yes/no/[fingerprint])? ")
	io.WriteString(f, "maybe\n")
	expect("Please type 'yes', 'no' or the fingerprint: ")
	io.WriteString(f, fp+"\n")
	expect("Enter passphrase for key '" + file + "': ")
	typeSecret("wrong")
	expect("Bad passphrase, try again for " + file + ": ")
	typeSecret("pass phrase")
	expect("HELPER OK: tty")
	if strings.Contains(seen.String(), "pass phrase") {
		t.Error("the passphrase was echoed")
	}
	cmd.Wait()
	b, _ := os.ReadFile(h.knownHosts)
	if !strings.Contains(string(b), string(ssh.MarshalAuthorizedKey(s.hostKey.PublicKey()))[:40]) {
		t.Errorf("known_hosts %q", b)
	}
}

// watchTerminal reads what the pty f shows into seen; expect waits (60 s at most) until seen
// holds s, and fails the test if the terminal closes first.
func watchTerminal(t *testing.T, f *os.File) (seen *bytes.Buffer, expect func(s string)) {
	out := make(chan []byte)
	go func() {
		defer close(out)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			if n > 0 {
				out <- bytes.Clone(b[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	seen = new(bytes.Buffer)
	return seen, func(s string) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for !strings.Contains(seen.String(), s) {
			select {
			case b, ok := <-out:
				if !ok {
					t.Fatalf("terminal closed before %q; got:\n%s", s, seen.String())
				}
				seen.Write(b)
			case <-deadline:
				t.Fatalf("no %q on the terminal; got:\n%s", s, seen.String())
			}
		}
	}
}

// TestTerminalPromptCancel ends the context while the passphrase prompt waits: Start
// returns and the terminal has its echo back before the process goes on.
func TestTerminalPromptCancel(t *testing.T) {
	if os.Getenv("SP_TTY_HELPER") != "" {
		ttyHelper()
		return
	}
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, pub, file := h.key("id_ed25519", "pass phrase")
	s.authorize(pub)
	cmd := exec.Command(os.Args[0], "-test.run=^TestTerminalPromptCancel$")
	cmd.Env = append(os.Environ(), "SP_TTY_HELPER=cancel", "SP_HOME="+h.dir,
		"SP_LOGIN="+strings.Join(h.login(s), "\x1f"))
	f, err := pty.Start(cmd)
	testenv.Need(t, "a pty", err)
	defer f.Close()
	var seen bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(&seen, f)
		close(done)
	}()
	cmd.Wait()
	<-done
	out := seen.String()
	if !strings.Contains(out, "Enter passphrase for key '"+file+"': ") || !strings.Contains(out, "HELPER FAILED") ||
		!strings.Contains(out, "deadline exceeded") {
		t.Fatalf("terminal:\n%s", out)
	}
	if !strings.Contains(out, "ECHO ON") {
		t.Errorf("the terminal was left without echo:\n%s", out)
	}
}

func ttyHelper() {
	env := sshconfig.DefaultEnv()
	env.Home = os.Getenv("SP_HOME")
	for _, v := range []string{"SSH_AUTH_SOCK", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY"} {
		os.Unsetenv(v)
	}
	c := Command(strings.Split(os.Getenv("SP_LOGIN"), "\x1f"), "echo tty")
	c.Env = &env
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, os.Stderr
	timeout := 60 * time.Second
	if os.Getenv("SP_TTY_HELPER") == "cancel" {
		timeout = 500 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.Run(ctx); err != nil {
		fmt.Println("HELPER FAILED:", err)
		if tty, err := os.Open("/dev/tty"); err == nil {
			if tio, err := unix.IoctlGetTermios(int(tty.Fd()), ioctlGetTermios); err == nil && tio.Lflag&unix.ECHO != 0 {
				fmt.Println("ECHO ON")
			}
		}
		os.Exit(1)
	}
	fmt.Printf("HELPER OK: %s", out.String())
	os.Exit(0)
}
