package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/internal/seal"
	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/plumb"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
	"github.com/socketpipe/socketpipe/pkg/sshlogin"
)

const protocolVersion = wire.Protocol

// Exit statuses of socketpipe's own.
const (
	exitUsage   = 1
	exitFailure = 2
)

// run is socketpipe without the process around it: args includes the program name.
func run(ctx context.Context, args []string, stdin, stdout, stderr *os.File) int {
	// A write to a closed pipe must be an error we handle, not our death; commands we start
	// still get SIGPIPE by default (a caught signal is reset on exec, an ignored one is not).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	ctx, sig, stop := withSignals(ctx)
	defer stop()

	if len(args) > 1 && args[1] == "--serve" {
		return serve(ctx, args[2:], stdin, stdout, stderr, sig)
	}
	if invokedAsSSH(args[0]) {
		return runSSH(ctx, nil, args[1:], true, stdin, stdout, stderr, sig)
	}
	if i := sshFlag(args[1:]); i >= 0 {
		return runSSH(ctx, args[1:1+i], args[2+i:], false, stdin, stdout, stderr, sig)
	}
	a, err := plumb.ParseArgs(args[1:])
	if err != nil {
		errorf(stderr, "%v", err)
		hintf(stderr, "see socketpipe --help")
		return exitUsage
	}
	if a.Help {
		usage(stdout)
		return 0
	}
	if a.Version {
		version(stdout)
		return 0
	}
	if a.PassThrough {
		errorf(stderr, "--pass-through is for ssh mode: socketpipe --pass-through --ssh host command")
		hintf(stderr, "see socketpipe --help")
		return exitUsage
	}
	rec := newRunRecord(a, stderr)
	status := client(ctx, a, stdin, stdout, stderr, sig, rec)
	return rec.finish(status, sig(), rec.stderr)
}

// withSignals returns a context cancelled by SIGINT, SIGTERM or SIGHUP, and a function that
// reports which signal it was (0 if none).
func withSignals(parent context.Context) (context.Context, func() syscall.Signal, func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	var mu sync.Mutex
	var got syscall.Signal
	go func() {
		select {
		case s := <-ch:
			mu.Lock()
			got = s.(syscall.Signal)
			mu.Unlock()
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() syscall.Signal {
			mu.Lock()
			defer mu.Unlock()
			return got
		}, func() {
			signal.Stop(ch)
			cancel()
		}
}

func errorf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "socketpipe: error: %s\n", strings.TrimRight(fmt.Sprintf(format, args...), ".\n"))
}

func hintf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "socketpipe: hint: %s\n", fmt.Sprintf(format, args...))
}

// logger returns the -v logger: lines on stderr with the time since start.
func logger(w io.Writer, verbose int) func(string, ...any) {
	if verbose == 0 {
		return nil
	}
	start := time.Now()
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "socketpipe: [%6.3fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
}

// startMarker starts the remote command line of an executed ssh login: the line it prints
// before the remote half tells that the remote shell runs what was asked for, not a forced
// command (see deploy.Watcher).
const startMarker = `printf '\0socketpipe-start\n'; `

