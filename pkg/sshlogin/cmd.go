package sshlogin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/pkg/sshconfig"
	"golang.org/x/crypto/ssh"
)

// Cmd runs a command on a remote host through a login command. It is shaped like
// os/exec.Cmd: set the fields, ask for pipes, then Start and Wait (or Run).
type Cmd struct {
	// Login is the login command: {"ssh", "-p", "2222", "user@host"}, {"rsh", "host"} or
	// {"/path/to/wrapper", ...}. The remote command line is appended as its last word when
	// the login command is executed.
	Login []string

	// Command is the remote command line, given to the remote user's shell as ssh does.
	Command string

	// NativeCommand, if not nil, gives the remote command line on the native path instead of
	// Command. It is called once the login is done, so that work it needs (hashing a binary
	// for a deploy.Deployment) overlaps the login.
	NativeCommand func() (string, error)

	// Stdin, Stdout and Stderr are as in os/exec.Cmd. A nil Stdin means empty input; a nil
	// Stdout or Stderr discards. Stderr receives the remote command's standard error and the
	// login's own messages (ssh's warnings and, with ssh -v, its debug lines).
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// Subsystem makes Command the name of a subsystem (ssh -s: "sftp") rather than a command
	// line: the native path asks for it with a subsystem request, and an executed ssh gets
	// -s. The server runs its own program for it (sshd's Subsystem lines).
	Subsystem bool

	// RemoteStderr, if not nil, receives the remote command's standard error on the native
	// path instead of Stderr, which keeps the login's own messages. An executed login writes
	// both to Stderr.
	RemoteStderr io.Writer

	// BatchMode never prompts: no passphrase, password or host key question
	// (socketpipe -b; the same as ssh's BatchMode yes). When ssh is executed, it gets
	// -oBatchMode=yes.
	BatchMode bool

	// ForceExec always executes the login command, even when it is ssh (socketpipe -x).
	ForceExec bool

	// Logf, if not nil, receives the setup story: which path was taken and why, the
	// authentication method used, and timings.
	Logf func(format string, args ...any)

	// Env is the environment the login is resolved in; nil means DefaultEnv().
	Env *sshconfig.Env

	parent *Cmd // set by Session: run in a new session on parent's connection

	mu       sync.Mutex
	started  bool
	waited   bool
	native   bool
	closeErr error // why the session was ended from this side, if it was

	stdinPipe  *lazyWriter
	stdoutPipe *lazyReader

	run      runner
	client   *ssh.Client
	endpoint *Endpoint
	local    net.Addr
	remote   net.Addr
	stop     func() bool // stops the context watcher

	waitOnce sync.Once
	waitErr  error
}

// runner is one path's running session.
type runner interface {
	wait() error
	close() error
}

// ExitError reports a remote command that ended with a non-zero status or a signal.
type ExitError struct {
	// Status is the exit status; for a signal it is 128 plus the signal number where the
	// signal is known.
	Status int
	// Signal is the signal that ended the command without "SIG", e.g. "KILL"; "" if none.
	Signal string
	// Msg is the message that came with the signal, if any.
	Msg string
}

// Error shows the server's signal name and message made printable.
func (e *ExitError) Error() string {
	if e.Signal != "" {
		s := "remote command killed by signal " + quote.Printable(e.Signal, 32)
		if e.Msg != "" {
			s += ": " + quote.Printable(e.Msg, 512)
		}
		return s
	}
	return fmt.Sprintf("remote command exited with status %d", e.Status)
}

// RefusedError reports a server that refused to start the remote command or subsystem (an
// sshd without that Subsystem line, say).
type RefusedError struct {
	Host string
	What string // "the remote command", "subsystem sftp"
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s refused to run %s", e.Host, e.What)
}

// Endpoint is who a native login reached: the user, the server's address as configured and
// its host key, checked against known_hosts, and the key the user was accepted with.
type Endpoint struct {
	User     string
	HostName string
	Port     int
	HostKey  ssh.PublicKey
	UserKey  ssh.PublicKey // nil when another method than public keys authenticated
}

// Fingerprint is the host key's SHA-256 fingerprint, as ssh prints it ("SHA256:...").
func (e *Endpoint) Fingerprint() string {
	if e.HostKey == nil {
		return ""
	}
	return ssh.FingerprintSHA256(e.HostKey)
}

// UserKeyFingerprint is the user key's SHA-256 fingerprint; "" without one.
func (e *Endpoint) UserKeyFingerprint() string {
	if e.UserKey == nil {
		return ""
	}
	return ssh.FingerprintSHA256(e.UserKey)
}

// String is user@host:port, for messages.
func (e *Endpoint) String() string {
	return e.User + "@" + net.JoinHostPort(e.HostName, fmt.Sprint(e.Port))
}

// Command returns the Cmd to run command on the remote host through login.
func Command(login []string, command string) *Cmd {
	return &Cmd{Login: login, Command: command}
}

