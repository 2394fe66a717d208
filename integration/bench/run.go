//go:build linux

package bench

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"
)

// TinySize is the size of the transfer that measures start-up alone.
const TinySize = 1024

// Samples are the measurements of one variant over the rounds.
type Samples struct {
	Variant Variant
	Results []Result
	Err     error // the first failure; the variant is not run again after it
}

// Median is the median elapsed time (0 with no samples).
func (s *Samples) Median() time.Duration {
	if len(s.Results) == 0 {
		return 0
	}
	d := make([]time.Duration, len(s.Results))
	for i, r := range s.Results {
		d[i] = r.Elapsed
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

// PeakRSS is the largest MaxRSS over the samples.
func (s *Samples) PeakRSS() int64 {
	var m int64
	for _, r := range s.Results {
		m = max(m, r.MaxRSS)
	}
	return m
}

// Interleave runs every variant once per round, in order, for runs rounds (a, b, c, ... a, b,
// c, ...), so that whatever else the machine does weighs on all of them alike. A variant that
// fails is reported and left out of the later rounds. progress, if not nil, gets a line per run.
func Interleave(ctx context.Context, e *Env, variants []Variant, big, tiny Data, runs int, progress io.Writer) []*Samples {
	out := make([]*Samples, len(variants))
	for i, v := range variants {
		out[i] = &Samples{Variant: v}
	}
	for round := 1; round <= runs; round++ {
		for _, s := range out {
			if s.Err != nil || ctx.Err() != nil {
				continue
			}
			data := big
			if s.Variant.Tiny {
				data = tiny
			}
			r, err := s.Variant.Run(ctx, e, data)
			if err != nil {
				if ctx.Err() != nil {
					return out
				}
				s.Err = err
				if progress != nil {
					fmt.Fprintf(progress, "spbench: round %d/%d %s: FAILED: %v\n", round, runs, s.Variant.Key, err)
				}
				continue
			}
			s.Results = append(s.Results, r)
			if progress != nil {
				switch n := s.Variant.Bytes; {
				case s.Variant.Rounds > 0:
					fmt.Fprintf(progress, "spbench: round %d/%d %s: %s per round trip\n", round, runs, s.Variant.Key, micros(r.Elapsed/time.Duration(s.Variant.Rounds)))
				case n > 0:
					fmt.Fprintf(progress, "spbench: round %d/%d %s: %8.3f s  %s\n", round, runs, s.Variant.Key, r.Elapsed.Seconds(), rate(n, r.Elapsed))
				default:
					fmt.Fprintf(progress, "spbench: round %d/%d %s: %8.3f s  %s\n", round, runs, s.Variant.Key, r.Elapsed.Seconds(), rate(data.Sum.N, r.Elapsed))
				}
			}
		}
	}
	return out
}

func rate(n int64, d time.Duration) string {
	if d <= 0 || n < 1<<20 {
		return ""
	}
	return fmt.Sprintf("%.0f MiB/s", float64(n)/float64(1<<20)/d.Seconds())
}

// Size formats a byte count the way BENCH_SIZE takes it.
func Size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
