//go:build linux

package integration

// End-to-end tests of socketpipe's relays: `socketpipe --ssh` with pipes for its
// standard input and output, as git, borg, hg and restic start it, must pass each answer of a
// request/response protocol on as it comes, and carry bulk data both ways at once, in every
// mode that relays (plain, -e, -m ssh).

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
	"golang.org/x/sys/unix"
)

// relayDeadline bounds each wait for an answer: generous for a loaded machine, and far below
// the suite's timeout, so that a relay that keeps a reader from its bytes fails the test.
const relayDeadline = 20 * time.Second

// relayModes are socketpipe's own options for each way of relaying, and what -v says of it.
var relayModes = []struct {
	name string
	own  []string
	says string
}{
	{"plain", nil, ""},
	{"e", []string{"-e"}, "encrypted with"},
	{"ssh", []string{"-m", "ssh"}, "data connection: ssh"},
}

// spProc is one `socketpipe --ssh` with pipes for its standard input and output.
type spProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     *os.File // its stdin, our end
	out    *os.File // its stdout, our end
	stderr *lockedStderr
	done   chan error
}

type lockedStderr struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedStderr) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedStderr) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSP starts `socketpipe -v [own...] --ssh -F config alias remote` with pipes for stdin and
// stdout, as coproc, git and borg start ssh. With nonblock the pipes are made non-blocking
// once socketpipe runs, through descriptions it shares with the test, as a program that hands
// over its own descriptors does.
func (e *sshModeEnv) startSP(t *testing.T, own []string, remote string, nonblock bool) *spProc {
	t.Helper()
	argv := append([]string{"-v"}, own...)
	argv = append(argv, "--ssh", "-F", e.sshd.ClientConfig, e.sshd.Alias, remote)
	cmd := exec.Command(e.sp, argv...)
	cmd.Env = harness.EnvWithMarker(e.marker)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &spProc{t: t, cmd: cmd, in: inW, out: outR, stderr: &lockedStderr{}, done: make(chan error, 1)}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if nonblock {
		for _, f := range []*os.File{inR, outW} {
			if err := unix.SetNonblock(int(f.Fd()), true); err != nil {
				t.Fatal(err)
			}
		}
	}
	inR.Close()
	outW.Close()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		p.in.Close()
		p.out.Close()
	})
	return p
}

// stuck reports a relay that holds a reader or writer: the kernel stacks of socketpipe's
// threads say where it waits. It kills socketpipe, which frees whatever it held.
func (p *spProc) stuck(format string, args ...any) {
	p.t.Helper()
	msg := fmt.Sprintf(format, args...)
	stacks := threadStacks(p.cmd.Process.Pid)
	p.cmd.Process.Kill()
	p.t.Fatalf("%s\nsocketpipe's threads:\n%s\nstderr:\n%s", msg, stacks, p.stderr.String())
}

// threadStacks returns the kernel stack of every thread of pid that is in a system call.
func threadStacks(pid int) string {
	var b strings.Builder
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, task := range tasks {
		st, _ := os.ReadFile(task + "/stack")
		if len(bytes.TrimSpace(st)) == 0 || bytes.Contains(st, []byte("futex")) || bytes.Contains(st, []byte("epoll_wait")) {
			continue // the Go runtime's idle threads
		}
		fmt.Fprintf(&b, "thread %s:\n%s", filepath.Base(task), st)
	}
	return b.String()
}

// answer waits for want on the process's stdout: first until poll(2) says bytes are there
// (poll takes no lock), then, after a moment in which the relay goes back to waiting for more,
// reads them. A relay that waits while holding the pipe keeps the read from the bytes.
func (p *spProc) answer(want string) {
	p.t.Helper()
	fds := []unix.PollFd{{Fd: int32(p.out.Fd()), Events: unix.POLLIN}}
	deadline := time.Now().Add(relayDeadline)
	for {
		n, err := unix.Poll(fds, 100)
		if err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			p.stuck("no answer %q within %v", want, relayDeadline)
		}
	}
	time.Sleep(20 * time.Millisecond)
	got := make([]byte, 0, len(want))
	for len(got) < len(want) {
		type res struct {
			b   []byte
			err error
		}
		ch := make(chan res, 1)
		go func() {
			buf := make([]byte, len(want)-len(got))
			n, err := p.out.Read(buf)
			ch <- res{buf[:n], err}
		}()
		select {
		case r := <-ch:
			if r.err != nil {
				p.t.Fatalf("reading the answer %q: %v (got %q)\nstderr:\n%s", want, r.err, got, p.stderr.String())
			}
			got = append(got, r.b...)
		case <-time.After(relayDeadline):
			p.stuck("the answer is in socketpipe's stdout but the reader is kept from it for %v (got %q of %q)", relayDeadline, got, want)
		}
	}
	if string(got) != want {
		p.t.Fatalf("got %q, want %q", got, want)
	}
}

