//go:build linux

// Package bench measures socketpipe against raw TCP and an ssh pipe on a throwaway OpenSSH sshd
// on loopback, for `make demo` and `make bench` (cmd/spbench).
//
// An [Env] is the sshd, the freshly built socketpipe, and a data file whose length and CRC-32C
// are known; every transfer ends in [Sink], whose count and checksum must match, so a fast wrong
// answer cannot score:
//
//	env, err := bench.Setup(ctx, bench.Options{})
//	defer env.Close()
//	data, err := env.Data(1 << 30)
//	r, err := env.Run(ctx, bench.Socketpipe(), data)
package bench

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// castagnoli is CRC-32C, which the CPU computes at many GB/s: the check costs next to nothing
// beside the transfer it checks.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sum is what a transfer must deliver: a length and a CRC-32C.
type Sum struct {
	N   int64
	CRC uint32
}

func (s Sum) String() string { return fmt.Sprintf("%d bytes, crc32c %08x", s.N, s.CRC) }

// ParseSum reads the line Sink prints.
func ParseSum(line string) (Sum, error) {
	var s Sum
	if _, err := fmt.Sscanf(strings.TrimSpace(line), "%d %x", &s.N, &s.CRC); err != nil {
		return Sum{}, fmt.Errorf("bench: sink printed %q, not a count and checksum", line)
	}
	return s, nil
}

// Sink reads r to its end and writes "count crc32c" to w: the reader at the far end of every
// transfer (`spbench sink`).
func Sink(r io.Reader, w io.Writer) error {
	buf := make([]byte, 1<<20)
	var s Sum
	for {
		n, err := r.Read(buf)
		s.N += int64(n)
		s.CRC = crc32.Update(s.CRC, castagnoli, buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%d %08x\n", s.N, s.CRC)
	return err
}

// Options configures [Setup].
type Options struct {
	Log    io.Writer // progress and the harness's messages; nil discards
	Helper string    // the spbench binary to put on the sessions' PATH; "" means this program
}

// Env is a running sshd on 127.0.0.1 whose sessions have a clean HOME and find socketpipe and
// spbench on PATH, and the login command that reaches it.
type Env struct {
	T          *T
	Bin        string // directory holding socketpipe and spbench
	Socketpipe string // the socketpipe binary
	SSHD       *harness.SSHD
	Login      []string // ssh -F <config> <alias>
	// LoginFlags go before every socketpipe's other flags: {"-x"} when the native login cannot
	// (yet) log in with this configuration and the ssh binary is executed instead.
	LoginFlags []string
	Dir        string // scratch directory (data files)
	// Alt is another socketpipe binary the reports run beside this one (spbench -alt), or "".
	Alt string
	// Netns, if not "", is the network namespace every local command runs in (the client's
	// host of the WAN table, wan.go); "" for this program's own.
	Netns string
}

// Setup builds socketpipe, starts sshd and returns the Env. Close it, also on failure paths:
// it stops sshd and every session, and removes the temporary directory.
func Setup(ctx context.Context, opts Options) (*Env, error) {
	t, err := NewT()
	if err != nil {
		return nil, err
	}
	t.Out = opts.Log
	e := &Env{T: t}
	err = t.Do(func() {
		t.Logf("building socketpipe")
		e.Bin = harness.BuildSocketpipe(t)
		e.Socketpipe = filepath.Join(e.Bin, "socketpipe")
		helper := opts.Helper
		if helper == "" {
			helper, err = os.Executable()
			if err != nil {
				t.Fatalf("bench: %v", err)
			}
		}
		if err := copyFile(filepath.Join(e.Bin, "spbench"), helper); err != nil {
			t.Fatalf("bench: %v", err)
		}
		t.Logf("starting sshd on 127.0.0.1")
		e.SSHD = harness.StartSSHD(t, harness.SSHDOptions{PathDirs: []string{e.Bin}})
		e.Login = e.SSHD.SSHArgs()
		e.Dir = t.TempDir()
	})
	// BuildSocketpipe keeps its binaries for the whole process (harness.Main removes them in
	// tests); here Close removes them.
	if e.Bin != "" {
		bin := filepath.Dir(e.Bin)
		t.Cleanup(func() { os.RemoveAll(bin) })
	}
	if err != nil {
		t.Close()
		return nil, err
	}
	return e, ctx.Err()
}

// ProbeNative makes one tiny transfer with the native login. If it fails, later transfers
// execute the ssh binary (-x) and the error says why native was not used.
func (e *Env) ProbeNative(ctx context.Context, tiny Data) error {
	if _, err := e.RunSocketpipe(ctx, tiny); err != nil {
		e.LoginFlags = []string{"-x"}
		if _, xerr := e.RunSocketpipe(ctx, tiny); xerr != nil {
			return fmt.Errorf("bench: socketpipe fails with the native login (%v) and with -x (%v)", err, xerr)
		}
		return err
	}
	return nil
}

// Close stops sshd and its sessions and removes every file the Env made.
func (e *Env) Close() { e.T.Close() }

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Data is a file of pseudo-random bytes and its Sum.
type Data struct {
	Path string
	Sum  Sum
}

// Data writes (once per size) a file of size pseudo-random bytes and returns it. The bytes do
// not compress, so no ssh or TCP layer can shortcut them.
func (e *Env) Data(size int64) (Data, error) {
	path := filepath.Join(e.Dir, fmt.Sprintf("data-%d", size))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, os.ErrExist) {
		return e.sumOf(path)
	}
	if err != nil {
		return Data{}, fmt.Errorf("bench: %w", err)
	}
	rng := rand.NewChaCha8([32]byte{'s', 'o', 'c', 'k', 'e', 't', 'p', 'i', 'p', 'e'})
	buf := make([]byte, 4<<20)
	d := Data{Path: path}
	for d.Sum.N < size {
		b := buf[:min(int64(len(buf)), size-d.Sum.N)]
		rng.Read(b)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return Data{}, fmt.Errorf("bench: writing %s: %w", path, err)
		}
		d.Sum.N += int64(len(b))
		d.Sum.CRC = crc32.Update(d.Sum.CRC, castagnoli, b)
	}
	if err := f.Close(); err != nil {
		return Data{}, fmt.Errorf("bench: %w", err)
	}
	return d, nil
}

func (e *Env) sumOf(path string) (Data, error) {
	f, err := os.Open(path)
	if err != nil {
		return Data{}, fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	var b strings.Builder
	if err := Sink(f, &b); err != nil {
		return Data{}, fmt.Errorf("bench: %w", err)
	}
	s, err := ParseSum(b.String())
	return Data{Path: path, Sum: s}, err
}

// command is exec.CommandContext with the sessions' PATH first, so "spbench" resolves locally
// as it does remotely.
func (e *Env) command(ctx context.Context, argv ...string) *exec.Cmd {
	name := argv[0]
	if p := filepath.Join(e.Bin, name); !strings.Contains(name, "/") && fileExists(p) {
		name = p // exec.Command looks names up in our PATH, not in cmd.Env's
	}
	args := argv[1:]
	if e.Netns != "" { // the client's host of a WAN: ip netns exec executes the command itself
		name, args = "ip", append([]string{"netns", "exec", e.Netns, name}, args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	// Interrupted: let socketpipe end its remote half and commands as a user's Ctrl-C would.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = append(os.Environ(), "PATH="+e.Bin+":"+os.Getenv("PATH"))
	return cmd
}

// OpenSSHVersion is what `ssh -V` says, e.g. "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024".
func OpenSSHVersion() (string, error) {
	out, err := exec.Command("ssh", "-V").CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