// remoteCommandLine is the shell command that starts the remote half.
func remoteCommandLine(path string) string {
	if path == "" {
		path = "socketpipe"
	}
	return shellQuote(path) + " --serve"
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+,:=@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// client is the local half's run. Its messages go through rec, which -v and --stats follow.
func client(ctx context.Context, a *plumb.Args, stdin, stdout, stderr *os.File, sig func() syscall.Signal, rec *runRecord) int {
	msgs := rec.stderr
	logf := logger(msgs, a.Verbose)
	if a.Encrypt {
		if _, err := seal.ChooseCipher(a.Cipher); err != nil {
			errorf(msgs, "%v", strings.TrimPrefix(err.Error(), "rendezvous: "))
			return exitUsage
		}
	}
	c := &plumb.Client{
		Input: a.Input, Remote: a.Remote, Output: a.Output,
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
		Mode: a.Mode, Host: a.Host, Timeout: a.Timeout, Ports: a.Ports,
		Encrypt: a.Encrypt, Cipher: a.Cipher,
		Liveness: liveness(),
		Logf:     logf,
	}
	rep, code := runLogin(ctx, a, c, stderr, logf, sig, rec, nil)
	if rep == nil {
		if code == 0 {
			code = exitFailure
		}
		return code
	}
	status, stage := rep.Status()
	if stage != nil {
		errorf(msgs, "%v", rep.StageError())
	}
	return status
}

// runLogin starts the remote half through a's login command, runs c on it (filling in what
// the login knows of its connection), and ends the login. It returns the report of a run that
// went through; otherwise a nil report, with the error already reported and code 0, or code
// 128+n when a signal ended the run. pt, in ssh mode, passes the command through the SSH
// session where the remote half cannot run (a forced command) or need not (--pass-through).
func runLogin(ctx context.Context, a *plumb.Args, c *plumb.Client, stderr *os.File, logf func(string, ...any), sig func() syscall.Signal, rec *runRecord, pt *passThrough) (*plumb.Report, int) {
	msgs := rec.stderr
	signaled := func() int {
		if s := sig(); s != 0 {
			return 128 + int(s)
		}
		return 0
	}
	command := remoteCommandLine(a.RemotePath)
	// An executed ssh may meet a forced command too: the start marker tells.
	execSSH := len(a.Login) > 0 && sshlogin.IsSSH(a.Login[0])
	if execSSH {
		command = startMarker + command
	}
	login := sshlogin.Command(a.Login, command)
	dep := newDeployer(a, stderr, logf)
	// The first session's messages wait until it shows that it runs the start command.
	held := &heldWriter{w: stderr}
	passNow := false
	login.NativeCommand = func() (string, error) {
		if pt != nil && pt.decide(login.Endpoint()) {
			passNow = true
			held.release()
			return pt.command, nil
		}
		return dep.startCommand()
	}
	login.Stderr = stderr
	login.RemoteStderr = held
	login.BatchMode = a.Batch
	login.ForceExec = a.ForceExec
	login.Logf = logf
	w, err := login.StdinPipe()
	if err != nil {
		errorf(msgs, "%v", err)
		return nil, 0
	}
	r, err := login.StdoutPipe()
	if err != nil {
		errorf(msgs, "%v", err)
		return nil, 0
	}
	if err := login.Start(ctx); err != nil {
		if code := signaled(); code != 0 {
			return nil, code
		}
		reportLoginError(msgs, a.Login, err)
		return nil, 0
	}
	rec.loginStarted(login.Native())
	if passNow {
		rep := pt.run(ctx, login, w, r, c.Remote)
		login.Close()
		rec.rep = rep
		if code := signaled(); code != 0 {
			return nil, code
		}
		return rep, 0
	}
	c.LocalAddr, c.RemoteAddr, c.Native = login.LocalAddr(), login.RemoteAddr(), login.Native()
	rec.watch(c)
	watch := dep.reader(r)

	// The login runs the start command, unless the server forces another command: then the
	// start command's first line never comes.
	fw := watchForced(ctx, dep.watch, held, a.Timeout, login.Native() || execSSH)
	defer fw.stop()
	rep, err := c.Run(fw.ctx, watch, w)
	why := fw.verdict(err, login)
	if why != "" && ctx.Err() == nil {
		said := held.discard()
		if logf != nil && said != "" {
			logf("the forced command said on its standard error: %s", quote.Word(firstLine([]byte(said))))
		}
		switch {
		case pt == nil:
			login.Close()
			reportRunError(msgs, a, &forcedError{why: why}, nil, true)
			return nil, 0
		case !login.Native():
			// The ssh binary runs the command as it would: hand over to it.
			login.Close()
			return nil, pt.handOver("the server runs a forced command: " + why)
		}
		return passForced(ctx, login, w, pt, c, why, stderr, msgs, rec, signaled)
	}
	held.release()
	half := login // the session the remote half runs in
	if err != nil && login.Native() {
		rep, half, w, err = dep.recover(ctx, login, w, c, err)
	}
	rec.rep = rep
	if err != nil {
		// Our own failure: end the login at once; the remote half then ends its command.
		// A login whose output simply ended is let finish, for its exit status.
		var be *wire.BannerError
		if !errors.As(err, &be) || errors.Is(be.Err, wire.ErrBannerTooLong) {
			login.Close()
		}
		lerr := waitLogin(half, 3*time.Second)
		login.Close()
		if code := signaled(); code != 0 {
			return nil, code
		}
		reportRunError(msgs, a, err, lerr, login.Native())
		return nil, 0
	}
	// Done: closing the control channel lets the remote half exit.
	w.Close()
	if lerr := waitLogin(half, 10*time.Second); lerr != nil && logf != nil {
		logf("login ended: %v", lerr)
	}
	login.Close()
	if code := signaled(); code != 0 {
		return nil, code
	}
	return rep, 0
}

// passForced ends the first session, whose server ran a forced command instead of the start
// command, and runs the user's command line in a new session on the same connection, as ssh
// would have: the forced command gets it in SSH_ORIGINAL_COMMAND.
func passForced(ctx context.Context, login *sshlogin.Cmd, w io.WriteCloser, pt *passThrough, c *plumb.Client, why string, stderr *os.File, msgs io.Writer, rec *runRecord, signaled func() int) (*plumb.Report, int) {
	defer login.Close()
	// The first session ends; its Wait would close the connection, which the next session
	// needs, so the whole login is waited for at the end.
	w.Close()
	login.CloseSession()
	pt.forced(login.Endpoint(), why)
	s, err := login.Session(pt.command)
	if err == nil {
		s.Stderr = stderr
		var sw io.WriteCloser
		var sr io.Reader
		if sw, err = s.StdinPipe(); err == nil {
			if sr, err = s.StdoutPipe(); err == nil {
				err = s.Start(ctx)
			}
		}
		if err == nil {
			rep := pt.run(ctx, s, sw, sr, c.Remote)
			rec.rep = rep
			if code := signaled(); code != 0 {
				return nil, code
			}
			return rep, 0
		}
	}
	if code := signaled(); code != 0 {
		return nil, code
	}
	errorf(msgs, "login failed: running the command over the SSH session: %v", strings.TrimPrefix(err.Error(), "sshlogin: "))
	return nil, 0
}

// waitLogin waits for the login to end, up to d; then it is closed.
func waitLogin(login *sshlogin.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- login.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		login.Close()
		return <-done
	}
}

