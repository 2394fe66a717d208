package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/socketpipe/socketpipe/internal/seal"
	"github.com/socketpipe/socketpipe/pkg/plumb"
	"github.com/socketpipe/socketpipe/pkg/sshconfig"
	"github.com/socketpipe/socketpipe/pkg/sshlogin"
)

// ssh mode: `socketpipe [options] --ssh [ssh options] host command [args...]`, or socketpipe
// run under the name ssh, behaves as `ssh host command` does for a non-interactive command,
// with the direct data connection as the remote command's stdin and stdout.
//
// socketpipe's own options go before --ssh (or in SOCKETPIPE_SSH_OPTIONS); every word after it
// is ssh's, so -v, -e, -m and -t mean there what they mean to ssh.

const (
	// exitSSH is ssh's status for its own failures, which tools such as rsync recognise.
	exitSSH = 255

	// sshOptionsEnv holds socketpipe's own options for ssh mode, for when socketpipe runs under
	// the name ssh and a tool writes the command line.
	sshOptionsEnv = "SOCKETPIPE_SSH_OPTIONS"

	// sshSelfEnv is set while socketpipe executes a login: an `ssh` on PATH that is socketpipe
	// itself then hands everything to the real ssh instead of calling socketpipe again.
	sshSelfEnv = "SOCKETPIPE_SSH_LOGIN"
)

// sshFlag returns the index of --ssh among socketpipe's options (args without the program
// name), or -1. Words in brace blocks are commands, not options.
func sshFlag(args []string) int {
	depth := 0
	for i, a := range args {
		switch {
		case a == "{":
			depth++
		case a == "}" && depth > 0:
			depth--
		case a == "--ssh" && depth == 0:
			return i
		}
	}
	return -1
}

// invokedAsSSH reports whether socketpipe runs under the name ssh (a symlink).
func invokedAsSSH(argv0 string) bool { return filepath.Base(argv0) == "ssh" }

// sshMode is one run in ssh mode.
type sshMode struct {
	asSSH   bool     // run under the name ssh
	sshArgs []string // the words after --ssh (or after the program name)
	stderr  io.Writer
	logf    func(string, ...any)
}

func (m *sshMode) log(format string, args ...any) {
	if m.logf != nil {
		m.logf(format, args...)
	}
}

// runSSH is ssh mode. own are socketpipe's options (before --ssh), sshArgs the rest.
func runSSH(ctx context.Context, own, sshArgs []string, asSSH bool, stdin, stdout, stderr *os.File, sig func() syscall.Signal) int {
	m := &sshMode{asSSH: asSSH, sshArgs: sshArgs, stderr: stderr}
	if asSSH && os.Getenv(sshSelfEnv) != "" {
		if a, err := parseSSHModeOptions(strings.Fields(os.Getenv(sshOptionsEnv))); err == nil {
			m.logf = logger(stderr, a.Verbose)
		}
		return m.handOver("a login that socketpipe itself executes")
	}
	inv, err := sshconfig.ParseArgs(sshArgs)
	a, oerr := parseSSHModeOptions(append(strings.Fields(os.Getenv(sshOptionsEnv)), own...))
	// As ssh -q: nothing of socketpipe's own on standard error, not even its failures (the
	// status says it), unless socketpipe's own -v asks for its story.
	ownVerbose := 0
	if a != nil {
		ownVerbose = a.Verbose
	}
	quiet := inv != nil && quietLogin(inv)
	if quiet && ownVerbose == 0 {
		m.stderr = io.Discard
	}
	if oerr != nil {
		errorf(m.stderr, "%v", oerr)
		hintf(m.stderr, "socketpipe's own options go before --ssh (or in %s); everything after --ssh is ssh's", sshOptionsEnv)
		return exitSSH
	}
	if a.Help {
		sshUsage(stdout)
		return 0
	}
	if a.Version {
		version(stdout)
		return 0
	}
	if inv != nil && !quiet {
		a.Verbose += inv.Verbose
	}
	m.logf = logger(m.stderr, a.Verbose)

	var ae *sshconfig.ArgError
	var ue *sshconfig.UnsupportedError
	subsystem := false
	switch {
	case errors.Is(err, sshconfig.ErrAgentForwarding):
		if realSSH() != "" {
			return m.handOver("-A (agent forwarding)")
		}
		m.sshError(ae, err)
		return exitSSH
	case errors.As(err, &ae):
		m.sshError(ae, err)
		return exitSSH
	case errors.As(err, &ue):
		// -e (the escape character) means nothing without a terminal; -G is answered here;
		// -s (a subsystem) is requested on the native connection.
		var rest []string
		g := false
		for _, o := range ue.Options {
			switch o {
			case "-G":
				g = true
			case "-s":
				subsystem = true
			case "-e":
			default:
				rest = append(rest, o)
			}
		}
		if g {
			return printG(inv, stdout, m.stderr)
		}
		if len(rest) > 0 {
			return m.handOver("ssh option " + strings.Join(rest, " "))
		}
	case err != nil:
		errorf(m.stderr, "%v", strings.TrimPrefix(err.Error(), "sshlogin: "))
		return exitSSH
	}
	if len(inv.Command) == 0 {
		return m.handOver("no remote command (an interactive login)")
	}

	a.Input, a.Output = nil, nil
	a.Remote = []string{strings.Join(inv.Command, " ")}
	rec := newRunRecord(a, stderr)
	if m.stderr == io.Discard {
		rec.silence()
	}
	var status int
	if subsystem {
		status = m.subsystem(ctx, a, inv, stdin, stdout, stderr, sig, rec)
	} else {
		status = m.client(ctx, a, inv, stdin, stdout, stderr, sig, rec)
	}
	if st := rec.finish(status, sig(), rec.stderr); st != status {
		return exitSSH // --stats could not be written
	}
	return status
}

