package sshlogin

import (
	"io"
	"os/exec"

	"bytes"
	"errors"
	"fmt"
	"github.com/creack/pty"
	"github.com/socketpipe/socketpipe/internal/testenv"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/pkg/sshconfig"
	"golang.org/x/crypto/ssh"
)

func keyLine(names string, k ssh.PublicKey) string {
	return names + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + "\n"
}

// hostIPCase is one decision of OpenSSH's check_host_key under CheckHostIP: what known_hosts
// holds for the name and for the address ("" nothing, "key" the offered key, "other" another
// ED25519 key, "third" yet another), and what OpenSSH does.
type hostIPCase struct {
	strict     string
	name, addr string
	refused    string // "" to go on; "changed", "unknown" or "addr": the HostKeyError's kind
	spoofing   string // for "changed": what the error says of the address, "" for nothing
	added      string // the names of the line appended to known_hosts, "" for none
	unsafe     bool   // going on without password authentication
	tty        bool   // ask on the terminal (BatchMode otherwise)
}

// The table is OpenSSH's check_host_key (sshconnect.c), row by row: with the name known, a
// new address is recorded and a changed one refused but under "no"; with the name new, the
// key is recorded under the name and the address on one line, or under the name alone when
// the address is known, and a changed address is refused afterwards under accept-new (the
// name's line stays); with the name changed, everything but "no" refuses, naming the address
// when it does not hold the name's key ("DNS spoofing"), and nothing is recorded.
var hostIPCases = []hostIPCase{
	{strict: "yes", name: "key", addr: "", added: "198.51.100.7"},
	{strict: "accept-new", name: "key", addr: "", added: "198.51.100.7"},
	{strict: "ask", name: "key", addr: "", added: "198.51.100.7"},
	{strict: "no", name: "key", addr: "", added: "198.51.100.7"},
	{strict: "yes", name: "key", addr: "key"},
	{strict: "no", name: "key", addr: "key"},
	{strict: "yes", name: "key", addr: "other", refused: "addr"},
	{strict: "accept-new", name: "key", addr: "other", refused: "addr"},
	{strict: "ask", name: "key", addr: "other", refused: "addr"},
	{strict: "no", name: "key", addr: "other"},

	{strict: "yes", name: "", addr: "", refused: "unknown"},
	{strict: "yes", name: "", addr: "key", refused: "unknown"},
	{strict: "ask", name: "", addr: "", refused: "unknown"},
	{strict: "accept-new", name: "", addr: "", added: "srv.example,198.51.100.7"},
	{strict: "no", name: "", addr: "", added: "srv.example,198.51.100.7"},
	{strict: "accept-new", name: "", addr: "key", added: "srv.example"},
	{strict: "no", name: "", addr: "key", added: "srv.example"},
	{strict: "accept-new", name: "", addr: "other", refused: "addr", added: "srv.example"},
	{strict: "ask", name: "", addr: "other", refused: "unknown"},
	{strict: "no", name: "", addr: "other", added: "srv.example"},

	{strict: "yes", name: "other", addr: "", refused: "changed", spoofing: "is unknown"},
	{strict: "accept-new", name: "other", addr: "key", refused: "changed", spoofing: "is unchanged"},
	{strict: "ask", name: "other", addr: "other", refused: "changed"},
	{strict: "yes", name: "other", addr: "third", refused: "changed", spoofing: "has a different value"},
	{strict: "no", name: "other", addr: "", unsafe: true},
	{strict: "no", name: "other", addr: "key", unsafe: true},
	{strict: "no", name: "other", addr: "other", unsafe: true},
}

