//go:build linux

package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// A Goal is one line of issue 8's table: a ratio of medians and the bound it must meet.
type Goal struct {
	Measure string
	Goal    string
	Value   float64 // the measured ratio, or MiB for memory
	Unit    string  // "×" or "MiB"
	Met     bool
	Missing string // why there is no value (a variant failed); "" if Value holds
}

// Plan says which of issue 14's comparisons a run makes, beside issue 8's standard variants.
type Plan struct {
	Workloads []Workload // each with its -raw and -sp variants
	RR        bool       // the request/response variants ran
	SSHAES128 bool       // variant h ran: the ssh pipe with aes128-gcm@openssh.com
}

// Goals computes issue 8's goals from the samples of the standard variants (by key), and issue
// 14's from the variants of plan.
func Goals(byKey map[string]*Samples, size int64, plan Plan) []Goal {
	med := func(k string) (float64, bool) {
		s := byKey[k]
		if s == nil || s.Err != nil || len(s.Results) == 0 {
			return 0, false
		}
		if s.Variant.Rounds > 0 {
			return s.Median().Seconds() / float64(s.Variant.Rounds), true
		}
		return s.Median().Seconds(), true
	}
	ratio := func(measure, goal string, atLeast bool, bound float64, f func(m map[string]float64) float64, keys ...string) Goal {
		g := Goal{Measure: measure, Goal: goal, Unit: "×"}
		m := map[string]float64{}
		for _, k := range keys {
			v, ok := med(k)
			if !ok {
				g.Missing = "variant " + k + " did not run"
				return g
			}
			m[k] = v
		}
		g.Value = f(m)
		if atLeast {
			g.Met = g.Value >= bound
		} else {
			g.Met = g.Value <= bound
		}
		return g
	}
	goals := []Goal{
		ratio("data path, a / (b − c)", "≥ 0.95× raw TCP", true, 0.95,
			func(m map[string]float64) float64 { return m["a"] / (m["b"] - m["c"]) }, "a", "b", "c"),
		ratio("whole run, a / b", "≥ 0.85× raw TCP", true, 0.85,
			func(m map[string]float64) float64 { return m["a"] / m["b"] }, "a", "b"),
		ratio("tiny-transfer start-up, c / g", "≤ 0.7× one ssh login", false, 0.7,
			func(m map[string]float64) float64 { return m["c"] / m["g"] }, "c", "g"),
	}
	rss := Goal{Measure: "client peak RSS moving " + Size(size) + " (b)", Goal: "≤ 20 MiB", Unit: "MiB"}
	if s := byKey["b"]; s != nil && s.Err == nil && len(s.Results) > 0 {
		rss.Value = float64(s.PeakRSS()) / (1 << 20)
		rss.Met = rss.Value <= 20
	} else {
		rss.Missing = "variant b did not run"
	}
	goals = append(goals, rss,
		ratio("-e against the ssh pipe, d / e", "≥ 2× faster", true, 2,
			func(m map[string]float64) float64 { return m["d"] / m["e"] }, "d", "e"),
		ratio("ssh mode against the ssh pipe, d / f", "≥ 1.0×", true, 1,
			func(m map[string]float64) float64 { return m["d"] / m["f"] }, "d", "f"),
	)
	if plan.SSHAES128 {
		goals = append(goals, ratio("-e against ssh -c aes128-gcm@openssh.com, h / e", "≥ 2× faster", true, 2,
			func(m map[string]float64) float64 { return m["h"] / m["e"] }, "h", "e"))
	}
	for _, w := range plan.Workloads {
		raw, sp := w.Key+"-raw", w.Key+"-sp"
		goals = append(goals, ratio("data path, "+w.Key+": "+raw+" / ("+sp+" − c)", "≥ 0.95× raw TCP", true, 0.95,
			func(m map[string]float64) float64 { return m[raw] / (m[sp] - m["c"]) }, raw, sp, "c"))
	}
	if plan.RR {
		for _, c := range RRComparisons {
			goals = append(goals, ratio("round trip, "+c.Variant+" / "+c.Baseline, c.Goal, false, 1,
				func(m map[string]float64) float64 { return m[c.Variant] / m[c.Baseline] }, c.Variant, c.Baseline))
		}
	}
	return goals
}

// An RRComparison is a request/response goal: Variant's round trip no slower than Baseline's.
type RRComparison struct{ Variant, Baseline, Goal string }

