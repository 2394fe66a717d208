//go:build linux

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// TestCheckHostIPOracle runs OpenSSH's ssh and socketpipe's native login side by side against
// a real sshd reached by name on a non-loopback address, with CheckHostIP yes, for every
// StrictHostKeyChecking value and every state of known_hosts for the name and for the
// address (nothing, the server's key, another key), and wants the same decision from both:
// the login goes on or is refused, and the same lines are added to known_hosts. Reached by a
// name on a loopback address, the address is left alone by both.
func TestCheckHostIPOracle(t *testing.T) {
	nw := harness.NewNetwork(t, 2, harness.NetworkOptions{})
	client, server := nw.Hosts[0], nw.Hosts[1]
	s := nlStart(t, harness.SSHDOptions{Netns: server.Name, ListenAddr: server.IPv4, ExtraListenAddrs: []string{"127.0.0.1"}, Port: 22})
	// Each namespace resolves the names through its own hosts file (`ip netns exec` mounts
	// /etc/netns/NAME/hosts over /etc/hosts), so the name differs from the address.
	const name, loName = "srv.sp-test", "lo.sp-test"
	for h, hosts := range map[*harness.Host]string{
		client: "127.0.0.1 localhost\n" + server.IPv4 + " " + name + "\n",
		server: "127.0.0.1 localhost " + loName + "\n",
	} {
		etc := filepath.Join("/etc/netns", h.Name)
		if err := os.MkdirAll(etc, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(etc) })
		if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, other := nlKeygen(t, t.TempDir(), "other", "")
	keys := map[string]string{"": "", "key": s.sshd.HostKey, "other": other}

	// A target is a name to log in to, from a namespace, and the address it resolves to.
	type target struct {
		from     *harness.Host
		name, ip string
	}
	// try writes known_hosts for the case, logs in with login (ssh's or socketpipe's) and
	// returns whether it went on and what known_hosts gained.
	try := func(t *testing.T, to target, strict, nameKey, addrKey string, login func(target, string) (bool, string)) (bool, string) {
		t.Helper()
		dir := t.TempDir()
		kh := filepath.Join(dir, "known_hosts")
		initial := "# oracle\n"
		if k := keys[nameKey]; k != "" {
			initial += to.name + " " + k + "\n"
		} else if nameKey == "revoked" {
			initial += "@revoked * " + s.sshd.HostKey + "\n"
		}
		if k := keys[addrKey]; k != "" {
			initial += to.ip + " " + k + "\n"
		}
		if err := os.WriteFile(kh, []byte(initial), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "ssh_config")
		lines := append(s.key(), "HostName "+to.name, "Port 22", "User root", "UserKnownHostsFile "+kh,
			"GlobalKnownHostsFile /dev/null", "StrictHostKeyChecking "+strict, "CheckHostIP yes", "BatchMode yes")
		if err := os.WriteFile(cfg, []byte("Host "+to.name+"\n\t"+strings.Join(lines, "\n\t")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ok, out := login(to, cfg)
		b, _ := os.ReadFile(kh)
		if !strings.HasPrefix(string(b), initial) {
			t.Fatalf("known_hosts was rewritten: %q\n%s", b, out)
		}
		return ok, strings.TrimPrefix(string(b), initial)
	}
	ssh := func(to target, cfg string) (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), runBound)
		defer cancel()
		cmd := to.from.Command(ctx, "ssh", "-F", cfg, to.name, "true")
		cmd.Env = cleanEnv(s.marker)
		out, err := cmd.CombinedOutput()
		if _, exit := err.(*exec.ExitError); err != nil && !exit {
			t.Fatalf("ssh: %v", err)
		}
		return err == nil, string(out)
	}
	sp := func(to target, cfg string) (bool, string) {
		res := s.runWith(t, runOpts{host: to.from, stdin: strings.NewReader("x\n")}, "-v", "-i", "{", "cat", "}",
			"-l", "{", "ssh", "-F", cfg, to.name, "}", "-r", "{", "cat", "}", "-o", "{", "cat", "}")
		wantNative(t, res.stderr)
		if res.code == 0 && res.stdout != "x\n" {
			t.Errorf("the run went on but lost the data: %v", res)
		}
		return res.code == 0, res.String()
	}
	compare := func(t *testing.T, to target, strict, nameKey, addrKey string) {
		t.Helper()
		wantOK, wantAdded := try(t, to, strict, nameKey, addrKey, ssh)
		gotOK, gotAdded := try(t, to, strict, nameKey, addrKey, sp)
		if gotOK != wantOK || gotAdded != wantAdded {
			t.Errorf("ssh: went on %v, known_hosts gained %q\nsocketpipe: went on %v, known_hosts gained %q",
				wantOK, wantAdded, gotOK, gotAdded)
		}
	}
	remote := target{from: client, name: name, ip: server.IPv4}
	for _, strict := range []string{"yes", "accept-new", "ask", "no", "off"} {
		for _, nameKey := range []string{"", "key", "other"} {
			for _, addrKey := range []string{"", "key", "other"} {
				t.Run(fmt.Sprintf("%s/name=%s/addr=%s", strict, nameKey, addrKey), func(t *testing.T) {
					compare(t, remote, strict, nameKey, addrKey)
				})
			}
		}
	}
	// A revoked key is refused but under no, where both go on.
	for _, strict := range []string{"yes", "accept-new", "no"} {
		t.Run(fmt.Sprintf("%s/name=revoked", strict), func(t *testing.T) {
			compare(t, remote, strict, "revoked", "")
		})
	}
	loopback := target{from: server, name: loName, ip: "127.0.0.1"}
	for _, c := range []struct{ strict, nameKey, addrKey string }{
		{"yes", "key", "other"}, {"accept-new", "", ""}, {"accept-new", "", "other"}, {"no", "other", ""},
	} {
		t.Run(fmt.Sprintf("loopback/%s/name=%s/addr=%s", c.strict, c.nameKey, c.addrKey), func(t *testing.T) {
			compare(t, loopback, c.strict, c.nameKey, c.addrKey)
		})
	}
}