// StdinPipe returns a pipe connected to the remote command's standard input. Closing it
// sends end of file. Writes block until Start.
func (c *Cmd) StdinPipe() (io.WriteCloser, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Stdin != nil {
		return nil, errors.New("the login's Stdin is already set")
	}
	if c.stdinPipe != nil {
		return nil, errors.New("StdinPipe was already called")
	}
	if c.started {
		return nil, errors.New("StdinPipe called after Start")
	}
	c.stdinPipe = newLazyWriter()
	return c.stdinPipe, nil
}

// StdoutPipe returns a pipe connected to the remote command's standard output. Reads block
// until Start. As with os/exec, read everything before calling Wait.
func (c *Cmd) StdoutPipe() (io.ReadCloser, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Stdout != nil {
		return nil, errors.New("the login's Stdout is already set")
	}
	if c.stdoutPipe != nil {
		return nil, errors.New("StdoutPipe was already called")
	}
	if c.started {
		return nil, errors.New("StdoutPipe called after Start")
	}
	c.stdoutPipe = newLazyReader()
	return c.stdoutPipe, nil
}

// Start logs in and starts the remote command. When it returns nil, the login is done and
// the remote command was requested; the pipes can be used. On the native path, as with
// OpenSSH, Start does not wait for the server's answer to the request: a refusal ends the
// session and Wait reports it. The context cancels the dial and the authentication and,
// once started, ends the session.
func (c *Cmd) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("login already started")
	}
	c.started = true
	c.mu.Unlock()

	err := c.start(ctx)
	if err != nil {
		c.stdinPipe.fail(err)
		c.stdoutPipe.fail(err)
		return err
	}
	c.stop = context.AfterFunc(ctx, func() {
		c.end(fmt.Errorf("session ended: %w", context.Cause(ctx)))
	})
	return nil
}

func (c *Cmd) start(ctx context.Context) error {
	if len(c.Login) == 0 {
		return errors.New("empty login command")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.parent != nil {
		return c.startSibling(ctx)
	}
	env := sshconfig.DefaultEnv()
	if c.Env != nil {
		env = *c.Env
	}
	if c.ForceExec {
		return c.startExec(ctx, "forced (-x)", false)
	}
	if !IsSSH(c.Login[0]) {
		return c.startExec(ctx, fmt.Sprintf("login command %q is not ssh", c.Login[0]), false)
	}
	t0 := time.Now()
	inv, err := sshconfig.ParseArgs(c.Login[1:])
	var unsupported *sshconfig.UnsupportedError
	if errors.As(err, &unsupported) {
		return c.startExec(ctx, err.Error(), true)
	}
	if err != nil {
		return err
	}
	cfg, err := sshconfig.Resolve(inv, env)
	if err != nil {
		return err
	}
	chain, reason, err := resolveChain(inv, cfg, env, 0)
	if err != nil {
		return err
	}
	if reason != "" {
		return c.startExec(ctx, reason, true)
	}
	c.logf("native login: %s (ssh options and config resolved in %v)", describeChain(chain), time.Since(t0).Round(time.Microsecond))
	n, err := c.startNative(ctx, inv, chain, env)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.native = true
	c.run = n
	c.client = n.client
	c.local, c.remote = n.local, n.remote
	c.mu.Unlock()
	return nil
}

// Wait waits for the remote command to end and for its output to be copied. It returns nil
// for status 0, an *ExitError for another status or a signal, and another error when the
// login failed or the connection died. On the native path it then closes the connection.
func (c *Cmd) Wait() error {
	c.mu.Lock()
	if !c.started || c.run == nil {
		c.mu.Unlock()
		return errors.New("login not started")
	}
	c.waited = true
	c.mu.Unlock()
	c.waitOnce.Do(func() {
		err := c.run.wait()
		if c.stop != nil {
			c.stop()
		}
		c.mu.Lock()
		if c.closeErr != nil && err != nil {
			// Ended from this side: say so, unless the command had ended by itself with
			// a status.
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Signal != "" {
				err = c.closeErr
			}
		}
		c.mu.Unlock()
		c.run.close()
		c.waitErr = err
	})
	return c.waitErr
}

// Run starts the command and waits for it.
func (c *Cmd) Run(ctx context.Context) error {
	if err := c.Start(ctx); err != nil {
		return err
	}
	return c.Wait()
}

// Close ends the session now: the native path closes the SSH connection, the exec path
// kills the login process. Wait then returns an error.
func (c *Cmd) Close() error {
	return c.end(errors.New("session closed"))
}

func (c *Cmd) end(why error) error {
	c.mu.Lock()
	r := c.run
	if r == nil {
		c.mu.Unlock()
		return nil
	}
	if c.closeErr == nil {
		c.closeErr = why
	}
	c.mu.Unlock()
	return r.close()
}

// Native reports, after Start, whether the login happened in-process.
func (c *Cmd) Native() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.native
}

// LocalAddr returns, after Start, the local end of the TCP connection to sshd on the native
// path with a direct connection; nil if unknown (exec path, ProxyJump).
func (c *Cmd) LocalAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.local
}

