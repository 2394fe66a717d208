package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/socketpipe/socketpipe"
	"github.com/socketpipe/socketpipe/internal/quote"
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
	exitSSH = socketpipe.ExitSSH

	// sshOptionsEnv holds socketpipe's own options for ssh mode, for when socketpipe runs under
	// the name ssh and a tool writes the command line.
	sshOptionsEnv = "SOCKETPIPE_SSH_OPTIONS"

	// sshSelfEnv is set while socketpipe executes a login: an `ssh` on PATH that is socketpipe
	// itself then hands everything to the real ssh instead of calling socketpipe again.
	sshSelfEnv = "SOCKETPIPE_SSH_LOGIN"

	// handedOverEnv marks a hand-over to the real ssh: "pid path", the process that executes
	// path, which keeps its process id across the exec. A socketpipe that finds its own process
	// id there was itself taken for the real ssh (a wrapper that executes socketpipe, named ssh
	// on PATH) and refuses, instead of handing over again round and round.
	handedOverEnv = "SOCKETPIPE_SSH_HANDED_OVER"
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

// sshFailure is a failure of socketpipe's own in ssh mode: status 255, as ssh's.
func sshFailure(cause error, format string, args ...any) *socketpipe.Error {
	return &socketpipe.Error{Msg: fmt.Sprintf(format, args...), Status: exitSSH, Err: cause}
}

// runSSH is ssh mode. own are socketpipe's options (before --ssh), sshArgs the rest.
func runSSH(ctx context.Context, own, sshArgs []string, asSSH bool, stdin, stdout, stderr *os.File, sig func() syscall.Signal) int {
	m := &sshMode{asSSH: asSSH, sshArgs: sshArgs, stderr: stderr}
	if e := handedOverToSelf(); e != nil {
		return report(m.stderr, e)
	}
	if asSSH && os.Getenv(sshSelfEnv) != "" {
		if a, err := parseSSHModeOptions(strings.Fields(os.Getenv(sshOptionsEnv))); err == nil {
			m.logf = logger(stderr, a.Verbose)
		}
		return report(m.stderr, m.handOver("a login that socketpipe itself executes"))
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
		e := sshFailure(oerr, "%v", oerr)
		e.Hints = []string{fmt.Sprintf("socketpipe's own options go before --ssh (or in %s); everything after --ssh is ssh's", sshOptionsEnv)}
		return report(m.stderr, e)
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
		if sshconfig.RealSSH() != "" {
			return report(m.stderr, m.handOver("-A (agent forwarding)"))
		}
		return report(m.stderr, m.sshError(ae, err))
	case errors.As(err, &ae):
		return report(m.stderr, m.sshError(ae, err))
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
			return report(m.stderr, printG(inv, stdout))
		}
		if len(rest) > 0 {
			return report(m.stderr, m.handOver("ssh option "+strings.Join(rest, " ")))
		}
	case err != nil:
		return report(m.stderr, sshFailure(err, "%v", err))
	}
	if len(inv.Command) == 0 {
		return report(m.stderr, m.handOver("no remote command (an interactive login)"))
	}

	a.Input, a.Output = nil, nil
	a.Remote = []string{strings.Join(inv.Command, " ")}
	u := newUI(a, stderr, m.stderr == io.Discard, exitSSH)
	m.stderr, m.logf = u.msgs, u.logf
	p, perr := m.pipe(a, inv, subsystem, stdin, stdout, stderr, u)
	if perr != nil {
		return u.finish(u.notRun(a.Remote), perr, sig())
	}
	st, err := p.Run(ctx)
	var ne *socketpipe.SSHNeededError
	if errors.As(err, &ne) {
		err = m.handOver(ne.Reason)
	}
	return u.finish(st, err, sig())
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

