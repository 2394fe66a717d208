// Package socketpipe runs a command on a remote host through a login (native SSH, or any
// login command) and joins it to local commands over a direct TCP socket, as the socketpipe
// command does: the login, the start of the remote half (installed, cached, or uploaded over
// the same SSH connection), the retry after a version mismatch, the data connection and the
// wait. A Pipe is one such run, shaped like os/exec's Cmd:
//
//	p := &socketpipe.Pipe{
//		Login:  []string{"ssh", "backup@nas"},
//		Input:  []string{"tar", "cf", "-", "/home"},
//		Remote: []string{"dd", "of=/dev/nst0", "bs=64k"},
//		Stdin:  os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
//	}
//	stats, err := p.Run(ctx)
//
// Run returns the run's summary (the JSON of socketpipe --stats) and an *Error, which carries
// the message, the hints and the exit status socketpipe would report.
//
// The package sits above the pieces: package plumb runs the two halves over any byte stream
// and knows nothing of SSH, package sshlogin logs in, package rendezvous makes the data
// connection. The remote host runs "socketpipe --serve" (plumb.Server).
package socketpipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/internal/seal"
	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/plumb"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
	"github.com/socketpipe/socketpipe/pkg/sshconfig"
	"github.com/socketpipe/socketpipe/pkg/sshlogin"
)

// Pipe is one run: a remote command started through a login, joined to local commands (or to
// Stdin and Stdout) over the data connection. The zero value of an option is socketpipe's
// default.
type Pipe struct {
	// Login is the login command: "ssh [options] host" logs in natively (x/crypto/ssh, with
	// the user's ssh_config, agent, keys and known_hosts) unless ForceExec; any other command
	// is executed with pipes for its standard input and output.
	Login  []string
	Remote []string // the remote command, run verbatim with execvp; in SSHMode one shell command line
	Input  []string // a local command whose output is the remote command's input; nil: none
	Output []string // a local command whose input is the remote command's output; nil: Stdout

	RemotePath string // the socketpipe binary on the remote host; "": socketpipe on its PATH
	NoDeploy   bool   // never copy this binary to a remote host that lacks socketpipe
	DeployDir  string // builds for hosts of other targets, socketpipe-<goos>-<goarch>; "": ../lib/socketpipe beside the executable
	ForceExec  bool   // execute an ssh login command rather than log in natively
	Batch      bool   // never prompt (keys or agent only)

	Mode    string               // how the data connection is made: auto (""), back, reverse, ssh
	Host    string               // the address the remote half connects back to; "": from the login
	Timeout time.Duration        // wait this long for the data connection; 0 forever
	Ports   rendezvous.PortRange // listen only on these ports
	Encrypt bool                 // encrypt and authenticate the data connection
	Cipher  string               // Encrypt's cipher; "" chooses by the CPU
	// Streams is how many TCP connections the data is striped over (1 to 64); 0 chooses by
	// the path: one, which the commands hold themselves (zero copy), unless one stream's
	// window cannot fill the path at its round trip.
	Streams int
	// Liveness is how soon a dead link or remote host ends the run; zero is the defaults.
	Liveness rendezvous.Liveness

	// SSHMode runs Remote as ssh would (socketpipe --ssh): through the remote user's shell,
	// with ssh's exit statuses (the remote command's, ExitSSH for socketpipe's failures), and
	// a server that forces a command gets it over the SSH session instead of the remote half.
	SSHMode bool
	// StdinToRemote, in SSHMode, gives Stdin to the remote command; otherwise it reads end of
	// file at once (ssh -n).
	StdinToRemote bool
	// PassThrough, in SSHMode, runs Remote over the SSH session as ssh does, without the
	// remote half.
	PassThrough bool
	// Subsystem, in SSHMode, requests Remote[0] as a subsystem (sftp) on the native SSH
	// connection and carries Stdin and Stdout over SSH.
	Subsystem bool
	// ForcedLogins, in SSHMode, remembers the logins whose server forces a command, so that
	// later runs pass through at once; nil remembers none.
	ForcedLogins *sshlogin.ForcedLogins

	// The streams: nil is the null device, as with os/exec.
	Stdin  *os.File // the input command's; in SSHMode the remote command's
	Stdout *os.File // the output command's, or the remote command's output without one
	Stderr *os.File // the commands' and the login's standard error

	// Logf receives socketpipe's story (-v); nil is silent.
	Logf func(format string, args ...any)
	// Watch, if set, is called when the transfer starts with a Meter of its progress.
	Watch func(*plumb.Meter)
}