// runHostIPCase runs the host key callback for srv.example reached at remote, with known_hosts
// holding the case's keys, and returns the error, what was appended, the state and stderr.
func runHostIPCase(t *testing.T, tc hostIPCase, remote *net.TCPAddr, hostName string, viaProxy bool) (error, string, *handshakeState, string) {
	t.Helper()
	key, other, third := testKey(t), testKey(t), testKey(t)
	pick := map[string]ssh.PublicKey{"key": key, "other": other, "third": third}
	ip := remote.IP.String()
	var kh strings.Builder
	kh.WriteString("# test\n")
	if k := pick[tc.name]; k != nil {
		kh.WriteString(keyLine(hostName, k))
	}
	if k := pick[tc.addr]; k != nil {
		kh.WriteString(keyLine(ip, k))
	}
	file := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(file, []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &sshconfig.Config{HostName: hostName, Port: 22, UserKnownHostsFiles: []string{file}, CheckHostIP: true,
		StrictHostKeyChecking: tc.strict, PasswordAuthentication: true}
	var stderr bytes.Buffer
	d := &debug{w: &stderr, verbose: true}
	hs := &handshakeState{viaProxy: viaProxy}
	c := &Cmd{}
	cb, _, err := c.hostKeyCheck(cfg, &prompter{batch: !tc.tty, env: sshconfig.DefaultEnv()}, d, hs)
	if err != nil {
		t.Fatal(err)
	}
	err = cb(hostName+":22", remote, key)
	b, _ := os.ReadFile(file)
	added := strings.TrimPrefix(string(b), kh.String())
	return err, added, hs, stderr.String()
}

func TestCheckHostIPDecisions(t *testing.T) {
	remote := &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 22}
	for _, tc := range hostIPCases {
		t.Run(fmt.Sprintf("%s/name=%s/addr=%s", tc.strict, tc.name, tc.addr), func(t *testing.T) {
			err, added, hs, stderr := runHostIPCase(t, tc, remote, "srv.example", false)
			var he *HostKeyError
			addrLine := 2 // after the comment, and the name's line if any
			if tc.name != "" {
				addrLine = 3
			}
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v\n%s", err, stderr)
			case tc.refused != "" && !errors.As(err, &he):
				t.Fatalf("got %v, want a HostKeyError (%s)\n%s", err, tc.refused, stderr)
			case tc.refused == "changed" && !he.Changed,
				tc.refused == "unknown" && (he.Changed || he.AddrChanged || he.Reason == ""),
				tc.refused == "addr" && (he.Changed || !he.AddrChanged || he.Addr != "198.51.100.7" || he.AddrLine != addrLine || he.Reason == ""):
				t.Fatalf("got %+v, want %s", he, tc.refused)
			}
			if he != nil && tc.refused == "changed" {
				if tc.spoofing == "" && he.Addr != "" {
					t.Errorf("the address is named although it holds the name's key: %v", err)
				}
				if tc.spoofing != "" && !strings.Contains(err.Error(), "IP address 198.51.100.7 "+tc.spoofing) {
					t.Errorf("error %q does not say the address %s", err, tc.spoofing)
				}
			}
			if he != nil && tc.refused == "addr" && !strings.Contains(he.Hint(), "ssh-keygen -f") {
				t.Errorf("hint %q", he.Hint())
			}
			want := ""
			if tc.added != "" {
				want = tc.added + " ssh-ed25519 "
			}
			if (want == "") != (added == "") || !strings.HasPrefix(added, want) || strings.Count(added, "\n") > 1 {
				t.Errorf("known_hosts gained %q, want a line for %q", added, tc.added)
			}
			if hs.keyChanged != tc.unsafe {
				t.Errorf("password authentication disabled: %v, want %v", hs.keyChanged, tc.unsafe)
			}
			if tc.unsafe && !strings.Contains(stderr, "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!") {
				t.Errorf("no warning for the changed key:\n%s", stderr)
			}
			if tc.strict == "no" && tc.name == "other" && tc.addr != "other" && !strings.Contains(stderr, "POSSIBLE DNS SPOOFING DETECTED") {
				t.Errorf("no DNS spoofing warning:\n%s", stderr)
			}
			if tc.strict == "no" && tc.addr == "other" && tc.name != "other" && !strings.Contains(stderr, "differs from the key for the IP address '198.51.100.7'") {
				t.Errorf("no warning for the address's key:\n%s", stderr)
			}
		})
	}
}

