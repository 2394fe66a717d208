//go:build linux

// Package zerocopy checks, under strace, that plain socketpipe moves no data itself: the
// commands hold the TCP socket, and socketpipe's own processes (the client and the remote
// half) read and write only control messages.
package zerocopy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socketpipe/socketpipe/integration/bench"
	"github.com/socketpipe/socketpipe/internal/harness"
	"github.com/socketpipe/socketpipe/internal/testenv"
)

func TestMain(m *testing.M) { harness.Main(m) }

// dataSize is how much each transfer moves.
const dataSize = 64 << 20

// ownBound is the most socketpipe's own processes may read, write or splice in a whole run:
// the control protocol, the login and the Go runtime's start-up, far below one data copy.
const ownBound = 256 << 10

// tracedCalls are every system call that can move file data.
const tracedCalls = "read,write,readv,writev,pread64,pwrite64,preadv,pwritev,preadv2,pwritev2," +
	"recvfrom,sendto,recvmsg,sendmsg,recvmmsg,sendmmsg,splice,tee,vmsplice,sendfile,copy_file_range"

func requireStrace(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("strace")
	testenv.Need(t, "strace (install strace)", err)
	return p
}

func straceArgs(strace, out string) []string {
	// -Y names each pid's command, so socketpipe's own threads are told from the commands it
	// starts (which are traced too, -f, from their execve on).
	return []string{strace, "-f", "-Y", "-qq", "-s", "0", "-e", "signal=none", "-e", "trace=" + tracedCalls, "-o", out}
}

func TestZeroCopy(t *testing.T) {
	strace := requireStrace(t)
	spDir := harness.BuildSocketpipe(t)
	helperDir := harness.BuildMain(t, "./integration/bench/cmd/spbench")
	tmp := t.TempDir()
	remoteTrace := filepath.Join(tmp, "remote.trace")
	wrapper := filepath.Join(tmp, "socketpipe-under-strace")
	script := "#!/bin/sh\nexec " + shellJoin(straceArgs(strace, remoteTrace)) + " " + shellJoin([]string{filepath.Join(spDir, "socketpipe")}) + ` "$@"` + "\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	sshd := harness.StartSSHD(t, harness.SSHDOptions{PathDirs: []string{spDir, helperDir}})

	data := filepath.Join(tmp, "data")
	buf := make([]byte, dataSize)
	rand.Read(buf)
	if err := os.WriteFile(data, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	wantSum := sinkLine(buf)

	logins := []struct {
		name   string
		flags  []string
		copies bool // the control: -e relays every byte through socketpipe, and the trace must show it
	}{
		{"exec", []string{"-x"}, false},
		{"native", nil, false},
		{"exec-e-control", []string{"-x", "-e"}, true},
	}
	directions := []struct {
		name   string
		blocks []string // -i/-r/-o blocks around the login
	}{
		// Upload: cat's stdout is the socket, the remote sink's stdin; the sink's verdict comes
		// back over the socket to the local cat.
		{"upload", []string{"-i", "{", "cat", data, "}", "-r", "{", "spbench", "sink", "}", "-o", "{", "cat", "}"}},
		// Download: the remote cat's stdout is the socket, the local sink's stdin.
		{"download", []string{"-r", "{", "cat", data, "}", "-o", "{", "spbench", "sink", "}"}},
	}
	for _, lg := range logins {
		for _, dir := range directions {
			t.Run(lg.name+"/"+dir.name, func(t *testing.T) {
				os.Remove(remoteTrace)
				localTrace := filepath.Join(tmp, "local.trace")
				argv := append(straceArgs(strace, localTrace), filepath.Join(spDir, "socketpipe"), "--remote-path", wrapper)
				argv = append(argv, lg.flags...)
				argv = append(argv, "-l", "{")
				argv = append(argv, sshd.SSHArgs()...)
				argv = append(argv, "}")
				argv = append(argv, dir.blocks...)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
				cmd.Env = append(os.Environ(), "PATH="+helperDir+":"+os.Getenv("PATH"))
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("socketpipe under strace: %v\nstderr:\n%s", err, stderr.Bytes())
				}
				if got := strings.TrimSpace(stdout.String()); got != wantSum {
					t.Fatalf("the sink got %q, want %q: the data did not arrive intact", got, wantSum)
				}
				for _, tr := range []struct{ side, file string }{{"client", localTrace}, {"remote half", remoteTrace}} {
					u, err := usage(tr.file, "socketpipe")
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("%s: socketpipe's own processes moved %d bytes in %d calls (largest %d); the commands moved %d bytes",
						tr.side, u.own, u.calls, u.largest, u.others)
					if lg.copies {
						if u.own < dataSize {
							t.Errorf("%s: with -e socketpipe relays the data, yet the trace shows only %d bytes of its own: the check cannot see copies", tr.side, u.own)
						}
						continue
					}
					if u.own > ownBound {
						t.Errorf("%s: socketpipe's own processes read/wrote/spliced %d bytes while %d moved (bound %d): it copies data\n%s",
							tr.side, u.own, dataSize, ownBound, u.top)
					}
					if u.others < dataSize {
						t.Errorf("%s: the commands moved only %d bytes, less than the %d sent: is the trace complete?", tr.side, u.others, dataSize)
					}
				}
			})
		}
	}
}

// sinkLine is what `spbench sink` prints for b.
func sinkLine(b []byte) string {
	var out bytes.Buffer
	bench.Sink(bytes.NewReader(b), &out)
	return strings.TrimSpace(out.String())
}

// traceLine matches a completed call in `strace -f -Y -o` output:
// "1234<socketpipe> read(3, ""..., 4096) = 120" or "1234<cat> <... read resumed>""..., 4096) = 120".
var traceLine = regexp.MustCompile(`^(\d+)<([^>]*)>\s+(?:<\.\.\. (\w+) resumed>|(\w+)\().*\)\s+= (\d+)`)

type traceUsage struct {
	own, others int64 // bytes moved by the named command's processes, and by all others
	calls       int   // calls by the named command that moved bytes
	largest     int64 // the largest single call of the named command
	top         string
}

// usage sums the bytes the traced calls returned, for processes named comm and for the rest.
func usage(file, comm string) (traceUsage, error) {
	var u traceUsage
	f, err := os.Open(file)
	if err != nil {
		return u, fmt.Errorf("reading the strace output: %w", err)
	}
	defer f.Close()
	var big []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := traceLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, _ := strconv.ParseInt(m[5], 10, 64)
		if m[2] != comm {
			u.others += n
			continue
		}
		if n == 0 {
			continue
		}
		u.own += n
		u.calls++
		if n > u.largest {
			u.largest = n
		}
		if n >= 4096 && len(big) < 20 {
			big = append(big, sc.Text())
		}
	}
	u.top = strings.Join(big, "\n")
	return u, sc.Err()
}

func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
