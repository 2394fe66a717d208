package plumb

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExactCounts moves 16 MiB each way (and, to tell the directions apart, 16 MiB one way and
// a little back) in every mode, and wants the counts to the byte.
func TestExactCounts(t *testing.T) {
	const size = 16 << 20
	in, _ := randomFile(t, size)
	remotes := []struct {
		name string
		argv []string
		back int64
	}{
		{"echo", []string{"cat"}, size},
		{"asymmetric", []string{"sh", "-c", "cat >/dev/null; head -c 12345 /dev/zero"}, 12345},
	}
	for _, tc := range []struct {
		mode string
		enc  bool
		tcp  bool
	}{
		{"back", false, true},
		{"reverse", false, true},
		{"back", true, false},
		{"reverse", true, false},
		{"ssh", false, false},
	} {
		for _, rem := range remotes {
			name := tc.mode + "/" + rem.name
			if tc.enc {
				name = tc.mode + "-e/" + rem.name
			}
			t.Run(name, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out")
				rep, err := loopback(t, &Client{
					Input:  []string{"cat", in},
					Remote: rem.argv,
					Output: []string{"sh", "-c", "cat > " + out},
					Mode:   tc.mode, Encrypt: tc.enc, Timeout: 20 * time.Second,
				})
				if err != nil {
					t.Fatal(err)
				}
				if st, s := rep.Status(); st != 0 {
					t.Fatalf("status %d (%v)", st, s)
				}
				if fi, err := os.Stat(out); err != nil || fi.Size() != rem.back {
					t.Fatalf("output: %v, %v bytes, want %d", err, fi, rem.back)
				}
				if tc.tcp && !haveTCPCounts {
					// Plain mode where the system keeps no counts socketpipe can read: unknown, not 0.
					if !rep.Uncounted || rep.ToRemote != 0 || rep.FromRemote != 0 || rep.TCP != nil {
						t.Errorf("counts %d and %d, TCP figures %+v, Uncounted %v: want them unknown", rep.ToRemote, rep.FromRemote, rep.TCP, rep.Uncounted)
					}
					if s := rep.Stats(nil); !s.Bytes.Unknown || s.Exit != 0 || s.Mode != tc.mode {
						t.Errorf("stats: %+v", s)
					}
					return
				}
				if rep.Uncounted {
					t.Errorf("counts unknown where they are counted")
				}
				if rep.ToRemote != size || rep.FromRemote != rem.back {
					t.Errorf("counted %d to the remote and %d from it, want %d and %d", rep.ToRemote, rep.FromRemote, size, rem.back)
				}
				if (rep.TCP != nil) != tc.tcp {
					t.Errorf("TCP figures %+v, want them only for plain TCP", rep.TCP)
				}
				if rep.Encrypted != tc.enc {
					t.Errorf("Encrypted = %v", rep.Encrypted)
				}
				s := rep.Stats(nil)
				if s.Bytes.ToRemote != size || s.Exit != 0 || s.Error != nil || len(s.Stages) != 3 || s.Mode != tc.mode {
					t.Errorf("stats: %+v", s)
				}
				if s.Throughput.ToRemote <= 0 || s.Seconds.Transfer <= 0 {
					t.Errorf("stats without time: %+v", s)
				}
			})
		}
	}
}

// TestExactCountsStdio counts what socketpipe itself reads from its standard input and
// writes to its standard output, in plain mode.
func TestExactCountsStdio(t *testing.T) {
	const size = 16 << 20
	in, _ := randomFile(t, size)
	for _, mode := range []string{"back", "reverse", "ssh"} {
		t.Run(mode, func(t *testing.T) {
			stdin, err := os.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			stdout, err := os.Create(filepath.Join(t.TempDir(), "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer stdout.Close()
			rep, err := loopback(t, &Client{
				Remote: []string{"cat"}, StdinToRemote: true, Stdin: stdin, Stdout: stdout,
				Mode: mode, Timeout: 20 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.ToRemote != size || rep.FromRemote != size {
				t.Errorf("counted %d to the remote and %d from it, want %d each", rep.ToRemote, rep.FromRemote, size)
			}
		})
	}
}

// TestStatsFailedStage: a failing stage makes the summary a failure that names it.
func TestStatsFailedStage(t *testing.T) {
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	rep, err := loopback(t, &Client{
		Input: []string{"true"}, Remote: []string{"sh", "-c", "exit 3"}, Output: []string{"cat"},
		Mode: "back", Stdout: devnull,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Stats(nil)
	if s.Exit != 3 || s.Error == nil || !strings.Contains(*s.Error, "remote command") {
		t.Fatalf("stats: exit %d, error %v", s.Exit, s.Error)
	}
	if got := s.Stages[1]; got.Name != StageRemote || got.Exit == nil || *got.Exit != 3 {
		t.Fatalf("remote stage: %+v", got)
	}
}

// TestStatsJSON pins the wire names of the schema in docs/stats.md.
func TestStatsJSON(t *testing.T) {
	rep := &Report{
		Mode: "back", Setup: time.Second, Transfer: 2 * time.Second, ToRemote: 10, FromRemote: 20,
		TCP: &TCPInfo{RTT: 1500 * time.Microsecond, Retransmits: 4},
		Stages: []*Stage{
			nil,
			{Name: StageRemote, Argv: []string{"yes"}, Ran: true, Exit: 141, Signal: "PIPE"},
			{Name: StageOutput, Argv: []string{"head"}, Ran: true},
		},
	}
	b, err := json.Marshal(rep.Stats(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"login":"","mode":"back","encrypted":false,"bytes":{"to_remote":10,"from_remote":20},` +
		`"seconds":{"setup":1,"transfer":2,"total":3},"throughput":{"to_remote":5,"from_remote":10},` +
		`"tcp":{"rtt_ms":1.5,"retransmits":4},` +
		`"stages":[{"name":"remote","argv":["yes"],"exit":141,"signal":"PIPE","error":null},` +
		`{"name":"output","argv":["head"],"exit":0,"signal":null,"error":null}],` +
		`"exit":141,"error":"remote command \"yes\" was killed by SIGPIPE"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	// A run that never got going.
	var s Stats
	b, _ = json.Marshal((&Report{Stages: []*Stage{{Name: StageRemote, Argv: []string{"cat"}}}}).Stats(os.ErrDeadlineExceeded))
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.Exit != ExitFailure || s.Error == nil || s.TCP != nil || s.Stages[0].Exit != nil {
		t.Fatalf("failed run: %s", b)
	}
}
