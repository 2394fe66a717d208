package socketpipe

import (
	"bytes"
	"strings"
	"testing"
)

// The first session's messages wait for its start command's first line; a forced command's are
// dropped, and what comes after a release passes at once.
func TestHeldWriter(t *testing.T) {
	var out bytes.Buffer
	h := &heldWriter{w: &out}
	h.Write([]byte("motd\n"))
	if out.Len() != 0 {
		t.Fatalf("written before the release: %q", out.String())
	}
	h.release()
	h.Write([]byte("remote stderr\n"))
	if out.String() != "motd\nremote stderr\n" {
		t.Fatalf("after the release: %q", out.String())
	}

	out.Reset()
	h = &heldWriter{w: &out}
	h.Write([]byte("rrsync error: SSH_ORIGINAL_COMMAND does not run rsync\n"))
	if said := h.discard(); !strings.Contains(said, "rrsync error") {
		t.Fatalf("discard returned %q", said)
	}
	h.Write([]byte("more\n"))
	h.release()
	if out.Len() != 0 {
		t.Fatalf("a discarded session's messages came out: %q", out.String())
	}

	// Too much to hold is let through rather than kept.
	out.Reset()
	h = &heldWriter{w: &out}
	big := bytes.Repeat([]byte("x"), maxHeld+1)
	h.Write([]byte("a"))
	h.Write(big)
	if out.Len() != len(big)+1 {
		t.Fatalf("held %d of %d bytes beyond the limit", len(big)+1-out.Len(), len(big)+1)
	}
}
