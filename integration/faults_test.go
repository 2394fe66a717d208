//go:build linux

package integration

// Faults: a stage, the remote half, the sshd session or the link dies mid-way, the disk fills,
// socketpipe is signalled in each phase. Every run must end within a stated bound, with a
// non-zero status and a message naming what failed, and leave no process of the run on either
// host. Each test logs "time to exit" lines: how long each fault took to end the run.

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// running is a socketpipe run in the background, for tests that act on it while it runs.
type running struct {
	r      *remote
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdout bytes.Buffer
	lines  *lineWatcher
	mark   time.Time // when the test acted; the run's time to exit counts from here
}

// start starts socketpipe with args; env is added to its environment.
func (r *remote) start(t *testing.T, stdin io.Reader, env []string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	rn := &running{r: r, cancel: cancel}
	rn.cmd = r.spCmd(ctx, args...)
	rn.cmd.Env = append(rn.cmd.Env, env...)
	rn.cmd.Stdin = stdin
	rn.cmd.Stdout = &rn.stdout
	errR, err := rn.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rn.lines = watchLines(errR)
	rn.mark = time.Now()
	t.Cleanup(func() {
		if rn.cmd.ProcessState == nil {
			rn.cmd.Process.Kill()
			rn.cmd.Wait()
		}
		cancel()
	})
	return rn
}

// proc waits up to within for a process of the run that match accepts.
func (rn *running) proc(t *testing.T, what string, within time.Duration, match func(harness.Process) bool) harness.Process {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, p := range harness.FindProcesses(rn.r.marker) {
			if len(p.Cmdline) > 0 && match(p) {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v; stderr so far:\n%s", what, within, rn.lines)
		}
		time.Sleep(20 * time.Millisecond) // polling the condition itself, bounded by the deadline
	}
}

// named matches a process whose command is name.
func named(name string) func(harness.Process) bool {
	return func(p harness.Process) bool { return filepath.Base(p.Cmdline[0]) == name }
}

// remoteHalf matches `socketpipe --serve`.
func remoteHalf(p harness.Process) bool {
	return filepath.Base(p.Cmdline[0]) == "socketpipe" && len(p.Cmdline) > 1 && p.Cmdline[1] == "--serve"
}

// act marks the moment the test acts on the run: the time to exit counts from here.
func (rn *running) act() { rn.mark = time.Now() }

// end waits for the run to end, failing the test if it takes longer than bound after act.
func (rn *running) end(t *testing.T, what string, bound time.Duration) *result {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		<-rn.lines.done
		done <- rn.cmd.Wait()
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Until(rn.mark.Add(bound))):
		rn.cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second): // a child may hold stderr open
		}
		t.Fatalf("%s: socketpipe did not end within %v\nstderr:\n%s", what, bound, rn.lines)
	}
	res := &result{stdout: rn.stdout.String(), stderr: rn.lines.String(), took: time.Since(rn.mark)}
	res.code = exitCode(t, err)
	t.Logf("time to exit: %s: %v (status %d)", what, res.took.Round(10*time.Millisecond), res.code)
	return res
}

// noPanic fails if socketpipe's stderr shows a Go panic or runtime trace.
func noPanic(t *testing.T, res *result) {
	t.Helper()
	for _, s := range []string{"panic:", "goroutine ", "runtime error", "SIGSEGV"} {
		if strings.Contains(res.stderr, s) {
			t.Fatalf("stderr shows %q:\n%s", s, res.stderr)
		}
	}
}

// logins are the two login paths the fault tests run through.
var logins = []string{"exec", "native"}

func (r *remote) loginArgs(kind string) []string {
	if kind == "native" {
		return r.nativeLogin()
	}
	return r.execLogin()
}