// OpenSSH does not check the address when it is a loopback address, when the host name is
// the address itself, or when a proxy (ProxyJump) stands between: the name decides alone and
// only the name is recorded.
func TestCheckHostIPSkipped(t *testing.T) {
	for _, tc := range []struct {
		name     string
		remote   string
		hostName string
		viaProxy bool
	}{
		{"loopback", "127.0.0.1", "srv.example", false},
		{"loopback-8", "127.3.4.5", "srv.example", false},
		{"loopback-v6", "::1", "srv.example", false},
		{"host-is-address", "198.51.100.7", "198.51.100.7", false},
		{"proxy", "198.51.100.7", "srv.example", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := &net.TCPAddr{IP: net.ParseIP(tc.remote), Port: 22}
			if tc.hostName == tc.remote {
				// The name is the address: its own line decides, and it holds another key;
				// the error names no second address.
				err, _, _, _ := runHostIPCase(t, hostIPCase{strict: "yes", addr: "other"}, remote, tc.hostName, tc.viaProxy)
				var he *HostKeyError
				if !errors.As(err, &he) || !he.Changed || he.Addr != "" {
					t.Fatalf("got %v, want a changed key without an address", err)
				}
				return
			}
			// The address's key differs: refused under yes were it checked.
			err, added, _, stderr := runHostIPCase(t, hostIPCase{strict: "yes", name: "key", addr: "other"}, remote, tc.hostName, tc.viaProxy)
			if err != nil {
				t.Fatalf("refused: %v\n%s", err, stderr)
			}
			if added != "" {
				t.Errorf("known_hosts gained %q", added)
			}
			// And a new name is recorded alone.
			err, added, _, stderr = runHostIPCase(t, hostIPCase{strict: "accept-new"}, remote, tc.hostName, tc.viaProxy)
			if err != nil || !strings.HasPrefix(added, tc.hostName+" ssh-ed25519 ") {
				t.Errorf("got %v, known_hosts gained %q\n%s", err, added, stderr)
			}
		})
	}
}

// HashKnownHosts records the name and the address as two hashed lines, as OpenSSH does.
func TestCheckHostIPHashed(t *testing.T) {
	key := testKey(t)
	file := filepath.Join(t.TempDir(), "known_hosts")
	if err := appendKnownHost(file, []string{"srv.example", "198.51.100.7"}, key, true); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "|1|") || !strings.HasPrefix(lines[1], "|1|") {
		t.Errorf("known_hosts %q, want two hashed lines", b)
	}
}