// Run runs the pipe until every stage has ended. It returns the run's summary, also when the
// run failed, and an *Error when it did not succeed: a stage that failed (the rightmost, as a
// shell's pipefail), or socketpipe itself. ctx ends the run, the commands on both hosts first.
func (p *Pipe) Run(ctx context.Context) (*plumb.Stats, error) {
	r := &record{start: time.Now()}
	q, done, err := p.withStreams()
	if err != nil {
		e := failure(p.failStatus(), err, "%v", err)
		return p.stats(r, e), e
	}
	defer done()
	if err := q.run(ctx, r); err != nil {
		return p.stats(r, err), err
	}
	return p.stats(r, nil), nil
}

// withStreams is p with the null device for the streams left nil, as os/exec gives a
// command, and a function that closes what it opened.
func (p *Pipe) withStreams() (*Pipe, func(), error) {
	q := *p
	var opened []*os.File
	done := func() {
		for _, f := range opened {
			f.Close()
		}
	}
	for _, s := range []struct {
		f    **os.File
		flag int
	}{{&q.Stdin, os.O_RDONLY}, {&q.Stdout, os.O_WRONLY}, {&q.Stderr, os.O_WRONLY}} {
		if *s.f != nil {
			continue
		}
		f, err := os.OpenFile(os.DevNull, s.flag, 0)
		if err != nil {
			done()
			return nil, nil, err
		}
		opened = append(opened, f)
		*s.f = f
	}
	return &q, done, nil
}

func (p *Pipe) log(format string, args ...any) {
	if p.Logf != nil {
		p.Logf(format, args...)
	}
}

// failStatus is the status of socketpipe's own failures.
func (p *Pipe) failStatus() int {
	if p.SSHMode {
		return ExitSSH
	}
	return ExitFailure
}

func (p *Pipe) run(ctx context.Context, r *record) *Error {
	if len(p.Login) == 0 || len(p.Remote) == 0 {
		return failure(ExitUsage, nil, "a run needs a login command and a remote command")
	}
	if p.Subsystem {
		return p.subsystem(ctx, r)
	}
	if p.Encrypt {
		if _, err := seal.ChooseCipher(p.Cipher); err != nil {
			status := ExitUsage
			if p.SSHMode {
				status = ExitSSH
			}
			return failure(status, err, "%v", err)
		}
	}
	c := &plumb.Client{
		Input: p.Input, Remote: p.Remote, Output: p.Output, Shell: p.SSHMode,
		StdinToRemote: p.SSHMode && p.StdinToRemote,
		Stdin:         p.Stdin, Stdout: p.Stdout, Stderr: p.Stderr,
		Mode: p.Mode, Host: p.Host, Timeout: p.Timeout, Ports: p.Ports,
		Encrypt: p.Encrypt, Cipher: p.Cipher, Streams: p.Streams, Liveness: p.Liveness,
		Logf: p.Logf, Watch: p.Watch,
	}
	var pt *passThrough
	if p.SSHMode {
		pt = &passThrough{command: p.Remote[0], stdout: p.Stdout, now: p.PassThrough,
			known: p.ForcedLogins, logf: p.Logf}
		if c.StdinToRemote {
			pt.stdin = p.Stdin
		}
	}
	rep, err := p.runLogin(ctx, c, r, pt)
	if err != nil {
		return err
	}
	return p.result(rep)
}

