package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// stateDir records which process owns which namespaces. A test binary killed by `go test
// -timeout` runs no Cleanup, so its namespaces would stay forever; the next NewNetwork removes
// those whose owner is gone. /run is a tmpfs, cleared at boot like /run/netns.
const stateDir = "/run/socketpipe-harness"

var sweepOnce sync.Once

// startTime is the start time of pid in clock ticks since boot (field 22 of /proc/pid/stat),
// which tells a live owner from a new process that got its pid; "" if pid is gone.
func startTime(pid int) string {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// recordOwner writes the state file of network name, owned by this process.
func recordOwner(name string, namespaces []string) error {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return err
	}
	content := fmt.Sprintf("owner %d %s\n%s\n", os.Getpid(), startTime(os.Getpid()), strings.Join(namespaces, "\n"))
	return os.WriteFile(filepath.Join(stateDir, name), []byte(content), 0o644)
}

func forgetOwner(name string) { os.Remove(filepath.Join(stateDir, name)) }

// sweepStale deletes the namespaces of networks whose owning process no longer runs.
func sweepStale() {
	files, _ := filepath.Glob(filepath.Join(stateDir, "sp-*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		var pid int
		var start string
		if _, err := fmt.Sscanf(lines[0], "owner %d %s", &pid, &start); err != nil {
			continue
		}
		if startTime(pid) == start {
			continue // the owner still runs
		}
		for _, ns := range lines[1:] {
			if _, err := os.Stat(filepath.Join(netnsRunDir, ns)); err == nil {
				deleteNetns(ns)
			}
		}
		os.Remove(f)
	}
}
