//go:build linux

package integration

// Login failures not covered elsewhere, remote halves that lie (test doubles speaking a bad
// control protocol), and a flood of strangers at the data listener.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
	"github.com/socketpipe/socketpipe/internal/wire"
)

// editedConfig writes a copy of the sshd's client configuration with the line starting with
// key (inside the Host block) replaced by "key value".
func editedConfig(t *testing.T, r *remote, key, value string) string {
	t.Helper()
	b, err := os.ReadFile(r.sshd.ClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s*)` + key + ` .*$`)
	if !re.Match(b) {
		t.Fatalf("no %s line in %s", key, r.sshd.ClientConfig)
	}
	b = re.ReplaceAll(b, []byte("${1}"+key+" "+value))
	p := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoginFailures: each way a login can fail ends at once with status 2, one error line
// that says what failed, and nothing left.
func TestLoginFailures(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	dir := t.TempDir()
	otherKey := filepath.Join(dir, "other_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", otherKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	emptyKnownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(emptyKnownHosts, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	refused := editedConfig(t, r, "IdentityFile", otherKey)
	unknown := editedConfig(t, r, "UserKnownHostsFile", emptyKnownHosts)

	tests := []struct {
		name  string
		login []string // the words of the -l block
		exec  bool     // -x
		msgs  []string // in stderr
	}{
		{"refused-key/exec", []string{"ssh", "-F", refused, r.sshd.Alias}, true, []string{"Permission denied", "socketpipe: error: login failed: ssh exited with status 255"}},
		{"refused-key/native", []string{"ssh", "-F", refused, r.sshd.Alias}, false, []string{"socketpipe: error: login failed: ", "publickey"}},
		{"unknown-host-key/exec", []string{"ssh", "-F", unknown, r.sshd.Alias}, true, []string{"Host key verification failed", "socketpipe: error: login failed: ssh exited with status 255"}},
		{"unknown-host-key/native", []string{"ssh", "-F", unknown, r.sshd.Alias}, false, []string{"socketpipe: error: login failed: ", "host key"}},
		{"dns/exec", []string{"ssh", "-F", r.sshd.ClientConfig, "-o", "HostName=no-such-host.invalid", r.sshd.Alias}, true, []string{"no-such-host.invalid", "socketpipe: error: login failed: ssh exited with status 255"}},
		{"dns/native", []string{"ssh", "-F", r.sshd.ClientConfig, "-o", "HostName=no-such-host.invalid", r.sshd.Alias}, false, []string{"socketpipe: error: login failed: ", "no-such-host.invalid"}},
		{"login-not-found", []string{"no-such-login-cmd", "host"}, false, []string{"socketpipe: error: login failed: ", "no-such-login-cmd", "not found"}},
		{"login-exits-0", []string{"true"}, false, []string{"socketpipe: error: the remote half did not start", "socketpipe: hint: the login command true ended without starting the remote half"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var x []string
			if tc.exec {
				x = []string{"-x"}
			}
			rn := r.start(t, nil, nil, args(x, "-l", "{", tc.login, "}", block("-r", "cat"), block("-o", "cat"))...)
			res := rn.end(t, "login failure "+tc.name, 15*time.Second)
			want(t, res, 2)
			mustContain(t, "stderr", res.stderr, tc.msgs...)
			oneError(t, res)
			noPanic(t, res)
			r.noneLeft(t)
		})
	}
}

// frame is one control frame: type, 4-byte big-endian length, payload.
func frame(typ byte, payload string) string {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(payload)))
	return string(typ) + string(n[:]) + payload
}

// fakeHalf writes a remote half that prints out and then does what then says ("read": reads
// its input to the end; "exit": exits at once), and returns its path.
func fakeHalf(t *testing.T, dir, name, out, then string) string {
	t.Helper()
	data := filepath.Join(dir, name+".out")
	if err := os.WriteFile(data, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\ncat " + data + "\n"
	switch then {
	case "read":
		script += "exec cat >/dev/null\n"
	case "banner":
		script = "#!/bin/sh\nexec yes 'no magic here, just noise'\n"
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLyingRemoteHalf puts test doubles in place of the remote half: one too new (found first
// on the remote PATH), others sending oversized, truncated, malformed or unknown frames, or
// endless noise. Each run ends at once with status 2 and one clear error; none panics.
func TestLyingRemoteHalf(t *testing.T) {
	t.Parallel()
	fakes := t.TempDir()
	hello := func(protocol int, version string) string {
		return frame('J', `{"type":"hello","protocol":`+strconv.Itoa(protocol)+`,"version":"`+version+`"}`)
	}
	// The version double is named socketpipe and comes before the real one on the PATH.
	newer := filepath.Join(fakes, "newer")
	if err := os.Mkdir(newer, 0o755); err != nil {
		t.Fatal(err)
	}
	fakeHalf(t, newer, "socketpipe", wire.Magic+hello(99, "9.9"), "read")
	bin := harness.BuildSocketpipe(t)
	marker := harness.NewMarker()
	s := harness.StartSSHD(t, harness.SSHDOptions{PathDirs: []string{newer, bin}, Env: map[string]string{harness.MarkerEnv: marker}})
	r := &remote{sshd: s, bin: bin, marker: marker}

	tests := []struct {
		name string
		path string // --remote-path; "" for the PATH
		msgs []string
	}{
		{"version-mismatch", "", []string{"socketpipe: error: version mismatch: local socketpipe ", " speaks protocol " + strconv.Itoa(wire.Protocol) + ", remote socketpipe 9.9 speaks protocol 99", "socketpipe: hint: "}},
		{"oversized", fakeHalf(t, fakes, "oversized", wire.Magic+"J\x7f\xff\xff\xff", "read"), []string{"socketpipe: error: control message of 2147483647 bytes exceeds the limit of 1048576"}},
		{"truncated", fakeHalf(t, fakes, "truncated", wire.Magic+"J\x00\x00\x00\x64"+`{"type":"he`, "exit"), []string{"socketpipe: error: control channel: unexpected EOF"}},
		{"malformed", fakeHalf(t, fakes, "malformed", wire.Magic+frame('J', "{{{{{"), "read"), []string{"socketpipe: error: malformed control message"}},
		{"untyped", fakeHalf(t, fakes, "untyped", wire.Magic+frame('J', `{"protocol":1}`), "read"), []string{"socketpipe: error: control message without a type"}},
		{"unknown-frame", fakeHalf(t, fakes, "unknown", wire.Magic+frame('Z', ""), "read"), []string{"socketpipe: error: unknown control frame type 0x5a"}},
		{"data-instead-of-hello", fakeHalf(t, fakes, "data", wire.Magic+frame('D', "xyz"), "read"), []string{"socketpipe: error: unexpected frame type"}},
		{"oversized-after-hello", fakeHalf(t, fakes, "later", wire.Magic+hello(wire.Protocol, "0.1.0")+"D\x7f\xff\xff\xff", "read"), []string{"socketpipe: error: ", "data frame of 2147483647 bytes exceeds the limit of 262144"}},
		{"endless-noise", fakeHalf(t, fakes, "noise", "", "banner"), []string{"socketpipe: error: the remote half did not start: the login printed more than 1048576 bytes without its greeting"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rp []string
			if tc.path != "" {
				rp = []string{"--remote-path", tc.path}
			}
			rn := r.start(t, nil, nil, args(rp, "-m", "back", "-h", "127.0.0.1", "-t", "10", r.execLogin(), block("-r", "cat"), block("-o", "cat"))...)
			res := rn.end(t, "lying remote half: "+tc.name, 15*time.Second)
			want(t, res, 2)
			mustContain(t, "stderr", res.stderr, tc.msgs...)
			oneError(t, res)
			noPanic(t, res)
			r.noneLeft(t)
		})
	}
}

