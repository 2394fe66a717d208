//go:build linux

package bench

import (
	"fmt"
	"io"
	"strings"
)

// A WANGoal of issue 18 is a speed ratio of two cells, the baseline's data path over the
// subject's (each cell's median time less its own tiny transfer's: the login and the
// connections cost a few round trips, 0.5-1.5 s at 100 ms, that raw TCP does not pay): how
// many times faster the subject moves the data.
type WANGoal struct {
	Measure           string
	Subject, Baseline string // cell keys
	AtLeast           float64
}

// WANGoals are issue 18's goals: at 100 ms, and with 0.1 % loss at 50 ms (every transfer is
// checked, so a figure is an intact transfer's).
var WANGoals = []WANGoal{
	{"--streams 1 against raw TCP's one stream, 100 ms", "wan-sp1@100ms", "wan-raw@100ms", 0.95},
	{"--streams 8 against the ssh pipe, 100 ms", "wan-sp8@100ms", "wan-ssh@100ms", 4},
	{"default against the ssh pipe, 100 ms", "wan-sp@100ms", "wan-ssh@100ms", 3},
	{"-m ssh against the ssh pipe, 100 ms", "wan-mssh@100ms", "wan-ssh@100ms", 1.3},
	{"-e (default streams) against the default, 100 ms", "wan-e@100ms", "wan-sp@100ms", 0.9},
	{"default against the ssh pipe, 50 ms, 0.1 % loss, intact", "wan-sp@50ms-loss", "wan-ssh@50ms-loss", 3},
}

// cells returns the table's cells by key.
func (t *WANTable) cells() map[string]*WANCell {
	m := map[string]*WANCell{}
	for _, row := range t.Cells {
		for _, c := range row {
			if c != nil {
				m[c.Key] = c
			}
		}
	}
	return m
}

// Goals computes WANGoals from the medians of t's cells. A goal whose cell failed or did not
// run has no value and is not met.
func (t *WANTable) Goals() []Goal {
	cells := t.cells()
	var out []Goal
	for _, wg := range WANGoals {
		g := Goal{Measure: wg.Measure + ", " + wg.Baseline + " / " + wg.Subject, Goal: fmt.Sprintf("≥ %g×", wg.AtLeast), Unit: "×"}
		for _, k := range []string{wg.Subject, wg.Baseline} {
			switch c := cells[k]; {
			case c == nil:
				g.Missing = k + " did not run"
			case !c.ok():
				g.Missing = k + " failed"
			}
			if g.Missing != "" {
				break
			}
		}
		if g.Missing == "" {
			g.Value = cells[wg.Baseline].dataPath().Seconds() / cells[wg.Subject].dataPath().Seconds()
			g.Met = g.Value >= wg.AtLeast
		}
		out = append(out, g)
	}
	return out
}

// WriteWANTable writes the table (medians and throughput), the emulator's CPU time per cell,
// the goals with met or missed, and each failure in full, as Markdown. It reports whether
// every goal was met; it writes nothing for a table with no cells.
func WriteWANTable(w io.Writer, t *WANTable) (allMet bool) {
	if len(t.cells()) == 0 {
		return true
	}
	fmt.Fprintf(w, "\nWAN: two network namespaces joined by the harness's WAN emulator (packets delayed half the round trip each way, %v each way, a drop-tail queue of one bandwidth-delay product), each transfer from host A to a checksumming sink on host B with its own sshd; the hosts' TCP settings are the machine's: %s. %d interleaved round(s), medians; every transfer's length and CRC-32C checked.\n\n",
		WANRate, t.Settings, t.Runs)
	grid := func(cell func(c *WANCell) string) {
		fmt.Fprintf(w, "| |")
		for _, p := range t.Paths {
			fmt.Fprintf(w, " %s |", p.Name())
		}
		fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---:|", len(t.Paths)))
		for i, r := range WANRows {
			if !t.hasRow(i) {
				continue
			}
			fmt.Fprintf(w, "| %s |", r.Name)
			for _, c := range t.Cells[i] {
				s := ""
				if c != nil {
					s = cell(c)
				}
				if s != "" {
					s = " " + s
				}
				fmt.Fprintf(w, "%s |", s)
			}
			fmt.Fprintln(w)
		}
	}
	grid(func(c *WANCell) string {
		if !c.ok() {
			return "failed: " + shortReason(c.Err)
		}
		m := median(c.Wall)
		return seconds(m) + ", " + rate(c.Bytes, m)
	})
	fmt.Fprintf(w, "\nsetup per cell (median of the same transfer of %s on the same path just before each run: the login, the connections, the ending), which the goals subtract:\n\n", Size(TinySize))
	grid(func(c *WANCell) string {
		if !c.ok() || len(c.Setup) == 0 {
			return "—"
		}
		return seconds(median(c.Setup))
	})
	fmt.Fprintf(w, "\nthe emulator's own CPU time per cell (median; user+system of its process, which the figures above do not count):\n\n")
	grid(func(c *WANCell) string {
		if !c.ok() {
			return "—"
		}
		cpu, wall := median(c.EmuCPU), median(c.Wall)
		return fmt.Sprintf("%s (%.0f %% of a core)", seconds(cpu), 100*cpu.Seconds()/wall.Seconds())
	})
	allMet = true
	fmt.Fprintf(w, "\n| WAN goal (data paths: each cell less its setup) | goal | measured | |\n|---|---|---:|---|\n")
	for _, g := range t.Goals() {
		if g.Missing != "" {
			allMet = false
			fmt.Fprintf(w, "| %s | %s | — | missed (%s) |\n", g.Measure, g.Goal, g.Missing)
			continue
		}
		verdict := "met"
		if !g.Met {
			verdict, allMet = "MISSED", false
		}
		fmt.Fprintf(w, "| %s | %s | %.2f× | %s |\n", g.Measure, g.Goal, g.Value, verdict)
	}
	for _, row := range t.Cells {
		for _, c := range row {
			if c != nil && c.Err != nil {
				fmt.Fprintf(w, "\n%s failed: %v\n", c.Key, strings.TrimSpace(c.Err.Error()))
			}
		}
	}
	return allMet
}

func (t *WANTable) hasRow(i int) bool {
	for _, c := range t.Cells[i] {
		if c != nil {
			return true
		}
	}
	return false
}

// shortReason is the gist of err for a table cell: of its first line, what follows the last
// "error: " (socketpipe's own message) or else all but the "bench: " prefix, at most 80
// characters, and no "|" (which would end the cell). The full error follows the table.
func shortReason(err error) string {
	s := strings.TrimPrefix(strings.TrimSpace(err.Error()), "bench: ")
	s, _, _ = strings.Cut(s, "\n")
	if i := strings.LastIndex(s, "error: "); i >= 0 {
		s = s[i+len("error: "):]
	}
	s = strings.ReplaceAll(s, "|", "/")
	if r := []rune(s); len(r) > 80 {
		s = string(r[:79]) + "…"
	}
	return s
}
