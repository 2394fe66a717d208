// Package testenv is how socketpipe's tests learn where they run: under continuous
// integration (CI=true) a test whose prerequisite is missing fails; elsewhere it skips. It also
// copies executables (the test binary itself, a built socketpipe) to where a test runs them.
package testenv

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// InCI reports whether the tests run under continuous integration: CI set, and not to
// "false" or "0".
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "false" && v != "0"
}

// Need stops the test when err says a prerequisite (what) is missing: with t.Fatalf under CI,
// with t.Skipf elsewhere, in one message shape:
//
//	missing prerequisite: what: err (CI=true: a test that cannot run fails)
//	missing prerequisite: what: err (set CI=true to make this a failure)
//
// A nil err does nothing.
func Need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if InCI() {
		t.Fatalf("missing prerequisite: %s: %v (CI=true: a test that cannot run fails)", what, err)
	}
	t.Skipf("missing prerequisite: %s: %v (set CI=true to make this a failure)", what, err)
}

// CopySelf copies the running test binary to dir/name, executable, and returns its path: another
// file than the running program's, and the same program all the same.
func CopySelf(t testing.TB, dir, name string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return CopyExecutable(t, self, dir, name)
}

// CopyExecutable copies the file src to dir/name, executable, and returns its path.
func CopyExecutable(t testing.TB, src, dir, name string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	p := filepath.Join(dir, name)
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}
