package sshlogin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/pkg/sshconfig"
	"golang.org/x/sys/unix"
)

// serverText is a server's words (its banner; a keyboard-interactive name, instruction and
// prompt) as they are shown: escaped as ssh escapes them, line breaks and tabs kept, and at
// most 64 KiB, where ssh sets no bound.
func serverText(s string) string { return quote.PrintableText(s, 64<<10) }

// errNoPrompt means a question could not be asked: BatchMode, or nowhere to ask it.
var errNoPrompt = errors.New("cannot prompt")

// defaultAskpass is OpenSSH's default SSH_ASKPASS program.
const defaultAskpass = "/usr/bin/ssh-askpass"

// prompter asks the user for secrets and answers as OpenSSH's read_passphrase does: on the
// terminal (/dev/tty), or through SSH_ASKPASS as SSH_ASKPASS_REQUIRE and DISPLAY say.
type prompter struct {
	ctx    context.Context // ends a pending question: the terminal is restored
	env    sshconfig.Env
	batch  bool
	stderr io.Writer // for SSH_ASKPASS's messages
	mu     sync.Mutex

	pmu     sync.Mutex
	pending func() // restores the terminal of the question being asked

}

// askpassMode decides between the terminal and SSH_ASKPASS: use means try askpass first;
// allow means askpass may be used at all.
func (p *prompter) askpassMode() (use, allow bool) {
	allow = p.env.Get("DISPLAY") != "" || p.env.Get("WAYLAND_DISPLAY") != ""
	switch strings.ToLower(p.env.Get("SSH_ASKPASS_REQUIRE")) {
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
	return p.readTTY(tty, prompt, echo)
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
	return p.readTTY(tty, prompt, true)
}

// readTTY asks on the terminal and reads a line, without echo for a secret. When ctx ends
// first, the terminal is restored and the read abandoned.
func (p *prompter) readTTY(tty *os.File, prompt string, echo bool) (string, error) {
	ctx := p.ctx
	if ctx != nil && ctx.Err() != nil {
		return "", fmt.Errorf("prompt abandoned: %w", context.Cause(ctx))
	}
	rc, err := tty.SyscallConn()
	if err != nil {
		return "", err
	}
	var saved *unix.Termios
	restore := func() {
		if saved != nil {
			rc.Control(func(fd uintptr) { unix.IoctlSetTermios(int(fd), ioctlSetTermios, saved) })
		}
	}
	if !echo {
		rc.Control(func(fd uintptr) {
			t, err := unix.IoctlGetTermios(int(fd), ioctlGetTermios)
			if err != nil {
				return
			}
			saved = t
			quiet := *t
			quiet.Lflag &^= unix.ECHO
			quiet.Lflag |= unix.ICANON | unix.ISIG
			quiet.Iflag |= unix.ICRNL
			unix.IoctlSetTermios(int(fd), ioctlSetTermios, &quiet)
		})
		defer restore()
	}
	if ctx == nil {
		ctx = context.Background()
	}
	var once sync.Once
	abandon := func() {
		once.Do(func() {
			restore()
			tty.Close() // unblocks the read
		})
	}
	p.pmu.Lock()
	p.pending = abandon
	p.pmu.Unlock()
	defer func() {
		p.pmu.Lock()
		p.pending = nil
		p.pmu.Unlock()
	}()
	stop := context.AfterFunc(ctx, abandon)
	defer stop()
	if _, err := tty.WriteString(prompt); err != nil {
		return "", err
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
			if ctx.Err() != nil {
				return "", fmt.Errorf("prompt abandoned: %w", context.Cause(ctx))
			}
			if len(line) > 0 {
				break
			}
			return "", fmt.Errorf("read from terminal: %w", err)
		}
	}
	if !echo {
		tty.WriteString("\n")
	}
	return strings.TrimSuffix(string(line), "\r"), nil
}

// abandon gives up the question being asked on the terminal, if any, restoring the
// terminal before it returns.
func (p *prompter) abandon() {
	p.pmu.Lock()
	f := p.pending
	p.pmu.Unlock()
	if f != nil {
		f()
	}
}

// askpass runs SSH_ASKPASS with the prompt as its argument and reads the answer from its
// standard output; a non-zero exit is a refusal.
func (p *prompter) askpass(prompt string) (string, error) {
	prog := p.env.Get("SSH_ASKPASS")
	if prog == "" {
		prog = defaultAskpass
	}
	ctx := p.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	cmd := exec.CommandContext(ctx, prog, prompt)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = p.stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("SSH_ASKPASS %s: %w", prog, err)
	}
	return strings.TrimRight(out.String(), "\r\n"), nil
}