// result is the error of a run that went through, from its stages' statuses.
func (p *Pipe) result(rep *plumb.Report) *Error {
	status, stage := rep.Status()
	if stage == nil {
		return nil
	}
	se := rep.StageError()
	e := &Error{Msg: se.Error(), Status: status, Err: se}
	if p.SSHMode {
		if stage.Signal != "" || stage.Err != "" && stage.Exit == ExitSSH {
			e.Status = ExitSSH
		} else {
			// Like ssh, say nothing about a remote command's non-zero status: it is the
			// exit status.
			e.Silent = true
		}
	}
	return e
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
	return quote.Shell(path) + " --serve"
}

// runLogin starts the remote half through the login command, runs c on it (filling in what
// the login knows of its connection), and ends the login. It returns the report of a run that
// went through. pt, in ssh mode, passes the command through the SSH session where the remote
// half cannot run (a forced command) or need not (PassThrough).
func (p *Pipe) runLogin(ctx context.Context, c *plumb.Client, r *record, pt *passThrough) (*plumb.Report, *Error) {
	command := remoteCommandLine(p.RemotePath)
	// An executed ssh may meet a forced command too: the start marker tells.
	execSSH := len(p.Login) > 0 && sshlogin.IsSSH(p.Login[0])
	if execSSH {
		command = startMarker + command
	}
	login := sshlogin.Command(p.Login, command)
	dep := newDeployer(p)
	// The first session's messages wait until it shows that it runs the start command.
	held := &heldWriter{w: p.Stderr}
	passNow := false
	login.NativeCommand = func() (string, error) {
		if pt != nil && pt.decide(login.Endpoint()) {
			passNow = true
			held.release()
			return pt.command, nil
		}
		return dep.startCommand()
	}
	login.Stderr = p.Stderr
	login.RemoteStderr = held
	login.BatchMode = p.Batch
	login.ForceExec = p.ForceExec
	login.Logf = p.Logf
	w, err := login.StdinPipe()
	if err != nil {
		return nil, failure(p.failStatus(), err, "%v", err)
	}
	rd, err := login.StdoutPipe()
	if err != nil {
		return nil, failure(p.failStatus(), err, "%v", err)
	}
	if err := login.Start(ctx); err != nil {
		return nil, p.loginError(err)
	}
	r.loginStarted(login.Native())
	if passNow {
		rep := pt.run(ctx, login, w, rd, c.Remote)
		login.Close()
		r.rep = rep
		return rep, nil
	}
	c.LocalAddr, c.RemoteAddr, c.Native = login.LocalAddr(), login.RemoteAddr(), login.Native()
	if cl := login.Client(); cl != nil {
		c.Forward = cl // ssh mode's channels (an interface must not hold a nil *ssh.Client)
	}
	if c.RemoteAddr == nil && execSSH {
		c.LoginHost = sshHostName(p.Login)
	}
	watch := dep.reader(rd)

	// The login runs the start command, unless the server forces another command: then the
	// start command's first line never comes.
	fw := watchForced(ctx, dep.watch, held, p.Timeout, login.Native() || execSSH)
	defer fw.stop()
	rep, err := c.Run(fw.ctx, watch, w)
	why := fw.verdict(err, login)
	if why != "" && ctx.Err() == nil {
		said := held.discard()
		if said != "" {
			p.log("the forced command said on its standard error: %s", quote.Word(firstLine([]byte(said))))
		}
		switch {
		case pt == nil:
			login.Close()
			return nil, p.runError(&forcedError{why: why}, nil, true)
		case !login.Native():
			// The ssh binary runs the command as it would: hand over to it.
			login.Close()
			ne := &SSHNeededError{Reason: "the server runs a forced command: " + why}
			return nil, failure(ExitSSH, ne, "%v", ne)
		}
		return p.passForced(ctx, login, w, pt, why, r)
	}
	held.release()
	half := login // the session the remote half runs in
	if err != nil && login.Native() {
		first := rep
		rep, half, w, err = dep.recover(ctx, login, w, c, err)
		if half == login && first != nil {
			rep = first // nothing ran again: the first run's report, with what it moved, stands
		}
	}
	r.rep = rep
	if err != nil {
		// Our own failure: end the login at once; the remote half then ends its command.
		// A login whose output simply ended is let finish, for its exit status.
		var be *wire.BannerError
		if !errors.As(err, &be) || errors.Is(be.Err, wire.ErrBannerTooLong) {
			login.Close()
		}
		lerr := waitLogin(half, 3*time.Second)
		login.Close()
		return nil, p.runError(err, lerr, login.Native())
	}
	// Done: closing the control channel lets the remote half exit.
	w.Close()
	if lerr := waitLogin(half, 10*time.Second); lerr != nil {
		p.log("login ended: %v", lerr)
	}
	login.Close()
	return rep, nil
}

