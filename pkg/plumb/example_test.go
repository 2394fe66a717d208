package plumb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/socketpipe/socketpipe/pkg/plumb"
)

// A Report's Stats is the summary socketpipe --stats writes: here one of a run whose output
// command stopped reading early, as a CI job would find it.
func ExampleReport_Stats() {
	rep := &plumb.Report{
		Mode:     "back",
		Setup:    250 * time.Millisecond,
		Transfer: 2 * time.Second,
		ToRemote: 0, FromRemote: 4 << 20,
		TCP: &plumb.TCPInfo{RTT: 800 * time.Microsecond},
		Stages: []*plumb.Stage{
			nil, // no input command
			{Name: plumb.StageRemote, Argv: []string{"yes"}, Ran: true, Exit: 141, Signal: "PIPE"},
			{Name: plumb.StageOutput, Argv: []string{"head", "-c", "4194304"}, Ran: true},
		},
	}
	s := rep.Stats(nil)
	fmt.Printf("exit %d: %s\n", s.Exit, *s.Error)
	fmt.Printf("%.0f bytes/s from the remote, rtt %.1f ms\n", s.Throughput.FromRemote, s.TCP.RTTms)
	b, _ := json.MarshalIndent(s.Stages[0], "", "  ")
	fmt.Println(string(b))
	// Output:
	// exit 141: remote command "yes" was killed by SIGPIPE
	// 2097152 bytes/s from the remote, rtt 0.8 ms
	// {
	//   "name": "remote",
	//   "argv": [
	//     "yes"
	//   ],
	//   "exit": 141,
	//   "signal": "PIPE",
	//   "error": null
	// }
}

// A library user runs the client half over a login's standard input and output (here
// ssh's, started elsewhere), shows the progress and reads the figures at the end.
func ExampleClient_Watch() {
	var toLogin io.Writer   // the login's standard input
	var fromLogin io.Reader // its standard output
	c := &plumb.Client{
		Input:  []string{"tar", "cf", "-", "/srv/data"},
		Remote: []string{"tar", "xf", "-", "-C", "/backup"},
		Stderr: os.Stderr,
	}
	p := &plumb.Progress{W: os.Stderr, Interval: 10 * time.Second}
	c.Watch = p.Watch
	rep, err := c.Run(context.Background(), fromLogin, toLogin)
	s := rep.Stats(err)
	p.Finish(s)
	fmt.Printf("%d bytes to the remote at %.0f bytes/s; exit %d\n", s.Bytes.ToRemote, s.Throughput.ToRemote, s.Exit)
}
