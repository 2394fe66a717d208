package socketpipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/pkg/deploy"
	"github.com/socketpipe/socketpipe/pkg/plumb"
	"github.com/socketpipe/socketpipe/pkg/sshlogin"
)

// Pass-through: in ssh mode, a command that socketpipe's remote half cannot serve runs over
// the SSH session itself, exactly as ssh would run it: the server gets the user's command line
// in an exec request, and socketpipe's standard input and output are the session's. That is
// what a login needs whose server forces a command (sshd's ForceCommand, or command= in
// authorized_keys: rrsync, borg serve --restrict-to-path, git-shell, gitolite), which replaces
// socketpipe's start command and sees the user's command line only in SSH_ORIGINAL_COMMAND.

// forcedGrace is how long a session that printed something may take to print the start
// command's first line before its output is taken for a forced command's: a login shell's
// banner is followed by it at once.
const forcedGrace = 3 * time.Second

// passThrough is ssh mode's way out for a forced command.
type passThrough struct {
	command string    // the user's command line, as ssh sends it
	stdin   io.Reader // nil: end of file at once (-n)
	stdout  io.Writer
	now     bool                   // --pass-through
	known   *sshlogin.ForcedLogins // logins remembered to force a command; nil: none
	logf    func(string, ...any)

	why        string // why the command was passed through
	toRemote   atomic.Int64
	fromRemote atomic.Int64
}

func (pt *passThrough) log(format string, args ...any) {
	if pt.logf != nil {
		pt.logf(format, args...)
	}
}

// decide says, once the login knows whom it reached, whether to pass the command through at
// once rather than start the remote half: asked for, or a login remembered to force a command.
func (pt *passThrough) decide(ep *sshlogin.Endpoint) bool {
	switch {
	case pt.now:
		pt.why = "asked for with --pass-through"
	case ep != nil:
		ok, err := pt.known.Has(ep)
		if err != nil {
			pt.log("cannot read the forced-command logins (%s): %v", pt.known.Path, err)
		}
		if !ok {
			return false
		}
		pt.why = fmt.Sprintf("%s remembers that %s (host key %s) runs a forced command", pt.known.Path, ep, ep.Fingerprint())
	default:
		return false
	}
	pt.log("pass-through: %s; the command runs over the SSH session as ssh would run it (no remote half, no direct data connection)", pt.why)
	return true
}

// forced notes a login found to run a forced command, for the next runs.
func (pt *passThrough) forced(ep *sshlogin.Endpoint, why string) {
	pt.why = "the server runs a forced command: " + why
	pt.log("pass-through: %s; running the command again over the SSH session as ssh would (the forced command started once more, with socketpipe's request on its input)", pt.why)
	if ep == nil || pt.known == nil {
		return
	}
	if err := pt.known.Add(ep, time.Now()); err != nil {
		pt.log("cannot remember the login in %s: %v", pt.known.Path, err)
		return
	}
	pt.log("remembered %s (host key %s) in %s: later runs pass through at once; delete the line to forget", ep, ep.Fingerprint(), pt.known.Path)
}

// run carries stdin to the session's standard input and its standard output to stdout until
// the remote command ends, and reports it as the run's remote stage.
func (pt *passThrough) run(ctx context.Context, s *sshlogin.Cmd, w io.WriteCloser, r io.Reader, remote []string) *plumb.Report {
	t0 := time.Now()
	go func() {
		if pt.stdin != nil {
			n, _ := io.Copy(w, pt.stdin)
			pt.toRemote.Add(n)
		}
		w.Close()
	}()
	n, err := io.Copy(pt.stdout, r)
	pt.fromRemote.Add(n)
	if err != nil {
		// The reader of our output went away: as with ssh, the remote command then meets a
		// closed channel.
		s.CloseSession()
	}
	werr := s.Wait()
	st := &plumb.Stage{Name: plumb.StageRemote, Argv: remote, Ran: true}
	var ee *sshlogin.ExitError
	switch {
	case werr == nil:
	case errors.As(werr, &ee):
		st.Exit, st.Signal = ee.Status, ee.Signal
	default:
		st.Exit, st.Err = ExitSSH, quote.Printable(werr.Error(), 200)
	}
	return &plumb.Report{
		Mode: modePassThrough, Why: pt.why,
		Stages:   []*plumb.Stage{nil, st, nil},
		ToRemote: pt.toRemote.Load(), FromRemote: pt.fromRemote.Load(),
		Transfer: time.Since(t0),
	}
}