// quietLogin reports whether ssh would print nothing of its own for this command line: -q
// after the last -v, or LogLevel QUIET in the configuration.
func quietLogin(inv *sshconfig.Invocation) bool {
	if inv.Quiet {
		return true
	}
	cfg, err := sshconfig.Resolve(inv, sshconfig.DefaultEnv())
	return err == nil && strings.EqualFold(cfg.LogLevel, "QUIET")
}

// loginArgs are ssh's options and the destination, for the login: without the command words,
// without -e, which the login would refuse as needing a terminal, and without -s, which
// socketpipe serves itself.
func (m *sshMode) loginArgs(inv *sshconfig.Invocation) ([]string, bool) {
	args := sshconfig.DropOptions(m.sshArgs[:len(m.sshArgs)-len(inv.Command)], "es")
	_, err := sshconfig.ParseArgs(args)
	return args, err == nil
}

// client runs the remote command through the login, as client does for the brace mode, with
// ssh's exit convention. Its messages go through rec, which -v and --stats follow.
func (m *sshMode) client(ctx context.Context, a *plumb.Args, inv *sshconfig.Invocation, stdin, stdout, stderr *os.File, sig func() syscall.Signal, rec *runRecord) int {
	msgs := rec.stderr
	m.stderr = msgs
	m.logf = logger(msgs, a.Verbose)
	if a.Encrypt {
		if _, err := seal.ChooseCipher(a.Cipher); err != nil {
			errorf(msgs, "%v", strings.TrimPrefix(err.Error(), "rendezvous: "))
			return exitSSH
		}
	}
	loginArgs, ok := m.loginArgs(inv)
	if !ok {
		return m.handOver("ssh options that need a terminal")
	}
	sshBin := realSSH()
	reason := execNeeded(a, inv)
	if a.PassThrough && reason != "" {
		// What ssh would do: let ssh do it.
		return m.handOver("--pass-through, and the login needs the ssh binary (" + reason + ")")
	}
	if sshBin == "" {
		// Without a real ssh an executed login would run socketpipe again: say so now.
		sshBin = "ssh"
		if reason != "" {
			errorf(msgs, "the ssh binary is needed (%s) and there is none on PATH besides socketpipe", reason)
			hintf(msgs, "install OpenSSH's client, or change the ssh configuration")
			return exitSSH
		}
	}
	os.Setenv(sshSelfEnv, "1")
	a.Login = append([]string{sshBin}, loginArgs...)
	m.log("ssh mode: remote command %q through the remote shell, its standard input and output on socketpipe's data connection", a.Remote[0])

	c := &plumb.Client{
		Remote: a.Remote, Shell: true,
		StdinToRemote: !hasFlag(inv.Flags, "-n"),
		Stdin:         stdin, Stdout: stdout, Stderr: stderr,
		Mode: a.Mode, Host: a.Host, Timeout: a.Timeout, Ports: a.Ports,
		Encrypt: a.Encrypt, Cipher: a.Cipher,
		Liveness: liveness(),
		Logf:     m.logf,
	}
	pt := &passThrough{command: a.Remote[0], stdout: stdout, now: a.PassThrough,
		known: sshlogin.DefaultForcedLogins(), logf: m.logf, handOver: m.handOver}
	if c.StdinToRemote {
		pt.stdin = stdin
	}
	rep, code := runLogin(ctx, a, c, stderr, m.logf, sig, rec, pt)
	if rep == nil {
		if code == 0 {
			code = exitSSH
		}
		return code
	}
	return m.status(rep, msgs)
}

