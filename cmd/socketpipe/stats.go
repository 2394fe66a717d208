package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/socketpipe/socketpipe"
	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/pkg/plumb"
	"golang.org/x/term"
)

// ui is what a run shows besides the data: -v's story and progress, the error, --stats.
type ui struct {
	statsPath string
	msgs      io.Writer // socketpipe's own messages: past the progress display, or nowhere (ssh -q)
	logf      func(string, ...any)
	progress  *plumb.Progress
	fail      int // the status of socketpipe's own failure
	start     time.Time
}

// newUI is the run's display on stderr; quiet says nothing of socketpipe's own (as ssh -q).
func newUI(a *plumb.Args, stderr *os.File, quiet bool, fail int) *ui {
	u := &ui{statsPath: a.Stats, msgs: stderr, fail: fail, start: time.Now()}
	if a.Verbose > 0 {
		u.progress = &plumb.Progress{W: stderr, Terminal: term.IsTerminal(int(stderr.Fd()))}
		if w, _, err := term.GetSize(int(stderr.Fd())); err == nil {
			u.progress.Width = w
		}
		u.msgs = u.progress.Writer(u.msgs)
	}
	if quiet {
		u.msgs = io.Discard
	}
	u.logf = logger(u.msgs, a.Verbose)
	return u
}

// watch is the Pipe's Watch: -v's progress display, or nil.
func (u *ui) watch() func(*plumb.Meter) {
	if u.progress == nil {
		return nil
	}
	return u.progress.Watch
}

// notRun is the summary of a run that failed before it started, for the remote command argv.
func (u *ui) notRun(remote []string) *plumb.Stats {
	rep := &plumb.Report{Stages: []*plumb.Stage{nil, {Name: plumb.StageRemote, Argv: remote}, nil}}
	s := rep.Stats(nil)
	s.Seconds.Total = time.Since(u.start).Seconds()
	return s
}

// finish prints the run's error once, ends -v's progress display with the totals and writes
// --stats; it returns the exit status, which a stats file that cannot be written turns into a
// failure. A signal that ended the run decides the status, and the run's error is not
// printed: the signal says it.
func (u *ui) finish(s *plumb.Stats, err error, sig syscall.Signal) int {
	status := 0
	var e *socketpipe.Error
	switch {
	case sig != 0:
		status = 128 + int(sig)
		msg := fmt.Sprintf("interrupted by SIG%s", plumb.SignalName(sig))
		s.Exit, s.Error = status, &msg
	case errors.As(err, &e):
		status = report(u.msgs, e)
		msg := e.Error()
		s.Exit, s.Error = status, &msg
	}
	if u.progress != nil {
		u.progress.Finish(s)
	}
	if u.statsPath == "" {
		return status
	}
	if err := writeStats(u.statsPath, s, u.msgs); err != nil {
		printError(u.msgs, &socketpipe.Error{Msg: "--stats: " + err.Error()})
		if status == 0 {
			return u.fail
		}
	}
	return status
}

// logger returns the -v logger: lines on w with the time since start, each made printable as
// the error lines are (see maxLine).
func logger(w io.Writer, verbose int) func(string, ...any) {
	if verbose == 0 {
		return nil
	}
	start := time.Now()
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "socketpipe: [%6.3fs] %s\n", time.Since(start).Seconds(), quote.Printable(fmt.Sprintf(format, args...), maxLine))
	}
}

// writeStats writes s as JSON to path, "-" being stderr. A file is replaced atomically: a
// reader sees the old one or the whole new one. The summary holds every stage's command line
// and the error text, so a new file is the user's alone (0600); a file it replaces keeps its
// mode, which the user chose.
func writeStats(path string, s *plumb.Stats, stderr io.Writer) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err := stderr.Write(b)
		return err
	}
	mode := os.FileMode(0o600)
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
		mode = fi.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