// wait waits for socketpipe to exit and returns its status.
func (p *spProc) wait() int {
	p.t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			p.t.Fatal(err)
		}
		return 0
	case <-time.After(runBound):
		p.stuck("socketpipe did not exit within %v", runBound)
		return -1
	}
}

// TestSSHModeRequestResponse talks line by line through `socketpipe --ssh` to a remote shell
// loop that answers each line, reading every answer before it sends the next line, as git's
// pkt-line exchange and borg's RPC do, in every relaying mode.
func TestSSHModeRequestResponse(t *testing.T) {
	e := newSSHModeEnv(t)
	for _, m := range relayModes {
		for _, nonblock := range []bool{false, true} {
			t.Run(m.name+"/"+blockingName(nonblock), func(t *testing.T) {
				p := e.startSP(t, m.own, `echo ready; while read x; do echo "got $x"; done; echo bye`, nonblock)
				p.answer("ready\n")
				for i := 0; i < 20; i++ {
					q := "q" + strconv.Itoa(i)
					if _, err := p.in.Write([]byte(q + "\n")); err != nil {
						t.Fatal(err)
					}
					p.answer("got " + q + "\n")
				}
				p.in.Close()
				p.answer("bye\n")
				if st := p.wait(); st != 0 {
					t.Fatalf("status %d\n%s", st, p.stderr.String())
				}
				modeSays(t, m.name, m.says, p.stderr.String())
			})
		}
	}
}

func blockingName(nonblock bool) string {
	if nonblock {
		return "nonblocking"
	}
	return "blocking"
}

// modeSays checks from the -v story that the run relayed the way the test meant.
func modeSays(t *testing.T, name, says, stderr string) {
	t.Helper()
	if says == "" {
		requireDirect(t, stderr)
		return
	}
	if !strings.Contains(stderr, says) {
		t.Fatalf("mode %s: -v does not say %q:\n%s", name, says, stderr)
	}
}

// TestSSHModeCoproc is a client that waits for the server to speak first, in bash: a coproc
// whose first line must be read before anything is sent. The reads come a moment after the lines can have arrived, as
// with a client that does other work meanwhile.
func TestSSHModeCoproc(t *testing.T) {
	requireTool(t, "bash")
	e := newSSHModeEnv(t)
	for _, m := range relayModes {
		t.Run(m.name, func(t *testing.T) {
			sp := shellJoinWords(append(append([]string{e.sp}, m.own...), "--ssh", "-F", e.sshd.ClientConfig, e.sshd.Alias))
			script := `coproc P { ` + sp + ` 'echo ping; read x; echo got $x'; }
pid=$P_PID; exec 3<&"${P[0]}" 4>&"${P[1]}" # bash closes P's descriptors when the coproc ends
sleep 1; read -r l <&3; echo "first: $l"
echo pong >&4
sleep 1; read -r l <&3; echo "second: $l"
wait $pid; echo "status: $?"`
			cmd := exec.Command("bash", "-c", script)
			cmd.Env = harness.EnvWithMarker(e.marker)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("bash: %v\n%s", err, errb.String())
				}
			case <-time.After(relayDeadline):
				// bash is stuck in read (uninterruptibly, if the relay holds the pipe): show
				// where socketpipe waits, then kill it, which frees bash.
				var stacks strings.Builder
				for _, p := range harness.FindProcesses(e.marker) {
					if strings.HasSuffix(p.Cmdline[0], "socketpipe") {
						fmt.Fprintf(&stacks, "%v\n%s", p, threadStacks(p.PID))
					}
				}
				harness.KillMarked(e.marker)
				<-done
				t.Fatalf("the coproc exchange did not end within %v; output so far %q\n%s", relayDeadline, out.String(), stacks.String())
			}
			if want := "first: ping\nsecond: got pong\nstatus: 0\n"; out.String() != want {
				t.Fatalf("got %q, want %q\n%s", out.String(), want, errb.String())
			}
		})
	}
}

