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
// the login goes on or is refused, and the same lines are added to known_hosts.
func TestCheckHostIPOracle(t *testing.T) {
	nw := harness.NewNetwork(t, 2, harness.NetworkOptions{})
	client, server := nw.Hosts[0], nw.Hosts[1]
	s := nlStart(t, harness.SSHDOptions{Netns: server.Name, ListenAddr: server.IPv4, Port: 22})
	// The client's namespace resolves the name through its own hosts file (`ip netns exec`
	// mounts /etc/netns/NAME/hosts over /etc/hosts), so the name differs from the address.
	const name = "srv.sp-test"
	etc := filepath.Join("/etc/netns", client.Name)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte("127.0.0.1 localhost\n"+server.IPv4+" "+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, other := nlKeygen(t, t.TempDir(), "other", "")
	keys := map[string]string{"": "", "key": s.sshd.HostKey, "other": other}

	// try writes known_hosts for the case, logs in with login (ssh's or socketpipe's) and
	// returns whether it went on and what known_hosts gained.
	try := func(t *testing.T, strict, nameKey, addrKey string, login func(cfg string) (bool, string)) (bool, string) {
		t.Helper()
		dir := t.TempDir()
		kh := filepath.Join(dir, "known_hosts")
		initial := "# oracle\n"
		if k := keys[nameKey]; k != "" {
			initial += name + " " + k + "\n"
		}
		if k := keys[addrKey]; k != "" {
			initial += server.IPv4 + " " + k + "\n"
		}
		if err := os.WriteFile(kh, []byte(initial), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "ssh_config")
		lines := append(s.key(), "HostName "+name, "Port 22", "User root", "UserKnownHostsFile "+kh,
			"GlobalKnownHostsFile /dev/null", "StrictHostKeyChecking "+strict, "CheckHostIP yes", "BatchMode yes")
		if err := os.WriteFile(cfg, []byte("Host "+name+"\n\t"+strings.Join(lines, "\n\t")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ok, out := login(cfg)
		b, _ := os.ReadFile(kh)
		if !strings.HasPrefix(string(b), initial) {
			t.Fatalf("known_hosts was rewritten: %q\n%s", b, out)
		}
		return ok, strings.TrimPrefix(string(b), initial)
	}
	ssh := func(cfg string) (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), runBound)
		defer cancel()
		cmd := client.Command(ctx, "ssh", "-F", cfg, name, "true")
		cmd.Env = cleanEnv(s.marker)
		out, err := cmd.CombinedOutput()
		if _, exit := err.(*exec.ExitError); err != nil && !exit {
			t.Fatalf("ssh: %v", err)
		}
		return err == nil, string(out)
	}
	sp := func(cfg string) (bool, string) {
		res := s.runWith(t, runOpts{host: client, stdin: strings.NewReader("x\n")}, "-v", "-i", "{", "cat", "}",
			"-l", "{", "ssh", "-F", cfg, name, "}", "-r", "{", "cat", "}", "-o", "{", "cat", "}")
		wantNative(t, res.stderr)
		if res.code == 0 && res.stdout != "x\n" {
			t.Errorf("the run went on but lost the data: %v", res)
		}
		return res.code == 0, res.String()
	}
	for _, strict := range []string{"yes", "accept-new", "ask", "no"} {
		for _, nameKey := range []string{"", "key", "other"} {
			for _, addrKey := range []string{"", "key", "other"} {
				t.Run(fmt.Sprintf("%s/name=%s/addr=%s", strict, nameKey, addrKey), func(t *testing.T) {
					wantOK, wantAdded := try(t, strict, nameKey, addrKey, ssh)
					gotOK, gotAdded := try(t, strict, nameKey, addrKey, sp)
					if gotOK != wantOK || gotAdded != wantAdded {
						t.Errorf("ssh: went on %v, known_hosts gained %q\nsocketpipe: went on %v, known_hosts gained %q",
							wantOK, wantAdded, gotOK, gotAdded)
					}
				})
			}
		}
	}
}