// RRComparisons are the request/response goals. Every client of socketpipe --ssh talks through
// pipes to its transport, as it does to ssh: the raw-TCP counterpart is the same client with
// socat as its transport (TCP_NODELAY on both ends), and the direct connection (rr-raw) is
// printed beside it for reference. -e relays on both hosts, as ssh does. ssh mode has no goal
// here: its data crosses sshd and then the remote half, one relay more than ssh's, so it can
// only be slower than ssh; its figure is printed with the others.
var RRComparisons = []RRComparison{
	{RRSocketpipe, RRRawRelay, "≤ 1.0× raw TCP_NODELAY (via socat)"},
	{RRSealed, RRSSH, "≤ 1.0× ssh"},
}

// Report writes the medians, the goals with met/missed, and the "× faster than ssh" figure,
// as Markdown tables (they go into the README as they are).
func Report(w io.Writer, samples []*Samples, big, tiny Data, runs int, plan Plan) (allMet bool) {
	byKey := map[string]*Samples{}
	for _, s := range samples {
		byKey[s.Variant.Key] = s
	}
	fmt.Fprintf(w, "\n%s per transfer, %d interleaved rounds, medians; every transfer's length and CRC-32C checked\n\n", Size(big.Sum.N), runs)
	fmt.Fprintf(w, "| | variant | median | throughput | runs |\n|---|---|---:|---:|---:|\n")
	for _, s := range samples {
		n := big.Sum.N
		if s.Variant.Tiny {
			n = tiny.Sum.N
		}
		if s.Variant.Bytes > 0 {
			n = s.Variant.Bytes
		}
		if s.Err != nil && len(s.Results) == 0 {
			fmt.Fprintf(w, "| %s | %s | failed | | 0 |\n", s.Variant.Key, s.Variant.Name)
			continue
		}
		m := s.Median()
		if s.Variant.Rounds > 0 {
			fmt.Fprintf(w, "| %s | %s | %s per round trip | %d round trips | %d |\n", s.Variant.Key, s.Variant.Name, micros(m/time.Duration(s.Variant.Rounds)), s.Variant.Rounds, len(s.Results))
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %d |\n", s.Variant.Key, s.Variant.Name, seconds(m), rate(n, m), len(s.Results))
	}
	allMet = true
	fmt.Fprintf(w, "\n| measure | goal | measured | |\n|---|---|---:|---|\n")
	for _, g := range Goals(byKey, big.Sum.N, plan) {
		switch {
		case g.Missing != "":
			allMet = false
			fmt.Fprintf(w, "| %s | %s | — | missed (%s) |\n", g.Measure, g.Goal, g.Missing)
		default:
			verdict := "met"
			if !g.Met {
				verdict, allMet = "MISSED", false
			}
			fmt.Fprintf(w, "| %s | %s | %.2f%s | %s |\n", g.Measure, g.Goal, g.Value, unitSuffix(g.Unit), verdict)
		}
	}
	if plan.RR {
		if raw := byKey[RRRawNoDelay]; ok(raw) {
			per := func(s *Samples) float64 { return s.Median().Seconds() / float64(s.Variant.Rounds) }
			var rel []string
			for _, k := range []string{RRRawNagle, RRRawRelay, RRSSH, RRSocketpipe, RRSealed, RRSSHMode} {
				if s := byKey[k]; ok(s) {
					rel = append(rel, fmt.Sprintf("%s %.2f×", k, per(s)/per(raw)))
				}
			}
			fmt.Fprintf(w, "\nround trips against raw TCP_NODELAY with the client holding the socket itself (no transport command): %s\n", strings.Join(rel, ", "))
		}
	}
	if a, b, d := byKey["a"], byKey["b"], byKey["d"]; ok(a) && ok(b) && ok(d) {
		x := d.Median().Seconds() / b.Median().Seconds()
		ceil := d.Median().Seconds() / a.Median().Seconds()
		fmt.Fprintf(w, "\nsocketpipe is %.1f× faster than the ssh pipe (d / b); raw TCP's ceiling is %.1f× (d / a), so it reaches %.0f%% of it\n", x, ceil, 100*x/ceil)
	}
	for _, s := range samples {
		if s.Err != nil {
			fmt.Fprintf(w, "\n%s failed: %v\n", s.Variant.Key, strings.TrimSpace(s.Err.Error()))
		}
	}
	return allMet
}

func ok(s *Samples) bool { return s != nil && s.Err == nil && len(s.Results) > 0 }

func unitSuffix(u string) string {
	if u == "×" {
		return "×"
	}
	return " " + u
}

func seconds(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func micros(d time.Duration) string {
	if d >= 10*time.Millisecond {
		return seconds(d)
	}
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}