// Under StrictHostKeyChecking ask, on a terminal, OpenSSH asks about a new name (and records it
// with its address), and asks again, yes or no, when the address holds another key: after the
// name's line was written, as OpenSSH writes it before that question.
func TestCheckHostIPAskTerminal(t *testing.T) {
	cases := map[string]hostIPCase{
		"changed-addr":          {strict: "ask", name: "key", addr: "other", tty: true},
		"new-name":              {strict: "ask", tty: true},
		"new-name-changed-addr": {strict: "ask", addr: "other", tty: true},
	}
	if name := os.Getenv("SP_HOSTIP_HELPER"); name != "" {
		remote := &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 22}
		err, added, _, _ := runHostIPCase(t, cases[name], remote, "srv.example", false)
		fmt.Printf("RESULT err=%v added=%q\n", err, strings.SplitN(added, " ", 2)[0])
		return
	}
	for _, tc := range []struct {
		name    string
		answers []string // question, answer, ...
		want    []string // in the RESULT line
	}{
		{"changed-addr", []string{"differs from the key for the IP address '198.51.100.7'\r\nOffending key for IP in ", "maybe",
			"Please type 'yes' or 'no': ", "yes"}, []string{`err=<nil> added=""`}},
		{"changed-addr", []string{"Are you sure you want to continue connecting (yes/no)? ", "no"}, []string{"(declined)", `added=""`}},
		{"changed-addr", []string{"Are you sure you want to continue connecting (yes/no)? ", ""}, []string{"(declined)", `added=""`}},
		{"new-name", []string{"The authenticity of host 'srv.example (198.51.100.7)' can't be established.", "yes"},
			[]string{`err=<nil> added="srv.example,198.51.100.7"`}},
		{"new-name-changed-addr", []string{"(yes/no/[fingerprint])? ", "yes", "(yes/no)? ", "no"},
			[]string{"differs from the key for its IP address 198.51.100.7", "(declined): offered ED25519 key SHA256:", `added="srv.example"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCheckHostIPAskTerminal$")
			cmd.Env = append(os.Environ(), "SP_HOSTIP_HELPER="+tc.name)
			f, err := pty.Start(cmd)
			testenv.Need(t, "a pty", err)
			defer f.Close()
			seen, expect := watchTerminal(t, f)
			for i := 0; i < len(tc.answers); i += 2 {
				expect(tc.answers[i])
				seen.Reset()
				io.WriteString(f, tc.answers[i+1]+"\n")
			}
			expect("RESULT ")
			expect("\n")
			cmd.Wait()
			for _, w := range tc.want {
				if line := seen.String(); !strings.Contains(line, w) {
					t.Errorf("got %q, want %q in it", line, w)
				}
			}
		})
	}
}

// HostKeyAlias names the key in known_hosts but does not turn CheckHostIP off, in OpenSSH:
// the address the connection reached is still recorded and checked.
func TestCheckHostIPWithAlias(t *testing.T) {
	key, other := testKey(t), testKey(t)
	remote := &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 22}
	check := func(t *testing.T, addrKey ssh.PublicKey) (error, string) {
		initial := keyLine("alias.example", key)
		if addrKey != nil {
			initial += keyLine("198.51.100.7", addrKey)
		}
		file := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(file, []byte(initial), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := &sshconfig.Config{HostName: "srv.example", HostKeyAlias: "alias.example", Port: 22, UserKnownHostsFiles: []string{file},
			CheckHostIP: true, StrictHostKeyChecking: "yes"}
		cb, _, err := (&Cmd{}).hostKeyCheck(cfg, &prompter{batch: true, env: sshconfig.DefaultEnv()}, &debug{}, &handshakeState{})
		if err != nil {
			t.Fatal(err)
		}
		err = cb("srv.example:22", remote, key)
		b, _ := os.ReadFile(file)
		return err, strings.TrimPrefix(string(b), initial)
	}
	if err, added := check(t, nil); err != nil || !strings.HasPrefix(added, "198.51.100.7 ssh-ed25519 ") {
		t.Errorf("a new address: %v, known_hosts gained %q", err, added)
	}
	var he *HostKeyError
	if err, added := check(t, other); !errors.As(err, &he) || !he.AddrChanged || he.Host != "alias.example" || added != "" {
		t.Errorf("an address holding another key: %v, known_hosts gained %q", err, added)
	}
}

// A revoked key is refused under every StrictHostKeyChecking but no, where OpenSSH goes on
// after its warning, as with a changed key: without password authentication.
func TestRevokedKeyStrictness(t *testing.T) {
	key := testKey(t)
	remote := &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 22}
	for _, strict := range []string{"yes", "accept-new", "ask", "no"} {
		t.Run(strict, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(file, []byte("@revoked "+keyLine("*", key)), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := &sshconfig.Config{HostName: "srv.example", Port: 22, UserKnownHostsFiles: []string{file},
				CheckHostIP: true, StrictHostKeyChecking: strict, PasswordAuthentication: true}
			var stderr bytes.Buffer
			hs := &handshakeState{}
			cb, _, err := (&Cmd{}).hostKeyCheck(cfg, &prompter{batch: true, env: sshconfig.DefaultEnv()}, &debug{w: &stderr}, hs)
			if err != nil {
				t.Fatal(err)
			}
			err = cb("srv.example:22", remote, key)
			var he *HostKeyError
			if strict != "no" {
				if !errors.As(err, &he) || !he.Revoked {
					t.Fatalf("got %v, want a revoked key refused", err)
				}
				return
			}
			if err != nil || !hs.keyChanged || !strings.Contains(stderr.String(), "WARNING: REVOKED HOST KEY DETECTED!") ||
				!strings.Contains(stderr.String(), "Password authentication is disabled") {
				t.Errorf("got %v, passwords off %v, stderr %q", err, hs.keyChanged, stderr.String())
			}
		})
	}
}