// pipe is the run of the remote command through the login, as for the brace mode, with ssh's
// meaning and exit convention; or the reason it cannot be, when the ssh binary must serve it
// (then it has been executed in socketpipe's place, unless that failed).
func (m *sshMode) pipe(a *plumb.Args, inv *sshconfig.Invocation, subsystem bool, stdin, stdout, stderr *os.File, u *ui) (*socketpipe.Pipe, *socketpipe.Error) {
	if a.Encrypt && !subsystem {
		// Before any hand-over: a cipher that does not exist is a mistake whoever logs in.
		if _, err := seal.ChooseCipher(a.Cipher); err != nil {
			return nil, sshFailure(err, "%v", err)
		}
	}
	loginArgs, ok := m.loginArgs(inv)
	if !ok {
		return nil, m.handOver("ssh options that need a terminal")
	}
	reason := execNeeded(a, inv)
	p := newPipe(a, stdin, stdout, stderr, u)
	p.SSHMode = true
	p.StdinToRemote = !hasFlag(inv.Flags, "-n")
	if subsystem {
		if reason != "" {
			return nil, m.handOver(fmt.Sprintf("subsystem %s, and the login needs the ssh binary (%s)", a.Remote[0], reason))
		}
		p.Subsystem = true
		p.Login = append([]string{"ssh"}, loginArgs...)
		return p, nil
	}
	sshBin := sshconfig.RealSSH()
	if a.PassThrough && reason != "" {
		// What ssh would do: let ssh do it.
		return nil, m.handOver("--pass-through, and the login needs the ssh binary (" + reason + ")")
	}
	if sshBin == "" {
		// Without a real ssh an executed login would run socketpipe again: say so now.
		sshBin = "ssh"
		if reason != "" {
			e := sshFailure(nil, "the ssh binary is needed (%s) and there is none on PATH besides socketpipe", reason)
			e.Hints = []string{"install OpenSSH's client, or change the ssh configuration"}
			return nil, e
		}
	}
	os.Setenv(sshSelfEnv, "1")
	p.Login = append([]string{sshBin}, loginArgs...)
	p.PassThrough = a.PassThrough
	p.ForcedLogins = sshlogin.DefaultForcedLogins()
	m.log("ssh mode: remote command %q through the remote shell, its standard input and output on socketpipe's data connection", a.Remote[0])
	return p, nil
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

// sshError is a command line ssh itself would refuse, in ssh's words.
func (m *sshMode) sshError(ae *sshconfig.ArgError, err error) *socketpipe.Error {
	msg := err.Error()
	if ae != nil {
		msg = ae.Msg
	}
	if m.asSSH {
		return sshFailure(&sshVoice{err}, "%s", msg)
	}
	e := sshFailure(err, "ssh: %s", msg)
	e.Hints = []string{"socketpipe's own options go before --ssh; everything after --ssh is ssh's"}
	return e
}

// handOver executes the real ssh binary with the same arguments, for what ssh mode cannot
// serve. It returns only on failure.
func (m *sshMode) handOver(reason string) *socketpipe.Error {
	p := sshconfig.RealSSH()
	if p == "" {
		e := sshFailure(nil, "ssh mode cannot serve %s, and there is no ssh binary on PATH besides socketpipe", reason)
		e.Hints = []string{"install OpenSSH's client; socketpipe serves only `ssh [options] host command`"}
		return e
	}
	m.log("handing over to %s: %s", p, reason)
	// An earlier hand-over's mark (this socketpipe runs under a real ssh's ProxyCommand) is
	// replaced, not shadowed: with a key twice, the program executed reads the first.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, handedOverEnv+"=") })
	env = append(env, fmt.Sprintf("%s=%d %s", handedOverEnv, os.Getpid(), p))
	err := syscall.Exec(p, append([]string{"ssh"}, m.sshArgs...), env)
	return sshFailure(err, "running %s: %v", p, err)
}

// handedOverToSelf is the error for a socketpipe that a hand-over took for the real ssh: its
// own process id is in handedOverEnv. nil otherwise, as for an ssh that the real ssh runs in
// turn (a ProxyCommand's), which is another process.
func handedOverToSelf() *socketpipe.Error {
	pid, path, _ := strings.Cut(os.Getenv(handedOverEnv), " ")
	if pid != strconv.Itoa(os.Getpid()) {
		return nil
	}
	e := sshFailure(nil, "socketpipe handed the command to %s as the real ssh, and that ran socketpipe again", quote.Printable(path, 256))
	e.Hints = []string{"put OpenSSH's ssh on PATH: the real ssh is the first ssh on PATH that is not socketpipe, and this one executes socketpipe"}
	return e
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
func printG(inv *sshconfig.Invocation, stdout io.Writer) *socketpipe.Error {
	cfg, err := sshconfig.Resolve(inv, sshconfig.DefaultEnv())
	if err != nil {
		return sshFailure(err, "%v", err)
	}
	if err := cfg.WriteG(stdout); err != nil {
		return sshFailure(err, "%v", err)
	}
	return nil
}

const sshUsageText = `usage: socketpipe [-bevx] [-h host] [-t timeout] [-m mode] [--ports low-high]
                  [--remote-path path] [--deploy-dir dir] [--cipher name] [--streams n]
                  [--stats file] [--pass-through]
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