func loginName(login []string) string {
	if len(login) == 0 {
		return "login command"
	}
	return filepath.Base(login[0])
}

func reportLoginError(stderr io.Writer, login []string, err error) {
	errorf(stderr, "login failed: %v", strings.TrimPrefix(err.Error(), "sshlogin: "))
	var hk *sshlogin.HostKeyError
	if errors.As(err, &hk) {
		if h := hk.Hint(); h != "" {
			hintf(stderr, "%s", h)
		}
	}
}

func reportRunError(stderr io.Writer, a *plumb.Args, err, loginErr error, native bool) {
	if reportDeployError(stderr, err, loginErr) {
		return
	}
	var be *wire.BannerError
	var ee *sshlogin.ExitError
	var fe *forcedError
	switch {
	case errors.As(err, &fe):
		errorf(stderr, "%v", fe)
		hintf(stderr, "sshd_config's ForceCommand or command= in authorized_keys replaces the command socketpipe asks for; socketpipe --ssh runs a command on such a login the way ssh does")
	case errors.As(err, &be):
		name := loginName(a.Login)
		switch {
		case errors.Is(be.Err, wire.ErrBannerTooLong):
			errorf(stderr, "the remote half did not start: the login printed more than %d bytes without its greeting", wire.MaxBanner)
			hintf(stderr, "is %s on the remote host really socketpipe? --remote-path names it", remoteName(a.RemotePath))
		case errors.As(loginErr, &ee) && ee.Status == 127:
			errorf(stderr, "the remote half did not start: %s is not installed on the remote host (the remote shell said: command not found)", remoteName(a.RemotePath))
			hintf(stderr, "install socketpipe on the remote host's PATH or name it with --remote-path; with a native ssh login (no -x) socketpipe copies itself there")
		case errors.As(loginErr, &ee) && ee.Status == 126:
			errorf(stderr, "the remote half did not start: %s is not executable on the remote host", remoteName(a.RemotePath))
		case errors.As(loginErr, &ee) && native:
			errorf(stderr, "login failed: the session ended with status %d before the remote half started", ee.Status)
		case errors.As(loginErr, &ee):
			errorf(stderr, "login failed: %s exited with status %d before the remote half started", name, ee.Status)
		case loginErr != nil:
			errorf(stderr, "login failed: %v", strings.TrimPrefix(loginErr.Error(), "sshlogin: "))
		default:
			errorf(stderr, "%v", strings.TrimPrefix(err.Error(), "rendezvous: "))
			hintf(stderr, "the login command %s ended without starting the remote half", name)
		}
		if len(be.Banner) > 0 {
			hintf(stderr, "the login printed: %q", firstLine(be.Banner))
		}
	case errors.Is(err, rendezvous.ErrTimeout):
		errorf(stderr, "no data connection within %v", a.Timeout)
		hintf(stderr, "a firewall between the hosts may block it: -h names the address to connect back to, -m reverse or -m ssh choose another way, -t waits longer")
	case errors.As(err, new(*plumb.VersionError)):
		errorf(stderr, "%v", err)
		hintf(stderr, "install the same socketpipe version on both hosts, or name the remote one with --remote-path")
	case errors.Is(err, plumb.ErrRemoteVanished):
		errorf(stderr, "%v", err)
		if loginErr != nil {
			hintf(stderr, "the login ended with: %v", loginErr)
		}
	default:
		msg := err.Error()
		for _, p := range []string{"rendezvous: ", "plumb: "} {
			msg = strings.TrimPrefix(msg, p)
		}
		errorf(stderr, "%s", msg)
	}
}

func remoteName(p string) string {
	if p == "" {
		return "socketpipe"
	}
	return p
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// serve is the remote half.
func serve(ctx context.Context, args []string, stdin, stdout, stderr *os.File, sig func() syscall.Signal) int {
	if len(args) > 0 {
		errorf(stderr, "--serve takes no arguments")
		return exitUsage
	}
	s := &plumb.Server{Control: stdin, Reply: stdout, Stderr: stderr, Liveness: liveness()}
	if err := s.Run(ctx); err != nil {
		if s := sig(); s != 0 {
			return 128 + int(s)
		}
		if !errors.As(err, new(*plumb.ReportedError)) {
			errorf(stderr, "remote half: %v", strings.TrimPrefix(err.Error(), "rendezvous: "))
		}
		return exitFailure
	}
	return 0
}