// forcedWatch follows the first session until it shows it runs the start command, and cancels
// the run when the session turns out to run a forced command instead.
type forcedWatch struct {
	ctx    context.Context // the run's: cancelled with errForced
	cancel context.CancelCauseFunc
	w      *deploy.Watcher
	on     bool
	wctx   context.Context
	stopW  context.CancelFunc
	why    chan string
}

// watchForced starts watching w (when on: a login that runs the start command, native or an
// executed ssh); held is released as soon as the start command shows.
func watchForced(ctx context.Context, w *deploy.Watcher, held *heldWriter, silence time.Duration, on bool) *forcedWatch {
	f := &forcedWatch{w: w, on: on, why: make(chan string, 1)}
	f.ctx, f.cancel = context.WithCancelCause(ctx)
	f.wctx, f.stopW = context.WithCancel(ctx)
	if !on {
		held.release()
		f.why <- ""
		return f
	}
	go func() {
		why := w.ForcedCommand(f.wctx, forcedGrace, silence)
		select {
		case <-w.Ended():
			// The run meets the end of the output by itself, and keeps its own error for
			// the case that the verdict is overruled (an ssh that exited 255).
		default:
			if why != "" {
				f.cancel(errForced)
			}
		}
		f.why <- why
	}()
	go func() {
		select {
		case <-w.Started():
			held.release()
		case <-f.wctx.Done():
		}
	}()
	return f
}

func (f *forcedWatch) stop() {
	f.stopW()
	f.cancel(nil)
}

// verdict says, once the run has returned runErr, why the login seems to run a forced command,
// or "".
func (f *forcedWatch) verdict(runErr error, login *sshlogin.Cmd) string {
	if runErr != nil && f.on && !errors.Is(context.Cause(f.ctx), errForced) {
		f.w.Drain(2 * time.Second) // to see how the session ended
	}
	f.stopW()
	why := <-f.why
	if why != "" && !login.Native() {
		// An ssh that failed by itself (status 255) never ran a command: not a forced one.
		select {
		case <-f.w.Ended():
		default:
			login.Close()
		}
		var ee *sshlogin.ExitError
		if err := waitLogin(login, 3*time.Second); errors.As(err, &ee) && ee.Status == 255 {
			return ""
		}
	}
	return why
}

// modePassThrough is the Report's mode for a command passed through the SSH session.
const modePassThrough = "pass-through"

// heldWriter holds what the first session writes on its standard error until the session is
// known to run socketpipe's start command: a forced command's complaint about socketpipe's
// request is not the user's to read once the user's own command is passed through. A login
// shell's messages come out as soon as the start command's first line shows it runs.
type heldWriter struct {
	mu    sync.Mutex
	w     io.Writer
	held  bytes.Buffer
	state int
}

const (
	holding = iota
	open
	discarding
)

// maxHeld bounds the held messages; beyond it they are let through.
const maxHeld = 64 << 10

func (h *heldWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch h.state {
	case discarding:
		return len(p), nil
	case holding:
		if h.held.Len()+len(p) <= maxHeld {
			return h.held.Write(p)
		}
		h.flush()
	}
	return h.w.Write(p)
}

// release writes what is held and lets the rest through.
func (h *heldWriter) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state == holding {
		h.flush()
	}
}

func (h *heldWriter) flush() {
	h.w.Write(h.held.Bytes())
	h.held.Reset()
	h.state = open
}

// discard drops what is held, and all that comes later, and returns what was held.
func (h *heldWriter) discard() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.held.String()
	h.held.Reset()
	if h.state == holding {
		h.state = discarding
	}
	return s
}

// forcedError is a brace-mode login whose server runs a forced command: the remote half never
// starts there.
type forcedError struct{ why string }

func (e *forcedError) Error() string {
	return "the remote half did not start: the server runs a forced command for this login (" + e.why + ")"
}

// errForced cancels a run whose login turned out to run a forced command.
var errForced = errors.New("the login runs a forced command")
