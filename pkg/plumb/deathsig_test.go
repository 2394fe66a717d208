package plumb

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRemoteCommandDiesWithSupervisor kills a supervisor (this test binary, re-executed) with
// SIGKILL, which it cannot catch, and checks that the command it started as a remote command
// (its own process group, as Server starts it) goes too: by the kernel's parent-death signal
// where the system has one, by the watch elsewhere (go test -tags portable runs that on Linux).
func TestRemoteCommandDiesWithSupervisor(t *testing.T) {
	if os.Getenv("SP_TEST_SUPERVISOR") == "1" {
		superviseSleep()
		return
	}
	sup := exec.Command(os.Args[0], "-test.run=^TestRemoteCommandDiesWithSupervisor$")
	sup.Env = append(os.Environ(), "SP_TEST_SUPERVISOR=1")
	out, err := sup.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	defer sup.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("supervisor said nothing: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "pid "))
	if err != nil {
		t.Fatalf("supervisor said %q", line)
	}
	defer syscall.Kill(-pid, syscall.SIGKILL)
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the command is not running before the supervisor dies: %v", err)
	}
	sup.Process.Signal(syscall.SIGKILL)
	sup.Wait()
	// Generous: the check is that it ends, not how fast, on a machine that may be busy.
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(-pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still runs 10 s after its supervisor was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// superviseSleep is the supervisor: it starts a remote command that would run for a minute,
// says its pid, and waits to be killed.
func superviseSleep() {
	p := command([]string{"sleep", "60"}, nil, nil, os.Stderr, true)
	if err := p.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	defer watchParent(p.Process.Pid)()
	fmt.Printf("pid %d\n", p.Process.Pid)
	p.Wait()
}