// RemoteAddr returns the address the TCP connection to sshd reached; nil if unknown.
func (c *Cmd) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remote
}

// Endpoint returns, on the native path, who the login reached; nil on the exec path. It is
// known once the login is done, before NativeCommand is called, so NativeCommand may use it.
func (c *Cmd) Endpoint() *Endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpoint
}

// CloseSession ends this Cmd's session and keeps the connection for more sessions (native
// path): the remote command gets end of file and its channel closes; Wait then returns. On
// the exec path, where the session is the login process, it is Close.
func (c *Cmd) CloseSession() error {
	c.mu.Lock()
	n, ok := c.run.(*nativeRun)
	c.mu.Unlock()
	if !ok {
		return c.Close()
	}
	if n.ch == nil {
		return nil
	}
	return n.ch.Close()
}

// Client returns, on the native path, the SSH client, so that callers can open more
// sessions or channels on the same connection; nil on the exec path.
func (c *Cmd) Client() *ssh.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client
}

func (c *Cmd) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// IsSSH reports whether a login command word names ssh: "ssh" or a path ending in "/ssh".
// Such a login is read (sshconfig.ParseArgs, sshconfig.Resolve) and run in-process; any
// other is executed.
func IsSSH(word string) bool {
	return word == "ssh" || strings.HasSuffix(word, "/ssh")
}

// startExec executes the login command. needSSH is set when the login is ssh and the exec
// path was chosen because of the configuration: then a missing binary is reported with the
// reason.
func (c *Cmd) startExec(ctx context.Context, reason string, needSSH bool) error {
	c.logf("executing the login command %s: %s", c.Login[0], reason)
	if _, err := exec.LookPath(c.Login[0]); err != nil {
		if needSSH {
			return fmt.Errorf("the ssh binary is needed (%s) but cannot be run: %w", reason, err)
		}
		return fmt.Errorf("login command: %w", err)
	}
	e, err := c.execStart(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.run = e
	c.mu.Unlock()
	return nil
}

// lazyWriter is the writer StdinPipe returns before the session exists.
type lazyWriter struct {
	once   sync.Once
	ready  chan struct{}
	mu     sync.Mutex
	w      io.WriteCloser
	err    error
	closed bool
}

func newLazyWriter() *lazyWriter { return &lazyWriter{ready: make(chan struct{})} }

// set hands over the real writer.
func (l *lazyWriter) set(w io.WriteCloser) {
	if l == nil {
		return
	}
	l.once.Do(func() {
		l.mu.Lock()
		l.w = w
		closed := l.closed
		l.mu.Unlock()
		if closed {
			w.Close()
		}
		close(l.ready)
	})
}

// fail makes the pipe return err.
func (l *lazyWriter) fail(err error) {
	if l == nil {
		return
	}
	l.once.Do(func() {
		l.err = err
		close(l.ready)
	})
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	<-l.ready
	if l.err != nil {
		return 0, l.err
	}
	return l.w.Write(p)
}

func (l *lazyWriter) Close() error {
	l.mu.Lock()
	select {
	case <-l.ready:
	default:
		l.closed = true
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	if l.err != nil {
		return nil
	}
	return l.w.Close()
}

// lazyReader is the reader StdoutPipe returns before the session exists.
type lazyReader struct {
	once  sync.Once
	ready chan struct{}
	r     io.Reader
	err   error
}

func newLazyReader() *lazyReader { return &lazyReader{ready: make(chan struct{})} }

func (l *lazyReader) set(r io.Reader) {
	if l == nil {
		return
	}
	l.once.Do(func() {
		l.r = r
		close(l.ready)
	})
}

func (l *lazyReader) fail(err error) {
	if l == nil {
		return
	}
	l.once.Do(func() {
		l.err = err
		close(l.ready)
	})
}

func (l *lazyReader) Read(p []byte) (int, error) {
	<-l.ready
	if l.err != nil {
		return 0, l.err
	}
	return l.r.Read(p)
}

func (l *lazyReader) Close() error {
	select {
	case <-l.ready:
		if c, ok := l.r.(io.Closer); ok {
			return c.Close()
		}
	default:
		l.fail(errors.New("read from closed pipe"))
	}
	return nil
}

// WriteTo lets io.Copy use the underlying reader's WriteTo (splice on the exec path).
func (l *lazyReader) WriteTo(w io.Writer) (int64, error) {
	<-l.ready
	if l.err != nil {
		return 0, l.err
	}
	return io.Copy(w, l.r)
}

// describeChain is "user@host:port via hop..." for the setup story.
func describeChain(h *hop) string {
	s := fmt.Sprintf("%s@%s", h.cfg.User, net.JoinHostPort(h.cfg.HostName, fmt.Sprint(h.cfg.Port)))
	if h.cfg.HostName != h.cfg.Host {
		s += " (" + h.cfg.Host + ")"
	}
	if h.via != nil {
		s += " via " + describeChain(h.via)
	}
	return s
}
