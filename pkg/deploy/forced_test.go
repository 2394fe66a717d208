package deploy

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestForcedCommand(t *testing.T) {
	const stop = "\x00prog-ctl\x00"
	d := &Deployment{Name: "prog"}
	run := func(write func(w *io.PipeWriter), grace, silence time.Duration) string {
		pr, pw := io.Pipe()
		w := d.Watch(pr, stop)
		go io.Copy(io.Discard, w)
		go write(pw)
		defer pw.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return w.ForcedCommand(ctx, grace, silence)
	}
	for _, c := range []struct {
		name    string
		write   func(w *io.PipeWriter)
		want    string
		silence time.Duration
	}{
		{"start command", func(w *io.PipeWriter) { io.WriteString(w, "\x00prog-start\n"+stop) }, "", 0},
		{"banner, pause, start command", func(w *io.PipeWriter) {
			io.WriteString(w, "Welcome\n")
			time.Sleep(100 * time.Millisecond)
			io.WriteString(w, "\x00prog-start\n")
		}, "", 0},
		{"remote half without the start command", func(w *io.PipeWriter) { io.WriteString(w, stop) }, "", 0},
		{"ended at once", func(w *io.PipeWriter) { w.Close() }, "ended without output", 0},
		{"printed and ended", func(w *io.PipeWriter) { io.WriteString(w, "usage: borg\n"); w.Close() }, "printed other output than the start command's and ended", 0},
		{"printed and waits", func(w *io.PipeWriter) { io.WriteString(w, "0042refs") }, "and not the start command's within", 0},
		{"silent", func(w *io.PipeWriter) {}, "printed nothing for", 300 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := run(c.write, time.Second, c.silence)
			if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
				t.Fatalf("ForcedCommand = %q, want %q", got, c.want)
			}
		})
	}
	// A cancelled wait tells only what is known: nothing yet.
	pr, pw := io.Pipe()
	defer pw.Close()
	w := d.Watch(pr, stop)
	go io.Copy(io.Discard, w)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := w.ForcedCommand(ctx, time.Second, 0); got != "" {
		t.Fatalf("cancelled: %q", got)
	}
}
