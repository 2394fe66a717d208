package sshconfig

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/socketpipe/socketpipe/internal/testenv"
)

// The start-up cost of resolving a login: a configuration of common keywords asks no ssh
// binary; finding the release costs a stat and a small file read when cached, and ssh -V
// (a process) when not.
func BenchmarkResolveCommon(b *testing.B) {
	dir := b.TempDir()
	cfg := filepath.Join(dir, "config")
	config := "Include " + dir + "/conf.d/*\nHost *\n  ServerAliveInterval 30\n  IdentityFile ~/.ssh/id_ed25519\nHost h\n  HostName h.example\n  User u\n  Port 2222\nHost *\n  SendEnv LANG LC_*\n  HashKnownHosts yes\n  GSSAPIAuthentication yes\n"
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		b.Fatal(err)
	}
	env := DefaultEnv()
	env.Home, env.CacheDir = dir, filepath.Join(dir, "cache")
	inv := &Invocation{Host: "h", ConfigFile: cfg}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Resolve(inv, env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReleaseCached(b *testing.B) {
	p, err := findSSH("")
	testenv.Need(b, "ssh (install openssh-client)", err)
	dir := b.TempDir()
	askSSH(p, dir) // fills the cache
	b.ResetTimer()
	for b.Loop() {
		if o := askSSH(p, dir); o.path == "" {
			b.Fatal(o.source)
		}
	}
}

func BenchmarkReleaseUncached(b *testing.B) {
	p, err := findSSH("")
	testenv.Need(b, "ssh (install openssh-client)", err)
	for b.Loop() {
		if o := askSSH(p, ""); o.path == "" {
			b.Fatal(o.source)
		}
	}
}

func BenchmarkReleaseLists(b *testing.B) {
	p, err := findSSH("")
	testenv.Need(b, "ssh (install openssh-client)", err)
	for b.Loop() {
		if _, err := probeLists(p); err != nil {
			b.Fatal(err)
		}
	}
}
