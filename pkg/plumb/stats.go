package plumb

import (
	"time"

	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// StatsVersion is the version of the Stats schema. It changes only when a field changes
// meaning or goes away; new fields may appear without it changing.
const StatsVersion = 1

// ExitFailure is the status of a run that failed on socketpipe's own account (login,
// protocol, data connection), as the socketpipe command exits with it.
const ExitFailure = 2

// Stats is a run's summary, as socketpipe --stats writes it (docs/stats.md is the schema).
// Fields that do not apply are zero: "" for a login or mode never reached, nil for TCP
// figures in relayed modes and for Error when the run succeeded.
type Stats struct {
	Version    int          `json:"version"`    // StatsVersion
	Login      string       `json:"login"`      // "native" or "exec"; "" if the login never started
	Mode       string       `json:"mode"`       // back, reverse or ssh; "" if no data connection was made
	Encrypted  bool         `json:"encrypted"`  // -e encrypted the data connection
	Bytes      StatsBytes   `json:"bytes"`      // data bytes each way
	Seconds    StatsSeconds `json:"seconds"`    // where the time went
	Throughput StatsRates   `json:"throughput"` // Bytes over Seconds.Transfer, bytes per second
	TCP        *StatsTCP    `json:"tcp"`        // the kernel's view of the data connection; nil unless plain TCP
	Stages     []StatsStage `json:"stages"`     // the commands of the pipeline, in order
	Exit       int          `json:"exit"`       // the run's exit status
	Error      *string      `json:"error"`      // nil, or what went wrong, as socketpipe reports it
}

// StatsBytes counts data bytes, the proof and framing excluded: what the remote command was
// sent and what the local side received from it.
//
// Unknown says that nothing counted them: in plain mode socketpipe reads the kernel's counts
// of the socket the commands hold, and a system that keeps none it can read (OpenBSD, NetBSD)
// leaves both 0 and Unknown true rather than guess.
type StatsBytes struct {
	ToRemote   int64 `json:"to_remote"`
	FromRemote int64 `json:"from_remote"`
	Unknown    bool  `json:"unknown,omitempty"`
}

// StatsSeconds splits a run's time: setup until the data connection is ready (login and
// rendezvous), transfer until every stage has ended, total from start to end.
type StatsSeconds struct {
	Setup    float64 `json:"setup"`
	Transfer float64 `json:"transfer"`
	Total    float64 `json:"total"`
}

// StatsRates are average rates over the transfer, in bytes per second.
type StatsRates struct {
	ToRemote   float64 `json:"to_remote"`
	FromRemote float64 `json:"from_remote"`
}

// StatsTCP is the kernel's view of a plain TCP data connection at its end.
type StatsTCP struct {
	RTTms       float64 `json:"rtt_ms"`      // smoothed round-trip time, milliseconds
	Retransmits uint32  `json:"retransmits"` // segments sent again
}

// StatsStage is how one command of the pipeline ended.
type StatsStage struct {
	Name   string   `json:"name"`   // input, remote or output
	Argv   []string `json:"argv"`   // the command
	Exit   *int     `json:"exit"`   // its exit status (128+signal when killed); nil if it never ran
	Signal *string  `json:"signal"` // the signal that killed it ("PIPE", "KILL", ...), or nil
	Error  *string  `json:"error"`  // why it could not run, or nil
}

// Stats summarises the run. runErr is the error Run returned: it makes the summary a failure
// with ExitFailure. Seconds.Total is setup and transfer; a caller that did more (a login)
// knows better and may correct it.
func (r *Report) Stats(runErr error) *Stats {
	s := &Stats{
		Version:   StatsVersion,
		Mode:      r.Mode,
		Encrypted: r.Encrypted,
		Bytes:     StatsBytes{ToRemote: r.ToRemote, FromRemote: r.FromRemote, Unknown: r.Uncounted},
		Seconds: StatsSeconds{
			Setup:    r.Setup.Seconds(),
			Transfer: r.Transfer.Seconds(),
			Total:    (r.Setup + r.Transfer).Seconds(),
		},
		Stages: []StatsStage{},
	}
	if t := r.Transfer.Seconds(); t > 0 {
		s.Throughput = StatsRates{ToRemote: float64(r.ToRemote) / t, FromRemote: float64(r.FromRemote) / t}
	}
	if r.TCP != nil {
		s.TCP = &StatsTCP{RTTms: float64(r.TCP.RTT) / float64(time.Millisecond), Retransmits: r.TCP.Retransmits}
	}
	for _, st := range r.Stages {
		if st == nil {
			continue
		}
		ss := StatsStage{Name: st.Name, Argv: st.Argv}
		if st.Ran || st.Err != "" || st.Exit != 0 {
			ss.Exit = ptr(st.Exit)
		}
		if st.Signal != "" {
			ss.Signal = ptr(st.Signal)
		}
		if st.Err != "" {
			ss.Error = ptr(st.Err)
		}
		s.Stages = append(s.Stages, ss)
	}
	s.Exit, _ = r.Status()
	switch {
	case runErr != nil:
		s.Exit = ExitFailure
		s.Error = ptr(runErr.Error())
	case s.Exit != 0:
		s.Error = ptr(r.StageError().Error())
	}
	return s
}

func ptr[T any](v T) *T { return &v }

// settleTime bounds the wait at the end of a plain transfer for the peer to acknowledge the
// last bytes, so that the counts are exact.
const settleTime = 2 * time.Second

// count fills in the Report's byte counts and TCP figures at the end of a transfer, before the
// link is closed: socketpipe's own counts when it relayed, the kernel's in plain mode; where the
// kernel keeps none, socketpipe's own if it relayed both ways, else unknown.
func (l *link) count(rep *Report, ok bool) {
	rep.Encrypted = l.sealed
	rep.ToRemote, rep.FromRemote = l.sent.Load(), l.received.Load()
	if l.sock == nil {
		return
	}
	d := time.Duration(0)
	if ok {
		d = settleTime
	}
	s, err := settle(l.sock, d)
	if err != nil {
		if !l.ownCounts() {
			rep.ToRemote, rep.FromRemote, rep.Uncounted = 0, 0, true
		}
		return
	}
	shut := l.shut.Load()
	rep.ToRemote = s.sentData(l.dialed(), shut)
	rep.FromRemote = s.receivedData(shut)
	rep.TCP = s.tcpInfo()
}

// dialed reports whether this side dialled the data connection (its SYN is in the counts).
func (l *link) dialed() bool { return l.mode == rendezvous.ModeReverse }