// shellJoinWords quotes words for sh.
func shellJoinWords(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// TestSSHModeBothWaysAtOnce sends 64 MiB through `socketpipe --ssh host cat` while reading the
// echo, from one loop over poll(2) with non-blocking descriptors, as ssh and rsync drive their
// transports: a write is made only when poll says there is room, and the echo is read as it
// comes.
func TestSSHModeBothWaysAtOnce(t *testing.T) {
	e := newSSHModeEnv(t)
	const size = 64 << 20
	data := make([]byte, size)
	rand.Read(data)
	sum := sha256.Sum256(data)
	for _, m := range relayModes {
		for _, nonblock := range []bool{false, true} {
			t.Run(m.name+"/"+blockingName(nonblock), func(t *testing.T) {
				p := e.startSP(t, m.own, "cat", nonblock)
				var moved atomic.Int64
				var stop atomic.Bool
				type res struct {
					b   []byte
					err error
				}
				ch := make(chan res, 1)
				go func() {
					b, err := pollBothWays(p.in, p.out, data, &moved, &stop)
					ch <- res{b, err}
				}()
				var back []byte
				last, lastAt := int64(-1), time.Now()
			watch:
				for {
					select {
					case r := <-ch:
						if r.err != nil {
							t.Fatalf("%v\nstderr:\n%s", r.err, p.stderr.String())
						}
						back = r.b
						break watch
					case <-time.After(200 * time.Millisecond):
						if n := moved.Load(); n != last {
							last, lastAt = n, time.Now()
						} else if time.Since(lastAt) > relayDeadline {
							stop.Store(true)
							p.stuck("nothing moved for %v after %d bytes written and read", relayDeadline, n)
						}
					}
				}
				if sha256.Sum256(back) != sum {
					t.Fatalf("%d bytes came back, not the %d sent", len(back), size)
				}
				if st := p.wait(); st != 0 {
					t.Fatalf("status %d\n%s", st, p.stderr.String())
				}
				modeSays(t, m.name, m.says, p.stderr.String())
			})
		}
	}
}

// pollBothWays writes data to in and reads out until as much came back, from one loop over
// poll(2); in is closed once all is written. moved counts both directions.
func pollBothWays(in, out *os.File, data []byte, moved *atomic.Int64, stop *atomic.Bool) ([]byte, error) {
	wfd, rfd := int(in.Fd()), int(out.Fd())
	for _, fd := range []int{wfd, rfd} {
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, err
		}
	}
	back := make([]byte, 0, len(data))
	buf := make([]byte, 64<<10)
	sent := 0
	for len(back) < len(data) {
		if stop.Load() {
			return nil, errors.New("stopped")
		}
		fds := []unix.PollFd{{Fd: int32(rfd), Events: unix.POLLIN}}
		if sent < len(data) {
			fds = append(fds, unix.PollFd{Fd: int32(wfd), Events: unix.POLLOUT})
		}
		if _, err := unix.Poll(fds, 1000); err != nil && err != unix.EINTR {
			return nil, err
		}
		if len(fds) > 1 && fds[1].Revents != 0 {
			n, err := unix.Write(wfd, data[sent:min(sent+len(buf), len(data))])
			if err != nil && err != unix.EAGAIN {
				return nil, fmt.Errorf("write: %w", err)
			}
			if n > 0 {
				sent += n
				moved.Add(int64(n))
			}
			if sent == len(data) {
				in.Close()
			}
		}
		if fds[0].Revents != 0 {
			n, err := unix.Read(rfd, buf)
			if err != nil && err != unix.EAGAIN {
				return nil, fmt.Errorf("read: %w", err)
			}
			if n == 0 && err == nil {
				return back, fmt.Errorf("end of file after %d of %d bytes", len(back), len(data))
			}
			if n > 0 {
				back = append(back, buf[:n]...)
				moved.Add(int64(n))
			}
		}
	}
	return back, nil
}
