//go:build linux

package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/testenv"
)

func TestMain(m *testing.M) { Main(m) }

// within is how long the tests allow for things that take milliseconds on an idle machine.
const within = 30 * time.Second

func TestRequireUnknownName(t *testing.T) {
	if err := checkPrereq("no-such-thing"); !errors.Is(err, errUnknownPrereq) {
		t.Fatalf("checkPrereq(unknown) = %v, want errUnknownPrereq", err)
	}
	if err := checkPrereq(NeedRoot); (err == nil) != (os.Geteuid() == 0) {
		t.Fatalf("checkPrereq(root) = %v with euid %d", err, os.Geteuid())
	}
}

// TestRequireOutsideRoot runs TestRequireChild as user nobody: without CI it must skip, with
// CI=true it must fail.
func TestRequireOutsideRoot(t *testing.T) {
	Require(t, NeedRoot)
	_, err := exec.LookPath("setpriv") // not a prerequisite of the harness itself
	testenv.Need(t, "setpriv (install util-linux)", err)
	// The test binary lives in a directory only root may enter: copy it where nobody can run it.
	dir, err := os.MkdirTemp("", "harness-require-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "harness.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ci       string
		wantExit int
		want     string
	}{
		{"", 0, "--- SKIP: TestRequireChild"},
		{"true", 1, "--- FAIL: TestRequireChild"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		cmd := exec.CommandContext(ctx, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
			bin, "-test.run=^TestRequireChild$", "-test.v")
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=/", "SP_HARNESS_REQUIRE_CHILD=1", "CI=" + tc.ci}
		out, err := cmd.CombinedOutput()
		cancel()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.wantExit || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "not running as root") {
			t.Errorf("as nobody with CI=%q: exit %d, want %d and %q naming the missing prerequisite; output:\n%s",
				tc.ci, code, tc.wantExit, tc.want, out)
		}
	}
}

// TestRequireChild is run by TestRequireOutsideRoot.
func TestRequireChild(t *testing.T) {
	if os.Getenv("SP_HARNESS_REQUIRE_CHILD") != "1" {
		return // a helper process: TestRequireOutsideRoot runs it
	}
	Require(t, NeedRoot)
	t.Log("Require returned although the prerequisite is missing")
}

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "module github.com/socketpipe/socketpipe\n") {
		t.Fatalf("ModuleRoot() = %s, whose go.mod starts %q", root, b[:min(len(b), 60)])
	}
}