// TestFaultsMidTransfer kills each part of a run while data flows.
func TestFaultsMidTransfer(t *testing.T) {
	t.Parallel()
	for _, kind := range logins {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			r := newRemote(t, harness.SSHDOptions{})
			login := r.loginArgs(kind)
			// sha256sum runs only on the remote side: its process shows the transfer is
			// under way, and it is the one process there that is the remote command.
			flowing := func(t *testing.T) *running {
				rn := r.start(t, nil, nil, args(block("-i", "cat", "/dev/zero"), login, block("-r", "sha256sum"), block("-o", "cat"))...)
				rn.proc(t, "remote sha256sum", time.Minute, named("sha256sum"))
				return rn
			}
			const bound = 15 * time.Second

			t.Run("remote-command-killed", func(t *testing.T) {
				rn := flowing(t)
				p := rn.proc(t, "remote sha256sum", time.Minute, named("sha256sum"))
				rn.act()
				syscall.Kill(p.PID, syscall.SIGKILL)
				res := rn.end(t, kind+": remote command SIGKILLed", bound)
				want(t, res, 128+9)
				mustContain(t, "stderr", res.stderr, `socketpipe: error: remote command "sha256sum" was killed by SIGKILL`)
				oneError(t, res)
				r.noneLeft(t)
			})

			t.Run("remote-half-killed", func(t *testing.T) {
				rn := flowing(t)
				p := rn.proc(t, "remote half", time.Minute, remoteHalf)
				rn.act()
				syscall.Kill(p.PID, syscall.SIGKILL)
				res := rn.end(t, kind+": remote half SIGKILLed", bound)
				want(t, res, 2)
				mustContain(t, "stderr", res.stderr, "socketpipe: error: the remote half ended without reporting the remote command's status")
				oneError(t, res)
				noPanic(t, res)
				r.noneLeft(t)
			})

			t.Run("sshd-session-killed", func(t *testing.T) {
				rn := flowing(t)
				var session harness.Process
				for _, p := range r.sshd.SessionProcesses() {
					if strings.Contains(strings.Join(p.Cmdline, " "), "@notty") {
						session = p
					}
				}
				if session.PID == 0 {
					t.Fatalf("no sshd session process among %v", r.sshd.SessionProcesses())
				}
				rn.act()
				syscall.Kill(session.PID, syscall.SIGKILL)
				res := rn.end(t, kind+": sshd session SIGKILLed", bound)
				want(t, res, 2)
				mustContain(t, "stderr", res.stderr, "socketpipe: error: the remote half ended without reporting the remote command's status")
				oneError(t, res)
				noPanic(t, res)
				r.noneLeft(t)
			})

			t.Run("input-killed", func(t *testing.T) {
				rn := r.start(t, nil, nil, args(block("-i", "dd", "if=/dev/zero", "bs=64k"), login, block("-r", "sha256sum"), block("-o", "cat"))...)
				rn.proc(t, "remote sha256sum", time.Minute, named("sha256sum"))
				p := rn.proc(t, "local dd", time.Minute, named("dd"))
				rn.act()
				syscall.Kill(p.PID, syscall.SIGKILL)
				res := rn.end(t, kind+": input command SIGKILLed", bound)
				want(t, res, 128+9)
				mustContain(t, "stderr", res.stderr, `socketpipe: error: input command "dd" was killed by SIGKILL`)
				oneError(t, res)
				// What did arrive was summed and came back: the rest of the pipeline ran on.
				if len(strings.Fields(res.stdout)) != 2 {
					t.Errorf("the remote sha256sum's output did not come back: %q", res.stdout)
				}
				r.noneLeft(t)
			})

			t.Run("output-exits-early", func(t *testing.T) {
				// As `yes | head -c 1` under pipefail: the writer before the reader that
				// went away dies of SIGPIPE, 141, and the run ends at once.
				rn := r.start(t, nil, nil, args(login, block("-r", "yes"), block("-o", "head", "-c", "1"))...)
				res := rn.end(t, kind+": output exits early (from start)", 30*time.Second)
				want(t, res, 128+13)
				if res.stdout != "y" {
					t.Errorf("stdout %q, want %q", res.stdout, "y")
				}
				mustContain(t, "stderr", res.stderr, `socketpipe: error: remote command "yes" was killed by SIGPIPE`)
				oneError(t, res)
				r.noneLeft(t)
			})
		})
	}
}

