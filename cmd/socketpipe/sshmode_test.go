package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/testenv"
)

func TestSSHFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--ssh", "host", "cmd"}, 0},
		{[]string{"-m", "reverse", "-e", "--ssh", "host", "cmd"}, 3},
		{[]string{"-r", "{", "x", "--ssh", "}", "--ssh"}, 5},
		{[]string{"-l", "{", "ssh", "h", "}", "-r", "{", "--ssh", "}", "-o", "{", "cat", "}"}, -1},
		{[]string{"-v"}, -1},
		{nil, -1},
	} {
		if got := sshFlag(tc.args); got != tc.want {
			t.Errorf("sshFlag(%q) = %d, want %d", tc.args, got, tc.want)
		}
	}
}

func TestParseSSHModeOptions(t *testing.T) {
	a, err := parseSSHModeOptions([]string{"-m", "reverse", "-e", "-v", "-t", "5", "--remote-path", "/opt/sp"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Mode != "reverse" || !a.Encrypt || a.Verbose != 1 || a.Timeout.Seconds() != 5 || a.RemotePath != "/opt/sp" {
		t.Errorf("parsed %+v", a)
	}
	for _, bad := range [][]string{{"-r", "{", "x", "}"}, {"-m", "sideways"}, {"-q"}} {
		if _, err := parseSSHModeOptions(bad); err == nil {
			t.Errorf("parseSSHModeOptions(%q) accepted", bad)
		}
	}
}

// fakeSSH writes dir/ssh, a script that says it ran and with what.
func fakeSSH(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "ssh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho \"real ssh: $*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// runAsSSH runs the socketpipe at path as ssh with PATH set, bounded in time: a hand-over
// loop would run until the bound.
func runAsSSH(t *testing.T, path, pathEnv string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Args[0] = "ssh"
	cmd.Env = append(os.Environ(), "PATH="+pathEnv)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ssh %q with PATH=%s still ran after 20 s (handing over in a loop?); stderr:\n%s", args, pathEnv, stderr.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// Two copies of socketpipe named ssh on PATH hand ssh -N to the real ssh after them, or fail
// at once when there is none, instead of executing each other forever.
func TestHandOverTwoCopies(t *testing.T) {
	a, b, realDir := t.TempDir(), t.TempDir(), t.TempDir()
	first := testenv.CopySelf(t, a, "ssh")
	testenv.CopySelf(t, b, "ssh")
	fakeSSH(t, realDir)
	sep := string(filepath.ListSeparator)
	code, stdout, stderr := runAsSSH(t, first, a+sep+b+sep+realDir, "-N", "host")
	if code != 0 || stdout != "real ssh: -N host\n" {
		t.Errorf("status %d, stdout %q; stderr:\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runAsSSH(t, first, a+sep+b, "-N", "host")
	if code != exitSSH || stdout != "" || !strings.Contains(stderr, "no ssh binary on PATH besides socketpipe") {
		t.Errorf("status %d, stdout %q; stderr:\n%s", code, stdout, stderr)
	}
}

// A hand-over marks the environment: a socketpipe that a wrapper on PATH runs in the real
// ssh's place finds the mark and refuses, with an error that names the wrapper.
func TestHandOverMarked(t *testing.T) {
	a, b, w := t.TempDir(), t.TempDir(), t.TempDir()
	first := testenv.CopySelf(t, a, "ssh")
	hidden := testenv.CopySelf(t, b, "ssh") // not on PATH
	wrapper := filepath.Join(w, "ssh")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec "+hidden+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// An earlier hand-over's mark in the environment (under a real ssh's ProxyCommand) does
	// not hide this one's.
	t.Setenv(handedOverEnv, "1 /usr/bin/ssh")
	code, stdout, stderr := runAsSSH(t, first, a+string(filepath.ListSeparator)+w, "-N", "host")
	want := "socketpipe: error: socketpipe handed the command to " + wrapper + " as the real ssh, and that ran socketpipe again"
	if code != exitSSH || stdout != "" || !strings.Contains(stderr, want) || strings.Count(stderr, "socketpipe: error:") != 1 {
		t.Errorf("status %d, stdout %q; stderr:\n%s\nwant %q", code, stdout, stderr, want)
	}
}
