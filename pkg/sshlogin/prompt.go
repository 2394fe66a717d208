package sshlogin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	"golang.org/x/term"
)

// errNoPrompt means a question could not be asked: BatchMode, or nowhere to ask it.
var errNoPrompt = errors.New("sshlogin: cannot prompt")

// defaultAskpass is OpenSSH's default SSH_ASKPASS program.
const defaultAskpass = "/usr/bin/ssh-askpass"

// prompter asks the user for secrets and answers as OpenSSH's read_passphrase does: on the
// terminal (/dev/tty), or through SSH_ASKPASS as SSH_ASKPASS_REQUIRE and DISPLAY say.
type prompter struct {
	env    Env
	batch  bool
	stderr io.Writer // for SSH_ASKPASS's messages
	mu     sync.Mutex
}

// askpassMode decides between the terminal and SSH_ASKPASS: use means try askpass first;
// allow means askpass may be used at all.
func (p *prompter) askpassMode() (use, allow bool) {
	allow = getenv(p.env, "DISPLAY") != "" || getenv(p.env, "WAYLAND_DISPLAY") != ""
	switch strings.ToLower(getenv(p.env, "SSH_ASKPASS_REQUIRE")) {
	case "force":
		return true, true
	case "prefer":
		return allow, allow
	case "never":
		return false, false
	}
	return false, allow
}

// secret asks a question whose answer is not echoed.
func (p *prompter) secret(prompt string) (string, error) {
	return p.ask(prompt, false)
}

// ask asks a question on the terminal or through SSH_ASKPASS.
func (p *prompter) ask(prompt string, echo bool) (string, error) {
	if p.batch {
		return "", fmt.Errorf("%w: BatchMode", errNoPrompt)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	use, allow := p.askpassMode()
	if use {
		return p.askpass(prompt)
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		if allow {
			return p.askpass(prompt)
		}
		return "", fmt.Errorf("%w: no terminal, and SSH_ASKPASS is not allowed (set DISPLAY or SSH_ASKPASS_REQUIRE=force)", errNoPrompt)
	}
	defer tty.Close()
	return readTTY(tty, prompt, echo)
}

// askTTY asks on the terminal only (host key confirmation).
func (p *prompter) askTTY(prompt string) (string, error) {
	if p.batch {
		return "", fmt.Errorf("%w: BatchMode", errNoPrompt)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("%w: no terminal", errNoPrompt)
	}
	defer tty.Close()
	return readTTY(tty, prompt, true)
}

func readTTY(tty *os.File, prompt string, echo bool) (string, error) {
	if _, err := tty.WriteString(prompt); err != nil {
		return "", err
	}
	if !echo {
		b, err := term.ReadPassword(int(tty.Fd()))
		tty.WriteString("\n")
		if err != nil {
			return "", fmt.Errorf("sshlogin: read from terminal: %w", err)
		}
		return string(b), nil
	}
	var line []byte
	buf := make([]byte, 1)
	for {
		n, err := tty.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			line = append(line, buf[0])
		}
		if err != nil {
			if len(line) > 0 {
				break
			}
			return "", fmt.Errorf("sshlogin: read from terminal: %w", err)
		}
	}
	return strings.TrimSuffix(string(line), "\r"), nil
}

// askpass runs SSH_ASKPASS with the prompt as its argument and reads the answer from its
// standard output; a non-zero exit is a refusal.
func (p *prompter) askpass(prompt string) (string, error) {
	prog := getenv(p.env, "SSH_ASKPASS")
	if prog == "" {
		prog = defaultAskpass
	}
	cmd := exec.Command(prog, prompt)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = p.stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("sshlogin: SSH_ASKPASS %s: %w", prog, err)
	}
	return strings.TrimRight(out.String(), "\r\n"), nil
}