// status is ssh's exit status for a run: the remote command's, 255 when it was killed by a
// signal or could not be told.
func (m *sshMode) status(rep *plumb.Report, msgs io.Writer) int {
	status, stage := rep.Status()
	if stage != nil && (stage.Signal != "" || stage.Err != "" && stage.Exit == exitSSH) {
		errorf(msgs, "%v", rep.StageError())
		return exitSSH
	}
	// Like ssh, say nothing about a remote command's non-zero status: it is the exit status.
	return status
}

// subsystem runs ssh -s: a subsystem (sftp, what scp and sftp ask for) is the server's own
// program, so there is no remote half to start; it is requested on the native connection and
// its input and output are carried over SSH, with no ssh binary needed.
func (m *sshMode) subsystem(ctx context.Context, a *plumb.Args, inv *sshconfig.Invocation, stdin, stdout, stderr *os.File, sig func() syscall.Signal, rec *runRecord) int {
	msgs := rec.stderr
	m.stderr = msgs
	m.logf = logger(msgs, a.Verbose)
	name := a.Remote[0]
	loginArgs, ok := m.loginArgs(inv)
	if !ok {
		return m.handOver("ssh options that need a terminal")
	}
	if reason := execNeeded(a, inv); reason != "" {
		return m.handOver(fmt.Sprintf("subsystem %s, and the login needs the ssh binary (%s)", name, reason))
	}
	m.log("subsystem %q: requested on the native SSH connection, its standard input and output carried over SSH (the server runs its own program for it: there is no remote half to start)", name)
	login := sshlogin.Command(append([]string{"ssh"}, loginArgs...), name)
	login.Subsystem = true
	login.Stderr = stderr
	login.BatchMode = a.Batch
	login.Logf = m.logf
	pt := &passThrough{command: name, stdout: stdout, logf: m.logf, why: "subsystem " + name}
	if !hasFlag(inv.Flags, "-n") {
		pt.stdin = stdin
	}
	w, err := login.StdinPipe()
	if err != nil {
		errorf(msgs, "%v", err)
		return exitSSH
	}
	r, err := login.StdoutPipe()
	if err != nil {
		errorf(msgs, "%v", err)
		return exitSSH
	}
	if err := login.Start(ctx); err != nil {
		if s := sig(); s != 0 {
			return 128 + int(s)
		}
		reportLoginError(msgs, nil, err)
		return exitSSH
	}
	rec.loginStarted(login.Native())
	rep := pt.run(ctx, login, w, r, a.Remote)
	login.Close()
	rec.rep = rep
	if s := sig(); s != 0 {
		return 128 + int(s)
	}
	var re *sshlogin.RefusedError
	if st := rep.Stages[1]; st.Err != "" && errors.As(login.Wait(), &re) {
		errorf(msgs, "login failed: %s", strings.TrimPrefix(re.Error(), "sshlogin: "))
		hintf(msgs, "the server has no such subsystem (sshd_config's Subsystem lines name them)")
		return exitSSH
	}
	return m.status(rep, msgs)
}

// parseSSHModeOptions parses socketpipe's own options for ssh mode with the brace mode's
// parser, so the two modes cannot drift apart; the brace blocks it requires are supplied.
func parseSSHModeOptions(words []string) (*plumb.Args, error) {
	for _, w := range words {
		switch w {
		case "-i", "-l", "-r", "-o", "{", "}":
			return nil, fmt.Errorf("%s has no place in ssh mode: the host and the remote command follow --ssh", w)
		}
	}
	return plumb.ParseArgs(append(words[:len(words):len(words)],
		"-l", "{", "ssh", "}", "-r", "{", "true", "}", "-o", "{", "true", "}"))
}

