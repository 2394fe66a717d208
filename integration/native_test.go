//go:build linux

package integration

// The key end-to-end tests again with the native login: `-l { ssh -F config alias }` without
// -x logs in in-process. Each test checks, from -v, that the login really was native, so a
// regression to the exec path fails rather than passing unnoticed.

import (
	"bytes"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// nativeLogin is `-l { ssh -F config alias }`: native, since the harness's configuration asks
// for nothing the in-process client cannot honour.
func (r *remote) nativeLogin() []string {
	return append(append([]string{"-l", "{"}, r.sshd.SSHArgs()...), "}")
}

// wantNative fails unless -v says the login was made in-process.
func wantNative(t *testing.T, stderr string) {
	t.Helper()
	if !strings.Contains(stderr, "socketpipe: [") {
		t.Fatalf("no -v timeline on stderr:\n%s", stderr)
	}
	if !strings.Contains(stderr, "] native login: ") || strings.Contains(stderr, "executing the login command") {
		t.Fatalf("the login was not native:\n%s", stderr)
	}
}

// nativeTransfer is transfer (netns_test.go) with the native login, checking that it was
// native.
func (r *remote) nativeTransfer(t *testing.T, data []byte, opts ...any) string {
	t.Helper()
	res := r.transferRun(t, data, append(opts, r.nativeLogin())...)
	wantNative(t, res.stderr)
	return chosenMode(res.stderr)
}

func TestNativeLoopback(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	data := randomBytes(t, 8<<20)
	if m := r.nativeTransfer(t, data); m == "" {
		t.Fatal("no mode")
	}
	t.Run("pipefail", func(t *testing.T) {
		res := r.run(t, nil, args(block("-i", "sh", "-c", "exit 7"), r.nativeLogin(), block("-r", "sh", "-c", "cat >/dev/null; exit 3"), block("-o", "cat"))...)
		want(t, res, 3)
		mustContain(t, "stderr", res.stderr, `socketpipe: error: remote command "sh" exited with status 3`)
	})
	t.Run("verbatim", func(t *testing.T) {
		words := []string{"two words", "", "$HOME", "*", "'q'", `"d"`, ";", "{", "}"}
		res := r.run(t, nil, args(r.nativeLogin(), block("-r", append([]string{"printf", "%s\\n"}, words...)...), block("-o", "cat"))...)
		want(t, res, 0)
		if w := strings.Join(words, "\n") + "\n"; res.stdout != w {
			t.Fatalf("printf printed %q, want %q", res.stdout, w)
		}
	})
	t.Run("remote-half-missing", func(t *testing.T) {
		// Without --no-deploy a native login would copy socketpipe there (deploy_test.go).
		res := r.run(t, nil, args("--no-deploy", "--remote-path", "/nonexistent/socketpipe", r.nativeLogin(), block("-r", "cat"), block("-o", "cat"))...)
		want(t, res, 2)
		mustContain(t, "stderr", res.stderr, "/nonexistent/socketpipe is not installed on the remote host")
		oneError(t, res)
	})
	t.Run("sigterm", func(t *testing.T) { r.sigtermDuringTransfer(t, r.nativeLogin()) })
	r.noneLeft(t)
}

func TestNativeNetnsModes(t *testing.T) {
	t.Parallel()
	r, nw := twoHosts(t)
	data := randomBytes(t, 4<<20)
	for _, mode := range []string{"back", "reverse", "ssh"} {
		t.Run(mode, func(t *testing.T) {
			if got := r.nativeTransfer(t, data, "-m", mode); got != mode {
				t.Errorf("-m %s: -v says %s", mode, got)
			}
		})
	}
	t.Run("ipv6", func(t *testing.T) {
		res := r.run(t, bytes.NewReader(data), args("-v", "-m", "reverse", "-l", "{", r.sshd.SSHArgsAt(nw.Hosts[1].IPv6), "}", block("-i", "cat"), block("-r", "cat"), block("-o", "sha256sum"))...)
		want(t, res, 0)
		wantNative(t, res.stderr)
		if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sum(data) {
			t.Fatalf("sha256 %q", res.stdout)
		}
		mustContain(t, "-v", res.stderr, "dialling the remote half at ["+nw.Hosts[1].IPv6+"]:")
	})
	r.noneLeft(t)
}

func TestNativeAutoFirewalls(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		local, remote bool
		mode          string
	}{
		{"local", true, false, "reverse"},
		{"remote", false, true, "back"},
		{"both", true, true, "ssh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, nw := twoHosts(t)
			if tc.local {
				nw.Hosts[0].DropInboundExcept(t, 22)
			}
			if tc.remote {
				nw.Hosts[1].DropInboundExcept(t, 22)
			}
			if m := r.nativeTransfer(t, randomBytes(t, 4<<20)); m != tc.mode {
				t.Errorf("auto chose %s, want %s", m, tc.mode)
			}
			r.noneLeft(t)
		})
	}
}

func TestNativeNestedChainThreeHosts(t *testing.T) {
	t.Parallel()
	nw := harness.NewNetwork(t, 3, harness.NetworkOptions{})
	a, b, c := nw.Hosts[0], nw.Hosts[1], nw.Hosts[2]
	r := newRemote(t, harness.SSHDOptions{Netns: b.Name, ListenAddr: b.IPv4, Port: 22, Alias: "sp-b"})
	r.host = a
	sc := r.addSSHD(t, harness.SSHDOptions{Netns: c.Name, ListenAddr: c.IPv4, Port: 22, Alias: "sp-c"})
	data := randomBytes(t, 4<<20)
	inner := args("socketpipe", "-v", block("-i", "cat"), "-l", "{", sc.SSHArgs(), "}", block("-r", "cat"), block("-o", "cat"))
	res := r.run(t, bytes.NewReader(data), args("-v", block("-i", "cat"), r.nativeLogin(), block("-r", inner...), block("-o", "sha256sum"))...)
	want(t, res, 0)
	if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sum(data) {
		t.Fatalf("sha256 through A-B-C %q, want %s\n%v", res.stdout, sum(data), res)
	}
	// Both logins, the outer and the inner (whose -v comes back on stderr), were native.
	if n := strings.Count(res.stderr, "native login: "); n != 2 {
		t.Errorf("%d native logins, want 2:\n%s", n, res.stderr)
	}
	r.noneLeft(t)
}
