//go:build linux

package bench

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// wanTable is a table of the default paths whose cells hold the given medians in seconds, by key.
func wanTable(secs map[string]float64, failed map[string]error) *WANTable {
	t := &WANTable{Paths: DefaultWANPaths(), Runs: 1, Settings: "net.ipv4.tcp_wmem = 4096 16384 4194304"}
	for _, r := range WANRows {
		row := make([]*WANCell, len(t.Paths))
		for j, p := range t.Paths {
			key := "wan-" + r.Key + "@" + p.Key()
			c := &WANCell{Key: key, Bytes: p.Size}
			if s, ok := secs[key]; ok {
				c.Wall = []time.Duration{time.Duration(s * float64(time.Second))}
				c.EmuCPU = []time.Duration{c.Wall[0] / 5}
			}
			if err, ok := failed[key]; ok {
				c.Err = err
			}
			if c.Wall != nil || c.Err != nil {
				row[j] = c
			}
		}
		t.Cells = append(t.Cells, row)
	}
	return t
}

// The goals are the baseline's time over the subject's, met at their bounds.
func TestWANGoals(t *testing.T) {
	tab := wanTable(map[string]float64{
		"wan-raw@100ms": 10, "wan-sp1@100ms": 10.4, // 0.96: met
		"wan-ssh@100ms": 16, "wan-sp8@100ms": 4.1, // 3.90: missed
		"wan-sp@100ms":      5.3,                       // 3.02: met
		"wan-mssh@100ms":    13,                        // 1.23: missed
		"wan-e@100ms":       5.9,                       // 0.898: missed
		"wan-ssh@50ms-loss": 12, "wan-sp@50ms-loss": 4, // 3.0: met
	}, nil)
	want := []struct {
		value float64
		met   bool
	}{{10 / 10.4, true}, {16 / 4.1, false}, {16 / 5.3, true}, {16.0 / 13, false}, {5.3 / 5.9, false}, {3, true}}
	goals := tab.Goals()
	if len(goals) != len(want) {
		t.Fatalf("%d goals, want %d", len(goals), len(want))
	}
	for i, g := range goals {
		if g.Missing != "" || g.Value < want[i].value-0.001 || g.Value > want[i].value+0.001 || g.Met != want[i].met {
			t.Errorf("%s: %.3f met=%v (%s), want %.3f met=%v", g.Measure, g.Value, g.Met, g.Missing, want[i].value, want[i].met)
		}
	}
}

// A failed or missing cell leaves its goals without a value, missed, and the table says why.
func TestWANReportFailedCell(t *testing.T) {
	tab := wanTable(map[string]float64{"wan-raw@100ms": 10, "wan-ssh@100ms": 16, "wan-sp@100ms": 5},
		map[string]error{"wan-sp1@100ms": errors.New("bench: socketpipe --streams 1: exit status 2: socketpipe: error: flag provided but not defined: -streams | more\nusage: ...")})
	goals := tab.Goals()
	if g := goals[0]; g.Missing != "wan-sp1@100ms failed" || g.Met {
		t.Errorf("--streams 1 goal: %+v, want missing because wan-sp1@100ms failed", g)
	}
	if g := goals[1]; g.Missing != "wan-sp8@100ms did not run" || g.Met {
		t.Errorf("--streams 8 goal: %+v, want missing because wan-sp8@100ms did not run", g)
	}
	var out bytes.Buffer
	if WriteWANTable(&out, tab) {
		t.Errorf("WriteWANTable says every goal is met with a cell failed")
	}
	s := out.String()
	for _, want := range []string{
		"| raw TCP, one stream, cat → sink | | | 10.00 s, 26 MiB/s | |",
		"| socketpipe --streams 1 | | | failed: flag provided but not defined: -streams / more | |",
		"| default against the ssh pipe, 100 ms, wan-ssh@100ms / wan-sp@100ms | ≥ 3× | 3.20× | met |",
		"| missed (wan-sp1@100ms failed) |",
		"wan-sp1@100ms failed: bench: socketpipe --streams 1",
		"2.00 s (20 % of a core)",
		"net.ipv4.tcp_wmem = 4096 16384 4194304",
		"| 10 ms RTT, 1 GiB | 50 ms RTT, 512 MiB | 100 ms RTT, 256 MiB | 50 ms RTT, 0.1 % loss, 256 MiB |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "-m ssh |") {
		t.Errorf("table has a row for -m ssh, which has no cell:\n%s", s)
	}
}

// A table of no cells (spbench -only left every cell out) prints nothing.
func TestWANReportEmpty(t *testing.T) {
	var out bytes.Buffer
	if !WriteWANTable(&out, wanTable(nil, nil)) || out.Len() != 0 {
		t.Errorf("empty table: %q", out.String())
	}
}

// Cell keys are what spbench -only matches; sizes and rows per path as documented.
func TestWANPaths(t *testing.T) {
	var keys []string
	for _, p := range DefaultWANPaths() {
		keys = append(keys, p.Key())
	}
	if got := strings.Join(keys, " "); got != "10ms 50ms 100ms 50ms-loss" {
		t.Errorf("path keys %q", got)
	}
	loss := DefaultWANPaths()[3]
	if loss.has("sp8") || !loss.has("ssh") || !loss.has("sp") || loss.Loss != 0.001 {
		t.Errorf("loss path %+v: want only the ssh pipe and the default at 0.1 %%", loss)
	}
}

// The goals compare data paths: each cell's time less its own tiny transfer's, and the table
// shows those setups.
func TestWANGoalsSubtractSetup(t *testing.T) {
	tab := wanTable(map[string]float64{"wan-raw@100ms": 10.4, "wan-sp1@100ms": 11.2}, nil)
	tab.Cell("raw", "100ms").Setup = []time.Duration{400 * time.Millisecond}
	tab.Cell("sp1", "100ms").Setup = []time.Duration{1200 * time.Millisecond}
	g := tab.Goals()[0]
	if g.Missing != "" || g.Value < 0.9999 || g.Value > 1.0001 || !g.Met {
		t.Errorf("--streams 1 goal: %.3f met=%v (%s), want (10.4-0.4)/(11.2-1.2) = 1.00 met", g.Value, g.Met, g.Missing)
	}
	var out bytes.Buffer
	WriteWANTable(&out, tab)
	for _, want := range []string{"setup per cell", "| socketpipe --streams 1 | | | 1.20 s | |", "data paths: each cell less its setup"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}
