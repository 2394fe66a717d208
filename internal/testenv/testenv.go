// Package testenv is how socketpipe's tests learn where they run: under continuous
// integration (CI=true) a test whose prerequisite is missing fails; elsewhere it skips.
package testenv

import (
	"os"
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
