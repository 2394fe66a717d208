//go:build linux

package bench

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func samples(key string, rss int64, secs ...float64) *Samples {
	s := &Samples{Variant: Variant{Key: key, Name: key}}
	for _, x := range secs {
		s.Results = append(s.Results, Result{Elapsed: time.Duration(x * float64(time.Second)), MaxRSS: rss})
	}
	return s
}

func TestGoals(t *testing.T) {
	byKey := map[string]*Samples{
		"a": samples("a", 0, 1.0, 1.1, 0.9),
		"b": samples("b", 12<<20, 1.2, 1.1, 1.15),
		"c": samples("c", 0, 0.06),
		"d": samples("d", 0, 4),
		"e": samples("e", 0, 1.9),
		"f": samples("f", 0, 4.4),
		"g": samples("g", 0, 0.1),
	}
	got := map[string]Goal{}
	for _, g := range Goals(byKey, 1<<30, Plan{}) {
		got[strings.Fields(g.Measure)[0]] = g
	}
	check := func(k string, want float64, met bool) {
		t.Helper()
		g := got[k]
		if g.Missing != "" || g.Value < want-0.005 || g.Value > want+0.005 || g.Met != met {
			t.Errorf("%s: got %.3f met=%v (%s), want %.3f met=%v", k, g.Value, g.Met, g.Missing, want, met)
		}
	}
	check("data", 1.0/(1.15-0.06), false) // 0.917 < 0.95
	check("whole", 1.0/1.15, true)        // 0.870
	check("tiny-transfer", 0.6, true)
	check("client", 12, true)
	check("-e", 4/1.9, true)
	check("ssh", 4/4.4, false)
}

func TestReportFailedVariant(t *testing.T) {
	s := []*Samples{samples("a", 0, 1), {Variant: Variant{Key: "b", Name: "b"}, Err: errors.New("bench: checksum mismatch")}}
	var out bytes.Buffer
	if Report(&out, s, Data{Sum: Sum{N: 1 << 30}}, Data{Sum: Sum{N: TinySize}}, 1, Plan{}) {
		t.Errorf("Report says every goal is met with b failed")
	}
	for _, want := range []string{"| b | b | failed |", "b failed: bench: checksum mismatch", "variant b did not run"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestParseSum(t *testing.T) {
	var out bytes.Buffer
	if err := Sink(strings.NewReader("hello"), &out); err != nil {
		t.Fatal(err)
	}
	s, err := ParseSum(out.String())
	if err != nil || s.N != 5 || s.CRC != 0x9a71bb4c {
		t.Errorf("Sink(hello) = %q -> %v, %v; want 5 bytes, crc32c 9a71bb4c", out.String(), s, err)
	}
	if _, err := ParseSum("socketpipe: error: ..."); err == nil {
		t.Errorf("ParseSum accepted an error message")
	}
}

func TestGoalsOfPlan(t *testing.T) {
	rr := func(key string, rounds int, secs float64) *Samples {
		s := samples(key, 0, secs)
		s.Variant.Rounds = rounds
		return s
	}
	byKey := map[string]*Samples{
		"c":          samples("c", 0, 0.1),
		"h":          samples("h", 0, 3),
		"e":          samples("e", 0, 1.4),
		"tar-raw":    samples("tar-raw", 0, 0.6),
		"tar-sp":     samples("tar-sp", 0, 0.8),
		RRRawNoDelay: rr(RRRawNoDelay, 1000, 0.04),
		RRRawRelay:   rr(RRRawRelay, 1000, 0.06),
		RRSSH:        rr(RRSSH, 1000, 0.15),
		RRSocketpipe: rr(RRSocketpipe, 1000, 0.05),
		RRSealed:     rr(RRSealed, 1000, 0.2),
		RRSSHMode:    rr(RRSSHMode, 1000, 0.15),
	}
	plan := Plan{Workloads: []Workload{{Key: "tar"}}, RR: true, SSHAES128: true}
	got := map[string]Goal{}
	for _, g := range Goals(byKey, 1<<30, plan) {
		got[g.Measure] = g
	}
	check := func(measure string, want float64, met bool) {
		t.Helper()
		g, found := got[measure]
		if !found || g.Missing != "" || g.Value < want-0.005 || g.Value > want+0.005 || g.Met != met {
			t.Errorf("%s: got %+v (found %v), want %.3f met=%v", measure, g, found, want, met)
		}
	}
	check("-e against ssh -c aes128-gcm@openssh.com, h / e", 3/1.4, true)
	check("data path, tar: tar-raw / (tar-sp − c)", 0.6/0.7, false)
	check("round trip, rr-sp / rr-raw-socat", 0.05/0.06, true)
	check("round trip, rr-sp-e / rr-ssh", 0.2/0.15, false)
	if _, found := got["round trip, rr-sp-m-ssh / rr-ssh"]; found {
		t.Errorf("ssh mode's round trip has a goal against ssh, which it can only miss")
	}
}
