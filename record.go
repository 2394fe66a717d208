package socketpipe

import (
	"time"

	"github.com/socketpipe/socketpipe/pkg/plumb"
)

// record follows a run for its summary.
type record struct {
	start    time.Time
	login    string        // native or exec, once the login started
	loggedIn time.Duration // from start until the login started the remote half
	rep      *plumb.Report // nil if the run never got to the client half
}

// loginStarted notes that the login is up.
func (r *record) loginStarted(native bool) {
	r.loggedIn = time.Since(r.start)
	r.login = "exec"
	if native {
		r.login = "native"
	}
}

// stats is the run's summary; err is how it failed, or nil.
func (p *Pipe) stats(r *record, err *Error) *plumb.Stats {
	rep := r.rep
	if rep == nil {
		rep = &plumb.Report{Stages: []*plumb.Stage{nil, {Name: plumb.StageRemote, Argv: p.Remote}, nil}}
		if p.Input != nil {
			rep.Stages[0] = &plumb.Stage{Name: plumb.StageInput, Argv: p.Input}
		}
		if p.Output != nil {
			rep.Stages[2] = &plumb.Stage{Name: plumb.StageOutput, Argv: p.Output}
		}
	}
	s := rep.Stats(nil)
	s.Login = r.login
	if r.rep != nil {
		s.Seconds.Setup += r.loggedIn.Seconds()
	}
	s.Seconds.Total = time.Since(r.start).Seconds()
	s.Exit, s.Error = 0, nil
	if err != nil {
		msg := err.Error()
		s.Exit, s.Error = err.Status, &msg
	}
	return s
}