// peakRSS samples a process's VmHWM until stop is closed and returns the last value read.
func peakRSS(pid int, stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		re := regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB`)
		last := 0
		for {
			if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
				if m := re.FindSubmatch(b); m != nil {
					last, _ = strconv.Atoi(string(m[1]))
				}
			}
			select {
			case <-stop:
				out <- last
				return
			case <-time.After(20 * time.Millisecond): // sampling, not waiting for a condition
			}
		}
	}()
	return out
}

// TestFloodDataListener: a stranger connects a thousand times to the client's connect-back
// listener before the real remote half can come, and keeps every pending slot busy while it
// does. The strangers get nothing but the proof's hello, the real transfer completes, and
// socketpipe's peak RSS stays close to that of a run without strangers.
func TestFloodDataListener(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	data := randomBytes(t, 4<<20)
	run := func(t *testing.T, flood bool) (hwm int, before, during harness.FloodResult) {
		g := newGate(t, "request")
		rn := r.start(t, bytes.NewReader(data), nil, args("-v", "-m", "back", "-h", "127.0.0.1", block("-i", "cat"),
			g.login(r.sshd.SSHArgs()), block("-r", "cat"), block("-o", "sha256sum"))...)
		stop := make(chan struct{})
		peak := peakRSS(rn.cmd.Process.Pid, stop)
		addr := rn.lines.waitFor(time.Minute, func(s string) string {
			if m := listenRE.FindStringSubmatch(s); m != nil {
				return m[1]
			}
			return ""
		})
		if addr == "" {
			t.Fatalf("socketpipe -v never said where it listens:\n%s", rn.lines)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st := &harness.Stranger{}
		duringDone := make(chan harness.FloodResult, 1)
		if flood {
			before = st.Flood(ctx, addr, 1000, 64, 500*time.Millisecond)
			// Strangers that hold on: every slot for connections still proving is taken
			// when the real remote half arrives.
			dctx, dcancel := context.WithCancel(ctx)
			defer dcancel()
			go func() { duringDone <- st.Flood(dctx, addr, 200, 64, 10*time.Second) }()
			time.Sleep(200 * time.Millisecond) // a head start for the flood, not a readiness wait
		}
		g.open(t)
		rn.act()
		res := rn.end(t, fmt.Sprintf("transfer after the gate opened (flood %v)", flood), time.Minute)
		close(stop)
		hwm = <-peak
		want(t, res, 0)
		if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sum(data) {
			t.Fatalf("sha256 %q, want %s\n%v", res.stdout, sum(data), res)
		}
		if flood {
			cancel()
			during = <-duringDone
		}
		r.noneLeft(t)
		return hwm, before, during
	}
	base, _, _ := run(t, false)
	hwm, before, during := run(t, true)
	t.Logf("flood before: %d connected, %d failed, %d bytes received; during: %d connected, %d bytes; peak RSS %d KiB, %d KiB without strangers",
		before.Connected, before.Failed, before.Received, during.Connected, during.Received, hwm, base)
	if before.Connected != 1000 {
		t.Errorf("only %d of 1000 stranger connections were made (first error %v)", before.Connected, before.FirstErr)
	}
	per := int64(proofHelloSize + proofMACSize)
	if before.Received > int64(before.Connected)*per || during.Received > int64(during.Connected)*per {
		t.Errorf("the strangers received more than the proof's %d bytes per connection: %d, %d", per, before.Received, during.Received)
	}
	if hwm > base+32<<10 {
		t.Errorf("peak RSS %d KiB with the flood, %d KiB without", hwm, base)
	}
}