// passForced ends the first session, whose server ran a forced command instead of the start
// command, and runs the user's command line in a new session on the same connection, as ssh
// would have: the forced command gets it in SSH_ORIGINAL_COMMAND.
func (p *Pipe) passForced(ctx context.Context, login *sshlogin.Cmd, w io.WriteCloser, pt *passThrough, why string, r *record) (*plumb.Report, *Error) {
	defer login.Close()
	// The first session ends; its Wait would close the connection, which the next session
	// needs, so the whole login is waited for at the end.
	w.Close()
	login.CloseSession()
	pt.forced(login.Endpoint(), why)
	s, err := login.Session(pt.command)
	if err == nil {
		s.Stderr = p.Stderr
		var sw io.WriteCloser
		var sr io.Reader
		if sw, err = s.StdinPipe(); err == nil {
			if sr, err = s.StdoutPipe(); err == nil {
				err = s.Start(ctx)
			}
		}
		if err == nil {
			rep := pt.run(ctx, s, sw, sr, p.Remote)
			r.rep = rep
			return rep, nil
		}
	}
	return nil, failure(ExitSSH, err, "login failed: running the command over the SSH session: %v", err)
}

// subsystem runs ssh -s: a subsystem (sftp, what scp and sftp ask for) is the server's own
// program, so there is no remote half to start; it is requested on the native connection and
// its input and output are carried over SSH, with no ssh binary needed.
func (p *Pipe) subsystem(ctx context.Context, r *record) *Error {
	name := p.Remote[0]
	p.log("subsystem %q: requested on the native SSH connection, its standard input and output carried over SSH (the server runs its own program for it: there is no remote half to start)", name)
	login := sshlogin.Command(p.Login, name)
	login.Subsystem = true
	login.Stderr = p.Stderr
	login.BatchMode = p.Batch
	login.Logf = p.Logf
	pt := &passThrough{command: name, stdout: p.Stdout, logf: p.Logf, why: "subsystem " + name}
	if p.StdinToRemote {
		pt.stdin = p.Stdin
	}
	w, err := login.StdinPipe()
	if err != nil {
		return failure(ExitSSH, err, "%v", err)
	}
	rd, err := login.StdoutPipe()
	if err != nil {
		return failure(ExitSSH, err, "%v", err)
	}
	if err := login.Start(ctx); err != nil {
		return p.loginError(err)
	}
	r.loginStarted(login.Native())
	rep := pt.run(ctx, login, w, rd, p.Remote)
	login.Close()
	r.rep = rep
	var re *sshlogin.RefusedError
	if st := rep.Stages[1]; st.Err != "" && errors.As(login.Wait(), &re) {
		return failure(ExitSSH, re, "login failed: %s", re).
			hint("the server has no such subsystem (sshd_config's Subsystem lines name them)")
	}
	return p.result(rep)
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

// size is a byte count for people.
func size(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// sshHostName is the host an ssh login command reaches, as ssh_config resolves it; "" when
// its arguments or configuration cannot be read. The client dials the remote half only there.
func sshHostName(login []string) string {
	inv, err := sshconfig.ParseArgs(login[1:])
	if err != nil {
		return ""
	}
	cfg, err := sshconfig.Resolve(inv, sshconfig.DefaultEnv())
	if err != nil {
		return ""
	}
	return cfg.HostName
}
