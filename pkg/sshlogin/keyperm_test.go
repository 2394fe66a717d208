package sshlogin

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// A private key file of the user's own that others can read is ignored, with ssh's warning,
// and the login goes on with the other keys; a key file owned by another user is not checked.
func TestUnprotectedKeyIgnored(t *testing.T) {
	s := newTestServer(t)
	h := newTestHome(t)
	h.trust(s)
	_, openPub, open := h.key("open", "")
	_, goodPub, good := h.key("good", "")
	s.authorize(openPub)
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	warning := []string{
		"@         WARNING: UNPROTECTED PRIVATE KEY FILE!          @",
		fmt.Sprintf("Permissions 0644 for '%s' are too open.", open),
		"It is required that your private key files are NOT accessible by others.",
		"This private key will be ignored.",
		fmt.Sprintf("Load key \"%s\": bad permissions", open),
	}

	// The only key the server takes is the open one: the login fails.
	out, stderr, err := run(t, h.command(s, "echo no", "-o", "IdentitiesOnly=yes", "-i", open))
	var ae *AuthError
	if !errors.As(err, &ae) || out != "" {
		t.Fatalf("with the open key only: got %q, %v, want an AuthError; stderr %q", out, err, stderr)
	}
	for _, w := range warning {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr does not say %q:\n%s", w, stderr)
		}
	}
	if n := s.logins.Load(); n != 0 {
		t.Errorf("%d logins with an unprotected key", n)
	}

	// With another key after it, the login goes on with that one.
	s.authorize(goodPub)
	out, stderr, err = run(t, h.command(s, "echo yes", "-o", "IdentitiesOnly=yes", "-i", open, "-i", good))
	if err != nil || out != "yes\n" {
		t.Fatalf("with a good key after the open one: got %q, %v; stderr %q", out, err, stderr)
	}
	if !strings.Contains(stderr, "UNPROTECTED PRIVATE KEY FILE") {
		t.Errorf("no warning for the open key: %q", stderr)
	}

	// -q silences it, as LogLevel QUIET silences ssh's error lines.
	_, stderr, _ = run(t, h.command(s, "echo q", "-q", "-o", "IdentitiesOnly=yes", "-i", open, "-i", good))
	if strings.Contains(stderr, "UNPROTECTED") {
		t.Errorf("-q: stderr %q", stderr)
	}

	// A mode of 0600 is fine.
	if err := os.Chmod(open, 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = run(t, h.command(s, "echo fixed", "-o", "IdentitiesOnly=yes", "-i", open))
	if err != nil || out != "fixed\n" || strings.Contains(stderr, "UNPROTECTED") {
		t.Fatalf("0600: got %q, %v; stderr %q", out, err, stderr)
	}

	// Another user's file is that user's business (ssh compares the owner with getuid).
	if os.Getuid() != 0 {
		t.Log("not root: the other owner's file is not checked here")
		return
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(open, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = run(t, h.command(s, "echo theirs", "-o", "IdentitiesOnly=yes", "-i", open))
	if err != nil || out != "theirs\n" || strings.Contains(stderr, "UNPROTECTED") {
		t.Fatalf("owned by another user: got %q, %v; stderr %q", out, err, stderr)
	}
}