// TestSignalsEachPhase signals socketpipe during the login, the rendezvous and the transfer
// (SIGTERM during the transfer has its own test): it exits 128+signal, nothing left.
func TestSignalsEachPhase(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGHUP} {
		t.Run(plumbSignalName(sig), func(t *testing.T) {
			t.Parallel()
			r := newRemote(t, harness.SSHDOptions{})
			const bound = 10 * time.Second
			signal := func(t *testing.T, rn *running, what string) {
				rn.act()
				rn.cmd.Process.Signal(sig)
				res := rn.end(t, what, bound)
				want(t, res, 128+int(sig))
				noPanic(t, res)
				r.noneLeft(t)
			}

			t.Run("login-exec", func(t *testing.T) {
				// A login command that never starts anything: socketpipe waits for the
				// remote half's hello. (The remote half's command line becomes $0.)
				rn := r.start(t, nil, nil, args(block("-l", "sh", "-c", "sleep 600; exit 0"), block("-r", "cat"), block("-o", "cat"))...)
				rn.proc(t, "the login command", time.Minute, named("sleep"))
				signal(t, rn, plumbSignalName(sig)+" during an executed login")
			})

			t.Run("login-native", func(t *testing.T) {
				// An sshd that accepts and never says a word: the native login waits
				// in the handshake.
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				accepted := make(chan net.Conn, 1)
				go func() {
					if c, err := l.Accept(); err == nil {
						accepted <- c
					}
				}()
				port := itoa(l.Addr().(*net.TCPAddr).Port)
				rn := r.start(t, nil, nil, args(block("-l", "ssh", "-F", r.sshd.ClientConfig, "-p", port, r.sshd.Alias), block("-r", "cat"), block("-o", "cat"))...)
				select {
				case c := <-accepted:
					defer c.Close()
				case <-time.After(time.Minute):
					t.Fatalf("the native login never connected:\n%s", rn.lines)
				}
				signal(t, rn, plumbSignalName(sig)+" during a native login handshake")
			})

			for _, kind := range logins {
				t.Run("rendezvous-"+kind, func(t *testing.T) {
					// 192.0.2.1 (TEST-NET-1) never answers: the remote half dials it for -t.
					rn := r.start(t, nil, nil, args("-v", "-m", "back", "-h", "192.0.2.1", "-t", "30", r.loginArgs(kind), block("-r", "cat"), block("-o", "cat"))...)
					rn.proc(t, "remote half", time.Minute, remoteHalf)
					if rn.lines.waitFor(time.Minute, func(s string) string {
						if strings.Contains(s, "listening for connect-back") {
							return "yes"
						}
						return ""
					}) == "" {
						t.Fatalf("not waiting for the data connection:\n%s", rn.lines)
					}
					signal(t, rn, plumbSignalName(sig)+" during the rendezvous ("+kind+")")
				})
				t.Run("transfer-"+kind, func(t *testing.T) {
					rn := r.start(t, nil, nil, args(block("-i", "cat", "/dev/zero"), r.loginArgs(kind), block("-r", "sha256sum"), block("-o", "cat"))...)
					rn.proc(t, "remote sha256sum", time.Minute, named("sha256sum"))
					signal(t, rn, plumbSignalName(sig)+" during the transfer ("+kind+")")
				})
			}
		})
	}
}

func plumbSignalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return sig.String()
}

// shortLiveness is the environment entry that makes both halves find a dead link in seconds
// (pings every second, silence for 6 s is death) instead of 30 s.
var shortLiveness = livenessEnv + "=short"

// livenessEnv is the test hook cmd/socketpipe reads to run a half with short liveness settings.
const livenessEnv = "SOCKETPIPE_TEST_LIVENESS"