// An identity file of the user's that others can read is ignored by ssh and by socketpipe's
// native login alike, with the same warning, and the login goes on with the next key: with the
// unprotected key alone both fail, with a good key after it both log in.
func TestUnprotectedKeyOracle(t *testing.T) {
	// The server takes the unprotected key too: only the client's check refuses it.
	open, openPub := nlKeygen(t, t.TempDir(), "id_open", "")
	s := nlStart(t, harness.SSHDOptions{AuthorizedKeys: []string{openPub}})
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	warning := []string{
		"WARNING: UNPROTECTED PRIVATE KEY FILE!",
		fmt.Sprintf("Permissions 0644 for '%s' are too open.", open),
		"It is required that your private key files are NOT accessible by others.",
		"This private key will be ignored.",
	}
	for _, tc := range []struct {
		name string
		keys []string
		ok   bool
	}{
		{"alone", []string{open}, false},
		{"then a good key", []string{open, s.sshd.UserKey}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := []string{"IdentitiesOnly yes", "IdentityAgent none", "BatchMode yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no"}
			for _, k := range tc.keys {
				lines = append(lines, "IdentityFile "+k)
			}
			cfg := s.config(t, "sp-perm", lines...)
			ctx, cancel := context.WithTimeout(context.Background(), runBound)
			defer cancel()
			cmd := exec.CommandContext(ctx, "ssh", "-F", cfg, "sp-perm", "true")
			cmd.Env = cleanEnv(s.marker)
			out, err := cmd.CombinedOutput()
			if (err == nil) != tc.ok {
				t.Fatalf("the oracle: ssh went on %v, want %v: %v\n%s", err == nil, tc.ok, err, out)
			}
			mustContain(t, "ssh's stderr", string(out), warning...)
			res := s.runWith(t, runOpts{stdin: strings.NewReader("x\n")}, "-v", "-i", "{", "cat", "}",
				"-l", "{", "ssh", "-F", cfg, "sp-perm", "}", "-r", "{", "cat", "}", "-o", "{", "cat", "}")
			wantNative(t, res.stderr)
			if (res.code == 0) != tc.ok || (tc.ok && res.stdout != "x\n") {
				t.Fatalf("socketpipe went on %v, want %v as ssh: %v", res.code == 0, tc.ok, res)
			}
			mustContain(t, "socketpipe's stderr", res.stderr, warning...)
		})
	}
}