// writeTinyMain writes a main package of its own module that prints what it is called with.
func writeTinyMain(t *testing.T, name, body string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/"+name+"\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const tinyMain = `package main

import (
	"fmt"
	"os"
	"strings"
)

func main() { fmt.Println("tiny:", strings.Join(os.Args[1:], ",")) }
`

func TestBuildMain(t *testing.T) {
	Require(t, NeedGo)
	pkg := writeTinyMain(t, "tinyhello", tinyMain)
	dir := BuildMain(t, pkg)
	if again := BuildMain(t, pkg); again != dir {
		t.Errorf("second BuildMain = %s, first %s: want the same, built once", again, dir)
	}
	out, err := exec.Command(filepath.Join(dir, "tinyhello"), "a", "b").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "tiny: a,b\n" {
		t.Fatalf("tinyhello printed %q", out)
	}

	broken := writeTinyMain(t, "broken", "package main\n\nfunc main() { undefined() }\n")
	if _, err := buildMain(broken, nil); err == nil || !strings.Contains(err.Error(), "undefined") {
		t.Fatalf("building a broken main: %v, want the compiler's error", err)
	}
}

func TestSweepBuilds(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(pid int, start string) string {
		d, err := os.MkdirTemp("", fmt.Sprintf("%s%d-%s-", buildDirPrefix, pid, start))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	stale := mk(dead.Process.Pid, "1")
	live := mk(os.Getpid(), startTime(os.Getpid()))
	sweepBuilds()
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("build directory %s of a dead owner survived the sweep", stale)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("build directory %s of this live process was swept: %v", live, err)
	}
}

func TestSSHDLogin(t *testing.T) {
	t.Parallel()
	Require(t, NeedGo)
	bin := BuildMain(t, writeTinyMain(t, "tinyhello", tinyMain))
	marker := NewMarker()
	s := StartSSHD(t, SSHDOptions{
		PathDirs: []string{bin},
		Env:      map[string]string{MarkerEnv: marker, "SP_SPACES": "a b  $c"},
	})
	if got := s.Run(t, "echo", "ok"); got != "ok\n" {
		t.Fatalf("ssh echo ok printed %q", got)
	}
	if n := s.AuthCount(); n != 1 {
		t.Fatalf("AuthCount after one login = %d, want 1\nlog:\n%s", n, s.Log())
	}

	if got := s.Run(t, "echo", "$HOME"); strings.TrimSpace(got) != s.Home {
		t.Errorf("remote HOME = %q, want the clean home %q", got, s.Home)
	}
	if got := s.Run(t, "tinyhello", "x"); got != "tiny: x\n" {
		t.Errorf("tinyhello from PathDirs printed %q", got)
	}
	if got := s.Run(t, "printenv", MarkerEnv, "SP_SPACES"); got != marker+"\na b  $c\n" {
		t.Errorf("remote environment from Env: %q", got)
	}
	if n := s.AuthCount(); n != 4 {
		t.Errorf("AuthCount after four logins = %d, want 4", n)
	}

	// Root's login shell is bash, which sources $HOME/.bashrc even for ssh commands: the
	// clean home is where tests put a noisy one.
	if err := os.WriteFile(filepath.Join(s.Home, ".bashrc"), []byte("echo banner from bashrc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := s.Run(t, "echo", "ok"); got != "banner from bashrc\nok\n" {
		t.Errorf("with a noisy .bashrc in Home, ssh echo ok printed %q", got)
	}
}

func TestSSHDRefusesOtherKeys(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{})
	other := filepath.Join(t.TempDir(), "other")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	// A configuration naming another key: IdentitiesOnly keeps ssh from offering the right one.
	cfg, err := os.ReadFile(s.ClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(bad, []byte(strings.ReplaceAll(string(cfg), s.UserKey, other)), 0o600); err != nil {
		t.Fatal(err)
	}
	argv := []string{"ssh", "-F", bad, s.Alias, "true"}
	err = exec.CommandContext(ctx, argv[0], argv[1:]...).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 255 {
		t.Fatalf("ssh with an unknown key: %v, want exit status 255", err)
	}
	if n := s.AuthCount(); n != 0 {
		t.Fatalf("AuthCount after a refused login = %d, want 0", n)
	}
}

func TestSSHDOptions(t *testing.T) {
	t.Parallel()
	other := filepath.Join(t.TempDir(), "other")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(other + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	s := StartSSHD(t, SSHDOptions{
		KeepHome:       true,
		Alias:          "elsewhere",
		AuthorizedKeys: []string{strings.TrimSpace(string(pub))},
		// Before the harness's own "PermitRootLogin yes", so it wins; the Match block must
		// still come last for sshd to accept the file.
		ExtraConfig: []string{"PermitRootLogin prohibit-password", "Match User nobody", "\tPermitTTY no"},
	})
	if args := s.SSHArgs(); args[len(args)-1] != "elsewhere" {
		t.Fatalf("SSHArgs with Alias: %q", args)
	}
	if cfg, _ := os.ReadFile(s.Config); !strings.HasPrefix(strings.SplitN(string(cfg), "\n", 2)[1], "PermitRootLogin prohibit-password\n") {
		t.Errorf("ExtraConfig does not come first:\n%s", cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	// One login only: with KeepHome it runs root's real .bashrc, which may be slow.
	out, err := exec.CommandContext(ctx, "ssh", "-F", s.ClientConfig, "-o", "IdentitiesOnly=yes", "-o", "IdentityFile="+other, s.Alias, "echo", "$HOME").Output()
	if err != nil {
		t.Fatalf("login with the key from AuthorizedKeys: %q, %v", out, err)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, "\n/root") && got != "/root" {
		t.Errorf("HOME with KeepHome = %q, want /root", got)
	}
	if n := s.AuthCount(); n != 1 {
		t.Errorf("AuthCount = %d, want 1", n)
	}
	if !strings.Contains(s.Log(), "Accepted publickey for root") || !strings.Contains(s.Log(), ssh256(t, other+".pub")) {
		t.Errorf("the login did not use the key from AuthorizedKeys; log:\n%s", s.Log())
	}
}

func TestSSHDStopKillsSessions(t *testing.T) {
	t.Parallel()
	marker := NewMarker()
	s := StartSSHD(t, SSHDOptions{Env: map[string]string{MarkerEnv: marker}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := s.Command(ctx, "sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// bash -c "sleep 1000" carries the marker too, until it execs sleep.
	isSleep := func(ps []Process) bool { return len(ps) == 1 && ps[0].Cmdline[0] == "sleep" }
	if found := waitProcesses(marker, isSleep, within); !isSleep(found) {
		t.Fatalf("remote sleep with the marker: found %v", found)
	}
	s.Stop()
	if left := NoProcesses(marker, within); len(left) != 0 {
		t.Fatalf("after Stop, still running: %v", left)
	}
	if len(s.SessionProcesses()) != 0 {
		t.Fatalf("after Stop, sshd processes remain: %v", s.SessionProcesses())
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("ssh succeeded although sshd was stopped under it")
	}
}

// waitProcesses polls until the processes carrying marker satisfy ok, and returns them.
func waitProcesses(marker string, ok func([]Process) bool, timeout time.Duration) []Process {
	deadline := time.Now().Add(timeout)
	for {
		ps := FindProcesses(marker)
		if ok(ps) || time.Now().After(deadline) {
			return ps
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProcessesWithMarker(t *testing.T) {
	t.Parallel()
	marker := NewMarker()
	cmd := exec.Command("sleep", "1000")
	cmd.Env = EnvWithMarker(marker)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	unmarked := exec.Command("sleep", "1000")
	if err := unmarked.Start(); err != nil {
		t.Fatal(err)
	}
	defer unmarked.Process.Kill()

	pids := ProcessesWithMarker(marker)
	if len(pids) != 1 || pids[0] != cmd.Process.Pid {
		t.Fatalf("ProcessesWithMarker = %v, want [%d]", pids, cmd.Process.Pid)
	}
	if left := NoProcesses(marker, 200*time.Millisecond); len(left) != 1 {
		t.Fatalf("NoProcesses with a live marked process = %v, want it reported", left)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if left := NoProcesses(marker, within); len(left) != 0 {
		t.Fatalf("NoProcesses after the kill = %v", left)
	}
	if ProcessesWithMarker("") != nil {
		t.Fatal("the empty marker matches processes")
	}
}

// serveLines accepts connections on l and answers each with reply, then closes it.
func serveLines(l net.Listener, reply string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.WriteString(c, reply)
		c.Close()
	}
}

func dialRead(ctx context.Context, h *Host, addr string) (string, error) {
	c, err := h.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestNetwork(t *testing.T) {
	t.Parallel()
	nw := NewNetwork(t, 2, NetworkOptions{})
	a, b := nw.Hosts[0], nw.Hosts[1]
	if a.IPv4 == b.IPv4 || a.IPv6 == b.IPv6 {
		t.Fatalf("hosts share addresses: %+v %+v", a, b)
	}
	if out, _ := exec.Command("ip", "-o", "addr").Output(); strings.Contains(string(out), a.IPv4) {
		t.Fatalf("the root namespace has a host's address:\n%s", out)
	}

	s := StartSSHD(t, SSHDOptions{Netns: b.Name, ListenAddr: b.IPv4, ExtraListenAddrs: []string{b.IPv6}, Port: 22})
	ssh := func(argv []string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		var stderr strings.Builder
		cmd := a.Command(ctx, append(argv, "echo", "$SSH_CONNECTION")...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", errors.New(err.Error() + ": " + stderr.String())
		}
		return string(out), nil
	}
	out, err := ssh(s.SSHArgs())
	if err != nil {
		t.Fatalf("ssh from %s to %s: %v", a.Name, s.Addr, err)
	}
	if want := a.IPv4 + " "; !strings.HasPrefix(out, want) || !strings.Contains(out, " "+b.IPv4+" 22") {
		t.Errorf("SSH_CONNECTION over IPv4 = %q, want from %s to %s port 22", out, a.IPv4, b.IPv4)
	}
	out, err = ssh(s.SSHArgsAt(b.IPv6))
	if err != nil {
		t.Fatalf("ssh from %s to [%s]:22: %v", a.Name, b.IPv6, err)
	}
	if !strings.HasPrefix(out, a.IPv6+" ") || !strings.Contains(out, " "+b.IPv6+" 22") {
		t.Errorf("SSH_CONNECTION over IPv6 = %q, want from %s to %s port 22", out, a.IPv6, b.IPv6)
	}
	if n := s.AuthCount(); n != 2 {
		t.Errorf("AuthCount = %d, want 2", n)
	}

	var addrs []string
	for _, ip := range []string{b.IPv4, b.IPv6} {
		l, err := b.Listen("tcp", net.JoinHostPort(ip, "5000"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go serveLines(l, "hello from b\n")
		addrs = append(addrs, l.Addr().String())
	}
	// The same short bound serves as positive control (reachable before the firewall) and
	// as the verdict (unreachable after it).
	const probe = 3 * time.Second
	reach := func(addr string) error {
		ctx, cancel := context.WithTimeout(context.Background(), probe)
		defer cancel()
		got, err := dialRead(ctx, a, addr)
		if err == nil && got != "hello from b\n" {
			err = errors.New("unexpected greeting " + got)
		}
		return err
	}
	for _, addr := range addrs {
		if err := reach(addr); err != nil {
			t.Fatalf("before any firewall, %s from %s: %v", addr, a.Name, err)
		}
	}

	connects := func(addr string) error {
		ctx, cancel := context.WithTimeout(context.Background(), probe)
		defer cancel()
		c, err := a.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}
	// Each probe of a blocked port takes the whole bound: run them at once.
	probeAll := func(try func(string) error, addrs ...string) []error {
		errs := make([]error, len(addrs))
		var wg sync.WaitGroup
		for i, addr := range addrs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = try(addr)
			}()
		}
		wg.Wait()
		return errs
	}

	b.DropInboundExcept(t, 22)
	for i, err := range probeAll(connects, addrs...) {
		if err == nil {
			t.Errorf("%s reachable from %s although %s drops all but port 22", addrs[i], a.Name, b.Name)
		}
	}
	if _, err := ssh(s.SSHArgs()); err != nil {
		t.Errorf("port 22 behind DropInboundExcept(22): %v", err)
	}
	if _, err := ssh(s.SSHArgsAt(b.IPv6)); err != nil {
		t.Errorf("port 22 over IPv6 behind DropInboundExcept(22): %v", err)
	}
	// Outbound connections from the firewalled host still work: their replies are established.
	la, err := a.Listen("tcp", net.JoinHostPort(a.IPv4, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	go serveLines(la, "hello from a\n")
	{
		ctx, cancel := context.WithTimeout(context.Background(), probe)
		got, err := dialRead(ctx, b, la.Addr().String())
		cancel()
		if err != nil || got != "hello from a\n" {
			t.Errorf("outbound from behind the firewall: %q, %v", got, err)
		}
	}

	b.ClearFirewall(t)
	if err := reach(addrs[0]); err != nil {
		t.Errorf("after ClearFirewall: %v", err)
	}

	// A cut link stops even what the firewall let through, and comes back on restore.
	b.CutLink(t)
	for i, err := range probeAll(connects, s.Addr, addrs[0], addrs[1]) {
		if err == nil {
			t.Errorf("%s reachable through a cut link", []string{s.Addr, addrs[0], addrs[1]}[i])
		}
	}
	b.RestoreLink(t)
	if err := reach(addrs[0]); err != nil {
		t.Errorf("after RestoreLink: %v", err)
	}
	if _, err := ssh(s.SSHArgs()); err != nil {
		t.Errorf("ssh after RestoreLink: %v", err)
	}
}

func TestNetworkSSHDEphemeralPort(t *testing.T) {
	t.Parallel()
	nw := NewNetwork(t, 1, NetworkOptions{})
	h := nw.Hosts[0]
	s := StartSSHD(t, SSHDOptions{Netns: h.Name, ListenAddr: h.IPv6})
	if s.Port == 22 || s.Port == 0 {
		t.Fatalf("ephemeral port = %d", s.Port)
	}
	// The host's own sshd is reachable from inside the host, not from the root namespace.
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if out, err := h.Command(ctx, append(s.SSHArgs(), "echo", "ok")...).CombinedOutput(); err != nil || string(out) != "ok\n" {
		t.Fatalf("ssh inside %s: %q, %v", h.Name, out, err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	if c, err := (&net.Dialer{}).DialContext(dctx, "tcp", s.Addr); err == nil {
		c.Close()
		t.Fatalf("%s reachable from the root namespace", s.Addr)
	}
}

func TestStranger(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()

	// A careless listener greets everyone: the stranger must see the greeting.
	careless, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer careless.Close()
	go serveLines(careless, "secret\n")
	var st Stranger
	r, err := st.Garbage(ctx, careless.Addr().String(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Received) != "secret\n" || !r.ClosedByPeer {
		t.Fatalf("Garbage against a careless listener: %+v", r)
	}

	// A careful listener reads a bounded hello and hangs up on a silent peer after a while.
	careful, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer careful.Close()
	hungUp := make(chan error, 10)
	go func() {
		for {
			c, err := careful.Accept()
			if err != nil {
				return
			}
			go func() {
				c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				_, err := io.Copy(io.Discard, io.LimitReader(c, 64))
				hungUp <- err // before Close: the stranger sees EOF only after this
				c.Close()
			}()
		}
	}()
	r, err = st.Silent(ctx, careful.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Received) != 0 || !r.ClosedByPeer {
		t.Fatalf("Silent against a careful listener: %+v", r)
	}
	select {
	case err := <-hungUp:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the careful listener ended a silent connection with %v, want its read deadline", err)
		}
	default:
		t.Fatal("Silent returned before the listener hung up")
	}
	r, err = st.Garbage(ctx, careful.Addr().String(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if r.ReceivedN != 0 || !r.ClosedByPeer {
		t.Fatalf("Garbage against a careful listener: %+v", r)
	}
	<-hungUp

	// A connection the test closes itself is not "closed by peer".
	c, err := st.Connect(ctx, careless.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Wait(ctx); !r.ClosedByPeer {
		t.Fatalf("Wait on a connection the peer closes: %+v", r)
	}
	c.Close()

	f := st.Flood(ctx, careless.Addr().String(), 300, 0, within)
	if f.Connected != 300 || f.Failed != 0 || f.Received != 300*int64(len("secret\n")) {
		t.Fatalf("Flood of 300 against a careless listener: %+v", f)
	}
}

func TestStrangerFromHost(t *testing.T) {
	t.Parallel()
	nw := NewNetwork(t, 2, NetworkOptions{})
	a, b := nw.Hosts[0], nw.Hosts[1]
	l, err := b.Listen("tcp", net.JoinHostPort(b.IPv6, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go serveLines(l, "hi\n")
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	r, err := NewStranger(a).Garbage(ctx, l.Addr().String(), 10)
	if err != nil || string(r.Received) != "hi\n" {
		t.Fatalf("stranger in %s to %s: %+v, %v", a.Name, l.Addr(), r, err)
	}
}

func TestSweepStale(t *testing.T) {
	Require(t, NeedNetns)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := "sp-stale" + randomHex(3)
	live := "sp-live" + randomHex(3)
	for _, ns := range []string{stale, live} {
		if err := addNetns(ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := os.Stat(filepath.Join(netnsRunDir, ns)); err == nil {
				deleteNetns(ns)
			}
			forgetOwner(ns)
		})
	}
	if err := recordOwner(live, []string{live}); err != nil {
		t.Fatal(err)
	}
	content := "owner " + strconv.Itoa(dead.Process.Pid) + " 1\n" + stale + "\n"
	if err := os.WriteFile(filepath.Join(stateDir, stale), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	sweepStale()
	if _, err := os.Stat(filepath.Join(netnsRunDir, stale)); err == nil {
		t.Errorf("namespace %s of a dead owner survived the sweep", stale)
	}
	if _, err := os.Stat(filepath.Join(stateDir, stale)); err == nil {
		t.Errorf("state file of a dead owner survived the sweep")
	}
	if _, err := os.Stat(filepath.Join(netnsRunDir, live)); err != nil {
		t.Errorf("namespace %s of this live process was swept: %v", live, err)
	}
}

// ssh256 is the SHA256 fingerprint of a public key file, as sshd logs it.
func ssh256(t *testing.T, pub string) string {
	out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", pub).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		t.Fatalf("ssh-keygen -l: %q", out)
	}
	return f[1]
}

// TestKilledTestBinary kills a test binary that holds an sshd and a network, as `go test
// -timeout` does (no Cleanup runs), and checks that the sshd dies with it and that the next
// sweep removes its namespaces.
func TestKilledTestBinary(t *testing.T) {
	Require(t, NeedRoot, NeedSSHD, NeedNetns)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	child := exec.CommandContext(ctx, "/proc/self/exe", "-test.run=^TestKilledTestBinaryChild$", "-test.v")
	child.Env = append(os.Environ(), "SP_HARNESS_KILLED_CHILD=1")
	stdin, err := child.StdinPipe() // the child blocks reading it
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var sshdPID int
	var namespaces []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "SSHD_PID="); ok {
			sshdPID, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "NETNS="); ok {
			namespaces = append(namespaces, v)
		}
		if strings.Contains(line, "READY") {
			break
		}
	}
	if sshdPID == 0 || len(namespaces) == 0 {
		child.Process.Kill()
		child.Wait()
		t.Fatalf("the child did not report its sshd and namespaces (pid %d, %v)", sshdPID, namespaces)
	}
	child.Process.Kill()
	child.Wait()

	deadline := time.Now().Add(within)
	for !isZombie(sshdPID) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !isZombie(sshdPID) {
		syscall.Kill(sshdPID, syscall.SIGKILL)
		t.Errorf("sshd (pid %d) outlived its killed test binary", sshdPID)
	}
	for _, ns := range namespaces {
		if _, err := os.Stat(filepath.Join(netnsRunDir, ns)); err != nil {
			t.Fatalf("namespace %s gone before the sweep (%v): the test proves nothing", ns, err)
		}
	}
	sweepStale()
	for _, ns := range namespaces {
		if _, err := os.Stat(filepath.Join(netnsRunDir, ns)); err == nil {
			deleteNetns(ns)
			t.Errorf("namespace %s of the killed test binary survived the sweep", ns)
		}
	}
}

// TestKilledTestBinaryChild is run by TestKilledTestBinary.
func TestKilledTestBinaryChild(t *testing.T) {
	if os.Getenv("SP_HARNESS_KILLED_CHILD") != "1" {
		return // a helper process: TestKilledTestBinary runs it
	}
	nw := NewNetwork(t, 1, NetworkOptions{})
	s := StartSSHD(t, SSHDOptions{Netns: nw.Hosts[0].Name, ListenAddr: nw.Hosts[0].IPv4})
	fmt.Printf("SSHD_PID=%d\nNETNS=%s\nNETNS=%s\nREADY\n", s.PID(), nw.Switch, nw.Hosts[0].Name)
	io.Copy(io.Discard, os.Stdin) // until killed
}
