package main

import (
	"context"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// runCaptured runs socketpipe in-process with args and returns its status and stderr.
func runCaptured(t *testing.T, args ...string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	stdout, err := os.Create(dir + "/stdout")
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(dir + "/stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, append([]string{"socketpipe"}, args...), stdin, stdout, stderr)
	b, err := os.ReadFile(stderr.Name())
	if err != nil {
		t.Fatal(err)
	}
	return code, string(b)
}

// garbage returns a word of n random bytes other than NUL.
func garbage(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(1 + r.IntN(255))
	}
	return string(b)
}

func repeat(word string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = word
	}
	return out
}

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestHostileCommandLines: command lines no one would type, some built to break a parser,
// end with status 1 and one short error line, never a panic or a login attempt.
func TestHostileCommandLines(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	const deep = 10000
	login := []string{"-l", "{", "ssh", "nowhere.invalid", "}"}
	var garbageWords []string
	for i := 0; i < 1000; i++ {
		garbageWords = append(garbageWords, garbage(r, 1+r.IntN(64)))
	}
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"huge-list-no-login", cat([]string{"-r", "{"}, repeat("word", 200000), []string{"}", "-o", "{", "cat", "}"}), "missing -l"},
		{"huge-list-unbalanced", cat([]string{"-r", "{"}, repeat("word", 200000)), "unbalanced braces"},
		{"huge-list-then-unknown", cat(login, []string{"-r", "{"}, repeat("w", 200000), []string{"}", "--bogus"}), `unknown option "--bogus"`},
		{"deep-balanced", cat(login, []string{"-r"}, repeat("{", deep), []string{"cat"}, repeat("}", deep), []string{"-o", "{", "cat", "}"}), "nested deeper than"},
		{"deep-unbalanced", cat(login, []string{"-r"}, repeat("{", deep), []string{"cat"}), "nested deeper than"},
		{"deep-closing", cat(login, []string{"-r", "{", "cat", "}"}, repeat("}", deep)), "unexpected \"}\""},
		{"garbage-words", garbageWords, "unknown option"},
		{"huge-garbage-word", []string{garbage(r, 1<<20)}, "unknown option"},
		{"garbage-option-value", cat(login, []string{"-r", "{", "cat", "}", "-o", "{", "cat", "}", "-t", garbage(r, 4096)}), "-t"},
		{"garbage-mode", cat(login, []string{"-r", "{", "cat", "}", "-o", "{", "cat", "}", "-m", garbage(r, 4096)}), "unknown mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, stderr := runCaptured(t, tc.args...)
			took := time.Since(start)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d:\n%.2000s", code, exitUsage, stderr)
			}
			if took > 5*time.Second {
				t.Errorf("took %v", took)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			var errs []string
			for _, l := range lines {
				if strings.HasPrefix(l, "socketpipe: error: ") {
					errs = append(errs, l)
				}
				if len(l) > 400 {
					t.Errorf("a line of %d bytes: %.200q...", len(l), l)
				}
			}
			if len(errs) != 1 {
				t.Fatalf("%d error lines, want one:\n%.2000s", len(errs), stderr)
			}
			if !strings.Contains(errs[0], tc.msg) {
				t.Errorf("error %.400q does not say %q", errs[0], tc.msg)
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
				t.Fatalf("stderr:\n%.2000s", stderr)
			}
		})
	}
}
