package plumb

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		line string
		want Args
	}{
		{"-b -i { tar cf - / } -l { ssh remotehost } -r { dd of=/dev/st0 bs=32k }",
			Args{Batch: true, Input: []string{"tar", "cf", "-", "/"}, Login: []string{"ssh", "remotehost"}, Remote: []string{"dd", "of=/dev/st0", "bs=32k"}}},
		{"-l { ssh h } -r { socketpipe -i { cat } -l { ssh c } -r { cat } -o { cat } } -o { cat }",
			Args{Login: []string{"ssh", "h"}, Remote: strings.Fields("socketpipe -i { cat } -l { ssh c } -r { cat } -o { cat }"), Output: []string{"cat"}}},
		{"-o { cat } -r { cat } -l { rsh h } -h 10.0.0.1 -t 2.5 -m reverse -v -v",
			Args{Output: []string{"cat"}, Remote: []string{"cat"}, Login: []string{"rsh", "h"}, Host: "10.0.0.1", Timeout: 2500 * time.Millisecond, Mode: "reverse", Verbose: 2}},
		{"-t 0 -e --cipher=chacha20-poly1305 -x -i { a } -l { b } -r { c } --remote-path /opt/sp",
			Args{Timeout: 0, Encrypt: true, Cipher: "chacha20-poly1305", ForceExec: true, Input: []string{"a"}, Login: []string{"b"}, Remote: []string{"c"}, RemotePath: "/opt/sp"}},
		{"-i { a } -l { ssh pi } -r { c } --deploy-dir /opt/socketpipe/lib",
			Args{Input: []string{"a"}, Login: []string{"ssh", "pi"}, Remote: []string{"c"}, DeployDir: "/opt/socketpipe/lib"}},
	}
	for _, tt := range tests {
		got, err := ParseArgs(strings.Fields(tt.line))
		if err != nil {
			t.Errorf("ParseArgs(%q): %v", tt.line, err)
			continue
		}
		want := tt.want
		if want.Mode == "" {
			want.Mode = "auto"
		}
		if want.Timeout == 0 && !strings.Contains(tt.line, "-t 0") {
			want.Timeout = DefaultTimeout
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("ParseArgs(%q)\n got %+v\nwant %+v", tt.line, *got, want)
		}
	}
}

func TestParseArgsVerbatimWords(t *testing.T) {
	args := []string{"-l", "{", "ssh", "h", "}", "-r", "{", "printf", "%s|", "a b", "$HOME", "*", `'q"`, "}", "-o", "{", "cat", "}"}
	a, err := ParseArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"printf", "%s|", "a b", "$HOME", "*", `'q"`}
	if !reflect.DeepEqual(a.Remote, want) {
		t.Fatalf("remote = %q, want %q", a.Remote, want)
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := []struct{ line, want string }{
		{"-l { ssh h } -r { cat }", "at least one of -i"},
		{"-i { cat } -r { cat }", "missing -l"},
		{"-i { cat } -l { ssh h }", "missing -r"},
		{"-i { cat -l { ssh h } -r { cat }", "unbalanced braces"},
		{"-i cat -l { ssh h } -r { cat }", "must be followed by {"},
		{"-i { cat } -l { ssh h } -r { cat } -z", `unknown option "-z"`},
		{"-i { cat } -l { ssh h } -r { cat } -t soon", "not a number"},
		{"-i { cat } -l { ssh h } -r { cat } -t -3", "from 0"},
		{"-i { cat } -l { ssh h } -r { cat } -t", "needs an argument"},
		{"-i { cat } -l { ssh h } -r { cat } -m sideways", "unknown mode"},
		{"-i { } -l { ssh h } -r { cat }", "empty command"},
		{"-i { cat } -i { cat } -l { ssh h } -r { cat }", "given twice"},
		{"} -i { cat } -l { ssh h } -r { cat }", "unexpected"},
		{"-i { cat } -l { ssh h } -r { cat } --stats", "needs an argument"},
		{"-i { cat } -l { ssh h } -r { cat } --deploy-dir", "needs an argument"},
		{"-i { cat } -l { ssh h } -r { cat } --deploy-dir=", "needs a directory"},
		{"-i { cat } -l { ssh h } -r { cat } --ports 9-2", "bad port range"},
		{"-i { cat } -l { ssh h } -r { cat } -b=1", "unknown option"},
		{"-i { cat } -l { ssh h } -r { cat } --version=1", "takes no value"},
	}
	for _, tt := range tests {
		_, err := ParseArgs(strings.Fields(tt.line))
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("ParseArgs(%q) = %v, want a UsageError", tt.line, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseArgs(%q) = %q, want it to say %q", tt.line, err, tt.want)
		}
	}
}

func TestParseArgsDeepNesting(t *testing.T) {
	words := []string{"-i", "{", "cat", "}", "-l", "{", "ssh", "h", "}", "-r"}
	for i := 0; i < 10000; i++ {
		words = append(words, "{")
	}
	_, err := ParseArgs(words)
	if err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("deep nesting: %v", err)
	}
}

func TestParseTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{"0": 0, "30": 30 * time.Second, "0.25": 250 * time.Millisecond, "1m": time.Minute} {
		got, err := ParseTimeout(in)
		if err != nil || got != want {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "NaN", "1e30", "-1s"} {
		if _, err := ParseTimeout(in); err == nil {
			t.Errorf("ParseTimeout(%q) accepted", in)
		}
	}
}

func FuzzParseArgs(f *testing.F) {
	f.Add("-b -i { tar cf - / } -l { ssh remotehost } -r { dd of=/dev/st0 bs=32k }")
	f.Add("-l { ssh h } -r { socketpipe -i { cat } -l { ssh c } -r { cat } -o { cat } } -o { cat }")
	f.Add("-i { { { } -l { } } -r -t 1e400 --ports=1-65535 -m ssh")
	f.Fuzz(func(t *testing.T, line string) {
		a, err := ParseArgs(strings.Fields(line))
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v is not a UsageError", err)
			}
			return
		}
		if a.Help || a.Version {
			return
		}
		if a.Login == nil || a.Remote == nil || (a.Input == nil && a.Output == nil) {
			t.Fatalf("accepted an incomplete command line: %+v", a)
		}
		if a.Timeout < 0 {
			t.Fatalf("negative timeout")
		}
	})
}

func TestPipefail(t *testing.T) {
	in := &Stage{Name: StageInput, Exit: 7}
	rem := &Stage{Name: StageRemote, Exit: 0}
	out := &Stage{Name: StageOutput, Exit: 141, Signal: "PIPE"}
	if s, st := Pipefail([]*Stage{in, rem, out}); s != 141 || st != out {
		t.Errorf("got %d %v", s, st)
	}
	if s, st := Pipefail([]*Stage{in, rem, nil}); s != 7 || st != in {
		t.Errorf("got %d %v", s, st)
	}
	if s, st := Pipefail([]*Stage{nil, rem, nil}); s != 0 || st != nil {
		t.Errorf("got %d %v", s, st)
	}
}