// sshError reports a command line ssh itself would refuse, in ssh's words.
func (m *sshMode) sshError(ae *sshconfig.ArgError, err error) {
	msg := strings.TrimPrefix(err.Error(), "sshlogin: ")
	if ae != nil {
		msg = ae.Msg
	}
	if m.asSSH {
		fmt.Fprintf(m.stderr, "ssh: %s\n", msg)
		return
	}
	errorf(m.stderr, "ssh: %s", msg)
	hintf(m.stderr, "socketpipe's own options go before --ssh; everything after --ssh is ssh's")
}

// handOver executes the real ssh binary with the same arguments, for what ssh mode cannot
// serve. It returns only on failure.
func (m *sshMode) handOver(reason string) int {
	p := realSSH()
	if p == "" {
		errorf(m.stderr, "ssh mode cannot serve %s, and there is no ssh binary on PATH besides socketpipe", reason)
		hintf(m.stderr, "install OpenSSH's client; socketpipe serves only `ssh [options] host command`")
		return exitSSH
	}
	m.log("handing over to %s: %s", p, reason)
	err := syscall.Exec(p, append([]string{"ssh"}, m.sshArgs...), os.Environ())
	errorf(m.stderr, "running %s: %v", p, err)
	return exitSSH
}

// realSSH finds the ssh binary on PATH that is not socketpipe itself; "" if there is none.
func realSSH() string {
	var self os.FileInfo
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		self, _ = os.Stat(exe)
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, "ssh")
		fi, err := os.Stat(p) // follows symlinks: a link to socketpipe is socketpipe
		if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			continue
		}
		if self != nil && os.SameFile(fi, self) {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		return p
	}
	return ""
}

// execNeeded says why the login would have to execute ssh, or "" when it can log in natively.
// Only the destination's own configuration is looked at; ProxyJump hops that need ssh meet
// the sshSelfEnv guard instead.
func execNeeded(a *plumb.Args, inv *sshconfig.Invocation) string {
	if a.ForceExec {
		return "-x"
	}
	cfg, err := sshconfig.Resolve(inv, sshconfig.DefaultEnv())
	if err != nil {
		return ""
	}
	return cfg.ExecReason
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

// printG prints the resolved configuration in ssh -G's format.
func printG(inv *sshconfig.Invocation, stdout, stderr io.Writer) int {
	cfg, err := sshconfig.Resolve(inv, sshconfig.DefaultEnv())
	if err != nil {
		errorf(stderr, "%v", strings.TrimPrefix(err.Error(), "sshlogin: "))
		return exitSSH
	}
	if err := cfg.WriteG(stdout); err != nil {
		errorf(stderr, "%v", err)
		return exitSSH
	}
	return 0
}

const sshUsageText = `usage: socketpipe [-bevx] [-h host] [-t timeout] [-m mode] [--ports low-high]
                  [--remote-path path] [--deploy-dir dir] [--cipher name] [--stats file]
                  [--pass-through]
                  --ssh [ssh options] destination command [argument ...]
       socketpipe --ssh -s [ssh options] destination subsystem
       socketpipe --ssh -G [ssh options] destination
       ssh [ssh options] destination command [argument ...]   (socketpipe linked as ssh)

Runs the command on the destination as ssh does (the words joined by spaces, through the
remote user's shell), with its standard input and output on a direct TCP connection to
socketpipe's own. socketpipe's options go before --ssh, or in SOCKETPIPE_SSH_OPTIONS; every
word after --ssh is ssh's. A subsystem (-s: sftp, what scp and sftp ask for) is requested on
the native SSH connection. A login whose server forces a command (ForceCommand, command= in
authorized_keys) gets the command over the SSH session, as with ssh, and is remembered in
the cache directory; --pass-through asks for that at once. What socketpipe cannot serve (no
command, -t, -L/-R/-D, -N, -W, -X/-Y, -f, -M/-S/-O, ...) is handed to the real ssh on PATH.

Exit status: the remote command's, or 255 when socketpipe itself fails. See socketpipe(1).
`

func sshUsage(w io.Writer) { io.WriteString(w, sshUsageText) }