// cutHosts makes two hosts as twoHosts does. With sshKeepalive, both ends of the login send
// ssh keepalives every second (ServerAliveInterval in the client's configuration,
// ClientAliveInterval in sshd's); otherwise both halves run with shortLiveness. It returns
// the -l block.
func cutHosts(t *testing.T, kind string, sshKeepalive bool) (*remote, *harness.Network, []string) {
	t.Helper()
	nw := harness.NewNetwork(t, 2, harness.NetworkOptions{})
	a, b := nw.Hosts[0], nw.Hosts[1]
	opts := harness.SSHDOptions{Netns: b.Name, ListenAddr: b.IPv4, Port: 22}
	if sshKeepalive {
		opts.ExtraConfig = []string{"ClientAliveInterval 1", "ClientAliveCountMax 3"}
	} else {
		opts.Env = map[string]string{livenessEnv: "short"}
	}
	r := newRemote(t, opts)
	r.host = a
	cfg := r.sshd.ClientConfig
	if sshKeepalive {
		conf, err := os.ReadFile(r.sshd.ClientConfig)
		if err != nil {
			t.Fatal(err)
		}
		cfg = filepath.Join(t.TempDir(), "ssh_config")
		if err := os.WriteFile(cfg, append(conf, "\tServerAliveInterval 1\n\tServerAliveCountMax 3\n"...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	login := []string{"-l", "{", "ssh", "-F", cfg, r.sshd.Alias, "}"}
	if kind == "exec" {
		login = append([]string{"-x"}, login...)
	}
	return r, nw, login
}

// TestLinkCut cuts the link between the two hosts while data flows. Either the halves' pings
// or ssh's keepalives find out within seconds, the run ends with a message that says the
// remote side was lost, and nothing is left on either host.
func TestLinkCut(t *testing.T) {
	t.Parallel()
	for _, kind := range logins {
		for _, how := range []string{"pings", "ssh-keepalive"} {
			t.Run(kind+"/"+how, func(t *testing.T) {
				t.Parallel()
				r, nw, login := cutHosts(t, kind, how == "ssh-keepalive")
				var env []string
				msg := "socketpipe: error: the remote half ended without reporting the remote command's status"
				if how == "pings" {
					env = []string{shortLiveness}
					msg = "socketpipe: error: lost contact with the remote half: nothing heard for 6s"
				}
				rn := r.start(t, nil, env, args("-v", block("-i", "cat", "/dev/zero"), login, block("-r", "sha256sum"), block("-o", "cat"))...)
				rn.proc(t, "remote sha256sum", time.Minute, named("sha256sum"))
				nw.Hosts[0].CutLink(t)
				rn.act()
				// Silence for 6 s (pings), or 3 unanswered ssh keepalives a second apart.
				res := rn.end(t, kind+"/"+how+": link cut mid-transfer", 20*time.Second)
				if res.code == 0 {
					t.Fatalf("a cut link claimed success:\n%v", res)
				}
				want(t, res, 2)
				mustContain(t, "stderr", res.stderr, msg)
				oneError(t, res)
				noPanic(t, res)
				// The remote host finds out by the same means.
				r.noneLeft(t)
			})
		}
	}
}

// TestSlowConsumer stalls the output command for more than three times the time after which a
// silent peer counts as dead, while the remote side has data to send: a consumer that stops
// reading is not a dead link, in a direct data connection (whose sender sees a zero window
// all along) or in ssh mode (where the client's reader of the control channel is stuck on the
// output's pipe).
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	data := randomBytes(t, 4<<20)
	for _, mode := range []string{"reverse", "ssh"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			r, _, login := cutHosts(t, "native", false)
			start := time.Now()
			rn := r.start(t, bytes.NewReader(data), []string{shortLiveness}, args("-v", "-m", mode, login,
				block("-i", "cat"), block("-r", "cat"), block("-o", "sh", "-c", "sleep 20; sha256sum"))...)
			res := rn.end(t, mode+": slow consumer (20 s stall) completes", 90*time.Second)
			want(t, res, 0)
			if got := strings.Fields(res.stdout); len(got) == 0 || got[0] != sum(data) {
				t.Fatalf("sha256 %q, want %s\n%v", res.stdout, sum(data), res)
			}
			if took := time.Since(start); took < 20*time.Second {
				t.Errorf("the run took %v: the output did not stall", took)
			}
			r.noneLeft(t)
		})
	}
}

// TestDiskFull gives the remote command a 1 MiB file system to write 4 MiB to: the remote
// command's failure decides the status, and nothing claims success.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	r := newRemote(t, harness.SSHDOptions{})
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	in, _ := randomFile(t, 4<<20)
	for _, kind := range logins {
		t.Run(kind, func(t *testing.T) {
			rn := r.start(t, nil, nil, args(block("-i", "cat", in), r.loginArgs(kind), block("-r", "sh", "-c", "cat > "+dir+"/f"))...)
			res := rn.end(t, kind+": disk full under the remote command (from start)", 30*time.Second)
			want(t, res, 1)
			mustContain(t, "stderr", res.stderr, "No space left on device", `socketpipe: error: remote command "sh" exited with status 1`)
			oneError(t, res)
			r.noneLeft(t)
		})
	}
}
