package sshlogin

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func testKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testEndpoint(t *testing.T, user, host string, port int) *Endpoint {
	return &Endpoint{User: user, HostName: host, Port: port, HostKey: testKey(t), UserKey: testKey(t)}
}

func TestForcedLogins(t *testing.T) {
	f := &ForcedLogins{Path: filepath.Join(t.TempDir(), "sub", "forced-commands")}
	ep := testEndpoint(t, "backup user", "nas.example.org", 2222)
	if ok, err := f.Has(ep); ok || err != nil {
		t.Fatalf("a missing file: %v, %v", ok, err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if err := f.Add(ep, now); err != nil {
		t.Fatal(err)
	}
	if err := f.Add(ep, now); err != nil { // once only
		t.Fatal(err)
	}
	if ok, err := f.Has(ep); !ok || err != nil {
		t.Fatalf("after Add: %v, %v", ok, err)
	}
	b, _ := os.ReadFile(f.Path)
	if n := strings.Count(string(b), "nas.example.org"); n != 1 || !strings.Contains(string(b), "backup%20user nas.example.org 2222 "+ep.Fingerprint()+" "+ep.UserKeyFingerprint()+" 2026-12-01T10:00:00Z\n") {
		t.Fatalf("file (%d lines for the host):\n%s", n, b)
	}
	if fi, _ := os.Stat(f.Path); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v", fi.Mode())
	}
	// Another port, user, host key or user key is another login.
	otherPort, otherKey, noKey := *ep, *ep, *ep
	otherPort.Port = 22
	otherKey.UserKey = testKey(t)
	noKey.UserKey = nil
	for _, o := range []*Endpoint{&otherPort, &otherKey, &noKey, testEndpoint(t, "backup user", "nas.example.org", 2222),
		{User: "x", HostName: "nas.example.org", Port: 2222, HostKey: ep.HostKey, UserKey: ep.UserKey}} {
		if ok, _ := f.Has(o); ok {
			t.Errorf("%v with %s is listed", o, o.Fingerprint())
		}
	}
	// A damaged line is skipped; the others still count.
	fh, _ := os.OpenFile(f.Path, os.O_APPEND|os.O_WRONLY, 0)
	fh.WriteString("root host 22 SHA256:x\nroot host notaport SHA256:x - 2026-12-01T10:00:00Z\n")
	fh.Close()
	if ok, err := f.Has(ep); !ok || err != nil {
		t.Fatalf("after damage: %v, %v", ok, err)
	}
	// Deleting the file forgets.
	os.Remove(f.Path)
	if ok, _ := f.Has(ep); ok {
		t.Fatal("listed after the file was removed")
	}
}

// FuzzForcedLogins: any file parses without a panic, and every line read back is written the
// same way.
func FuzzForcedLogins(f *testing.F) {
	f.Add([]byte(forcedHeader + "root 127.0.0.1 22 SHA256:abc SHA256:def 2026-12-01T10:00:00Z\n"))
	f.Add([]byte("a%20b [::1] 65535 SHA256:x - 2026-12-01T10:00:00+02:00\n\n#\nx y z\n"))
	f.Add([]byte("%zz h 1 SHA256: SHA256: 2026-12-01T10:00:00Z\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, l := range ParseForcedLogins(strings.NewReader(string(in))) {
			again := ParseForcedLogins(strings.NewReader(l.String()))
			if len(again) != 1 || again[0].User != l.User || again[0].Host != l.Host || again[0].Port != l.Port ||
				again[0].Fingerprint != l.Fingerprint || again[0].UserKey != l.UserKey || !again[0].Since.Equal(l.Since) {
				t.Fatalf("%+v written as %q reads back as %+v", l, l.String(), again)
			}
		}
	})
}
