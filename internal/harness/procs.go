package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MarkerEnv is the environment variable tests set to a fresh [NewMarker] value in every process
// of a run, so that [ProcessesWithMarker] can find whatever the run left behind.
//
// Locally, put MarkerEnv=marker in the environment of socketpipe (exec.Cmd.Env); the commands
// it starts inherit it. Remotely, sshd builds a fresh environment for each session and ignores
// the client's, so pass the marker in SSHDOptions.Env: the harness writes it into sshd_config's
// SetEnv, and the login shell, the remote half and the remote command all inherit it.
const MarkerEnv = "SOCKETPIPE_TEST_MARKER"

// NewMarker returns a fresh random marker (128 bits, hex).
func NewMarker() string { return randomHex(16) }

// EnvWithMarker returns this process's environment plus MarkerEnv=marker, for exec.Cmd.Env
// of the local commands of a run.
func EnvWithMarker(marker string) []string {
	return append(os.Environ(), MarkerEnv+"="+marker)
}

// Process is a running process found by [FindProcesses].
type Process struct {
	PID     int
	Cmdline []string
}

func (p Process) String() string {
	return fmt.Sprintf("pid %d %q", p.PID, p.Cmdline)
}

// ProcessesWithMarker returns the pids of the live processes (not zombies, not this test
// process) whose environment or command line contains marker.
func ProcessesWithMarker(marker string) []int {
	var pids []int
	for _, p := range FindProcesses(marker) {
		pids = append(pids, p.PID)
	}
	return pids
}

// FindProcesses is [ProcessesWithMarker] with the command lines, for messages.
func FindProcesses(marker string) []Process {
	if marker == "" {
		return nil
	}
	m := []byte(marker)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var procs []Process
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, _ := os.ReadFile(d + "/environ")
		cmdline, _ := os.ReadFile(d + "/cmdline")
		if !bytes.Contains(env, m) && !bytes.Contains(cmdline, m) {
			continue
		}
		if isZombie(pid) {
			continue
		}
		procs = append(procs, Process{PID: pid, Cmdline: splitCmdline(cmdline)})
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].PID < procs[j].PID })
	return procs
}

func splitCmdline(b []byte) []string {
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

func cmdline(pid int) []string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return splitCmdline(b)
}

// isZombie reports whether pid has exited (or vanished): a zombie holds no resources but its
// parent's reaping, and its environ reads empty anyway.
func isZombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses and may contain anything.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	s := stat[i+2]
	return s == 'Z' || s == 'X'
}

// NoProcesses waits up to within for every process carrying marker to end, and returns those
// still alive then (nil if none).
func NoProcesses(marker string, within time.Duration) []Process {
	deadline := time.Now().Add(within)
	for {
		left := FindProcesses(marker)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond) // polling the condition itself; the deadline bounds it
	}
}

// WaitNoProcesses waits up to within for every process carrying marker to end. If any is still
// alive then, the test fails listing them, and they are killed so they cannot disturb other tests.
func WaitNoProcesses(t testing.TB, marker string, within time.Duration) {
	t.Helper()
	left := NoProcesses(marker, within)
	if len(left) == 0 {
		return
	}
	var lines []string
	var pids []int
	for _, p := range left {
		lines = append(lines, p.String())
		pids = append(pids, p.PID)
	}
	killAndReap(pids)
	t.Errorf("harness: %d process(es) with marker %s still alive after %v (now killed):\n\t%s",
		len(left), marker, within, strings.Join(lines, "\n\t"))
}

// KillMarked kills (SIGKILL) every process carrying marker and waits briefly for them to go.
// It returns how many it killed.
func KillMarked(marker string) int {
	pids := ProcessesWithMarker(marker)
	killAndReap(pids)
	return len(pids)
}

// killAndReap SIGKILLs pids and waits up to 10 s until none of them is alive (zombies of
// other parents count as gone).
func killAndReap(pids []int) {
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for !isZombie(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// parentPID reads the parent of pid from /proc; 0 if pid is gone.
func parentPID(pid int) int {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// descendants returns every live descendant of root (not root itself), by parent links.
func descendants(root int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	children := make(map[int][]int)
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		children[parentPID(pid)] = append(children[parentPID(pid)], pid)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !isZombie(c) {
				out = append(out, c)
			}
			queue = append(queue, c)
		}
	}
	return out
}

// killTree kills root and all its descendants. It first stops them (SIGSTOP) until the tree no
// longer grows, so that none can fork or be reparented away while being killed.
func killTree(root int) {
	syscall.Kill(root, syscall.SIGSTOP)
	stopped := map[int]bool{}
	for round := 0; round < 100; round++ {
		grew := false
		for _, pid := range descendants(root) {
			if !stopped[pid] {
				syscall.Kill(pid, syscall.SIGSTOP)
				stopped[pid] = true
				grew = true
			}
		}
		if !grew {
			break
		}
	}
	pids := []int{root}
	for pid := range stopped {
		pids = append(pids, pid)
	}
	killAndReap(pids)
}
