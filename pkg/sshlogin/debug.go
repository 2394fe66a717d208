package sshlogin

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/socketpipe/socketpipe/pkg/sshconfig"
)

// debug writes ssh's own voice to Stderr: "debug1: " lines under ssh -v (LogLevel DEBUG),
// and warnings unless ssh -q (LogLevel QUIET, FATAL or ERROR).
type debug struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool
	quiet   bool
	level   string // LogLevel, upper case
}

// newDebug follows LogLevel, which Resolve sets from the later of -v and -q as ssh does.
func (c *Cmd) newDebug(cfg *sshconfig.Config) *debug {
	lvl := strings.ToUpper(cfg.LogLevel)
	return &debug{
		w:       c.Stderr,
		verbose: strings.HasPrefix(lvl, "DEBUG"),
		quiet:   lvl == "QUIET" || lvl == "FATAL" || lvl == "ERROR",
		level:   lvl,
	}
}

// printf writes a "debug1: " line under -v.
func (d *debug) printf(format string, args ...any) {
	if d == nil || !d.verbose || d.w == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.w, "debug1: "+format+"\n", args...)
}

// warnf writes a warning line, as ssh does at LogLevel INFO, unless quiet.
func (d *debug) warnf(format string, args ...any) {
	if d == nil || d.quiet || d.w == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.w, format+"\n", args...)
}

// errorf writes an error line, as ssh does at LogLevel ERROR: unless ssh -q (QUIET or FATAL).
func (d *debug) errorf(format string, args ...any) {
	if d == nil || d.w == nil {
		return
	}
	if lvl := d.level; lvl == "QUIET" || lvl == "FATAL" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.w, format+"\n", args...)
}

// environ lists the login's environment as NAME=value, for SendEnv: the process's variable
// names, with their values as env gives them.
func environ(env sshconfig.Env) []string {
	if env.Getenv == nil {
		return nil
	}
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if v := env.Getenv(k); v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}
