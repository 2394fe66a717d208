package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/socketpipe/socketpipe/pkg/plumb"
	"golang.org/x/term"
)

// runRecord follows a client run for --stats and -v's progress: the error voice passes through
// it, and client tells it what happened.
type runRecord struct {
	args     *plumb.Args
	start    time.Time
	login    string        // native or exec, once the login started
	loggedIn time.Duration // from start until the login started the remote half
	rep      *plumb.Report // nil if the run never got to the client half
	progress *plumb.Progress

	mu     sync.Mutex
	errMsg string // the first "socketpipe: error:" message, as printed
	stderr io.Writer
}

func newRunRecord(a *plumb.Args, stderr *os.File) *runRecord {
	r := &runRecord{args: a, start: time.Now()}
	r.stderr = r.errors(stderr)
	if a.Verbose > 0 {
		r.progress = &plumb.Progress{W: stderr, Terminal: term.IsTerminal(int(stderr.Fd()))}
		if w, _, err := term.GetSize(int(stderr.Fd())); err == nil {
			r.progress.Width = w
		}
		r.stderr = r.progress.Writer(r.stderr)
	}
	return r
}

// silence drops socketpipe's own messages (ssh -q) but still notes the first error for --stats.
func (r *runRecord) silence() { r.stderr = r.errors(io.Discard) }

// errors returns a writer to w that keeps the first error message written through it.
func (r *runRecord) errors(w io.Writer) io.Writer { return errorTee{r, w} }

type errorTee struct {
	r *runRecord
	w io.Writer
}

func (t errorTee) Write(b []byte) (int, error) {
	const prefix = "socketpipe: error: "
	if msg, ok := bytes.CutPrefix(b, []byte(prefix)); ok {
		t.r.mu.Lock()
		if t.r.errMsg == "" {
			t.r.errMsg = strings.TrimSuffix(string(msg), "\n")
		}
		t.r.mu.Unlock()
	}
	return t.w.Write(b)
}

// loginStarted notes that the login is up.
func (r *runRecord) loginStarted(native bool) {
	r.loggedIn = time.Since(r.start)
	r.login = "exec"
	if native {
		r.login = "native"
	}
}

// watch sets the client up for -v's progress display.
func (r *runRecord) watch(c *plumb.Client) {
	if r.progress != nil {
		c.Watch = r.progress.Watch
	}
}

// stats is the run's summary; status is the exit status socketpipe exits with.
func (r *runRecord) stats(status int, sig syscall.Signal) *plumb.Stats {
	rep := r.rep
	if rep == nil {
		rep = &plumb.Report{Stages: []*plumb.Stage{
			{Name: plumb.StageInput, Argv: r.args.Input},
			{Name: plumb.StageRemote, Argv: r.args.Remote},
			{Name: plumb.StageOutput, Argv: r.args.Output},
		}}
		if r.args.Input == nil {
			rep.Stages[0] = nil
		}
		if r.args.Output == nil {
			rep.Stages[2] = nil
		}
	}
	s := rep.Stats(nil)
	s.Login = r.login
	if r.rep != nil {
		s.Seconds.Setup += r.loggedIn.Seconds()
	}
	s.Seconds.Total = time.Since(r.start).Seconds()
	s.Exit = status
	r.mu.Lock()
	msg := r.errMsg
	r.mu.Unlock()
	switch {
	case msg != "":
		s.Error = &msg
	case sig != 0:
		m := fmt.Sprintf("interrupted by SIG%s", plumb.SignalName(sig))
		s.Error = &m
	case status == 0:
		s.Error = nil
	}
	return s
}

// finish ends -v's progress display with the totals and writes --stats; it returns the exit
// status, which a stats file that cannot be written turns into a failure.
func (r *runRecord) finish(status int, sig syscall.Signal, stderr io.Writer) int {
	a := r.args
	s := r.stats(status, sig)
	if r.progress != nil {
		r.progress.Finish(s)
	}
	if a.Stats == "" {
		return status
	}
	if err := writeStats(a.Stats, s, stderr); err != nil {
		errorf(stderr, "--stats: %v", err)
		if status == 0 {
			return exitFailure
		}
	}
	return status
}

// writeStats writes s as JSON to path, "-" being stderr. A file is replaced atomically: a
// reader sees the old one or the whole new one.
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
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
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
