//go:build linux

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A cache directory that another user could write to (or a symbolic link in the cache's own
// part of the chain) is not trusted: a good copy in it is not run, and the install that
// follows refuses it, so the run fails with socketpipe's error naming the directory instead
// of racing with whoever can swap the copy.
func TestDeployCacheChainRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		spoil func(t *testing.T, e *deployEnv) string // returns the directory to name
		says  string
	}{
		{"group-writable name dir", func(t *testing.T, e *deployEnv) string {
			d := filepath.Dir(e.cache)
			if err := os.Chmod(d, 0o770); err != nil {
				t.Fatal(err)
			}
			return d
		}, "is writable by other users"},
		{"world-writable home", func(t *testing.T, e *deployEnv) string {
			if err := os.Chmod(e.sshd.Home, 0o777); err != nil {
				t.Fatal(err)
			}
			return e.sshd.Home
		}, "is writable by other users"},
		{"version dir a symlink", func(t *testing.T, e *deployEnv) string {
			elsewhere := filepath.Join(t.TempDir(), "copy")
			if err := os.Rename(e.cache, elsewhere); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, e.cache); err != nil {
				t.Fatal(err)
			}
			return e.cache
		}, "is a symbolic link"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newDeployEnv(t)
			e.mustRun()
			e.checkCopy()
			dir := c.spoil(t, e)
			r := e.run()
			t.Logf("%s:\n%s", c.name, r.stderr)
			if r.code != 2 || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q with an untrusted cache, want 2 and nothing run\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, "socketpipe: error: cannot deploy socketpipe into ") ||
				!strings.Contains(r.stderr, dir+" "+c.says) || strings.Count(r.stderr, "socketpipe: error:") != 1 {
				t.Fatalf("stderr does not say once that %s %s:\n%s", dir, c.says, r.stderr)
			}
			if !strings.Contains(r.stderr, "writable by you alone") || strings.Contains(r.stderr, "with room for the binary") {
				t.Fatalf("the hint does not say how to make the cache trusted:\n%s", r.stderr)
			}
		})
	}
}
