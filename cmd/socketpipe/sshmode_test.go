package main

import (
	"os"
	"path/filepath"
	"testing"
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

// realSSH skips an ssh on PATH that is socketpipe itself (here: this test binary).
func TestRealSSHSkipsSelf(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	linkDir, otherDir := t.TempDir(), t.TempDir()
	if err := os.Symlink(self, filepath.Join(linkDir, "ssh")); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(otherDir, "ssh")
	if err := os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", linkDir+string(filepath.ListSeparator)+otherDir)
	if got := realSSH(); got != other {
		t.Errorf("realSSH() = %q, want %q", got, other)
	}
	t.Setenv("PATH", linkDir)
	if got := realSSH(); got != "" {
		t.Errorf("realSSH() with only a link to itself = %q, want none", got)
	}
}
