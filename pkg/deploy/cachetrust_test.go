package deploy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/internal/testenv"
)

// The cache is used only while no other user can write to it or to a directory above it:
// another user could swap the copy between the start command's check and its exec. A
// directory that is writable by group or others, or a symbolic link, is refused by the start
// command (it goes on as without a cache), by the install (which fails naming the directory)
// and by the command that runs the copy just installed.
func TestCacheDirectoryChainTrusted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(r *fakeRemote) string // makes the chain unsafe; returns the directory to name
		undo  func(r *fakeRemote)
	}{
		{"version dir group-writable", func(r *fakeRemote) string {
			d := filepath.Dir(r.cached())
			os.Chmod(d, 0o770)
			return d
		}, func(r *fakeRemote) { os.Chmod(filepath.Dir(r.cached()), 0o700) }},
		{"name dir world-writable", func(r *fakeRemote) string {
			d := filepath.Dir(filepath.Dir(r.cached()))
			os.Chmod(d, 0o707)
			return d
		}, func(r *fakeRemote) { os.Chmod(filepath.Dir(filepath.Dir(r.cached())), 0o700) }},
		{"home world-writable", func(r *fakeRemote) string {
			os.Chmod(r.home, 0o777)
			return r.home
		}, func(r *fakeRemote) { os.Chmod(r.home, 0o755) }},
		{"home owned by another user", func(r *fakeRemote) string {
			if os.Getuid() != 0 {
				testenv.Need(r.t, "root", errors.New("only root can give the home directory away"))
			}
			os.Chown(r.home, 65534, 65534)
			return r.home
		}, func(r *fakeRemote) { os.Chown(r.home, 0, 0) }},
		{"cache dir a symlink", func(r *fakeRemote) string {
			c := filepath.Join(r.home, ".cache")
			os.Rename(c, c+".real")
			os.Symlink(c+".real", c)
			return c
		}, func(r *fakeRemote) {
			c := filepath.Join(r.home, ".cache")
			os.Remove(c)
			os.Rename(c+".real", c)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newFakeRemote(t)
			bin, _ := os.ReadFile(r.d.Binary)
			if out, stderr, err := r.install(bytes.NewReader(bin)); err != nil {
				t.Fatalf("install: %q, %v, %s", out, err, stderr)
			}
			if got := r.start(); got != "cached copy ran: --serve\n" {
				t.Fatalf("start command with a good cache printed %q", got)
			}
			dir := tc.spoil(r)
			if got := r.start(); !strings.HasPrefix(got, "\x00prog-missing ") {
				t.Errorf("start command ran the copy of an unsafe cache: %q", got)
			}
			if out, stderr, err := r.sh(r.d.RunCommand(), nil); err == nil || strings.Contains(out, "ran") || !strings.Contains(stderr, dir) {
				t.Errorf("run command with an unsafe cache: %q, %v, stderr %q (want it to name %s)", out, err, stderr, dir)
			}
			if _, stderr, err := r.install(bytes.NewReader(bin)); err == nil || !strings.Contains(stderr, dir+" ") || !strings.Contains(stderr, "not using the cache") {
				t.Errorf("install into an unsafe cache: %v, stderr %q (want it to name %s)", err, stderr, dir)
			}
			// Made safe again, the same copy runs: the check, not the copy, refused it.
			tc.undo(r)
			if got := r.start(); got != "cached copy ran: --serve\n" {
				t.Errorf("start command with the cache made safe again printed %q", got)
			}
		})
	}
}
