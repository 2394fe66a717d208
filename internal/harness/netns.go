//go:build linux

package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// NetworkOptions configures [NewNetwork]. The zero value is the usual choice.
type NetworkOptions struct {
	// SetupTimeout bounds waiting for links and addresses to be usable; 0 means 30 s.
	SetupTimeout time.Duration
}

// Network is a set of hosts, each a network namespace with one interface (eth0) plugged into a
// bridge that lives in a namespace of its own (the "switch"), so nothing touches the test
// machine's own network configuration. Hosts are on 10.213.X.0/24 and fd53:5350:0:X::/64,
// host i having address i+1.
type Network struct {
	Name   string  // prefix of every namespace name: "sp-" and a short random string
	Switch string  // the namespace holding the bridge br0
	Subnet int     // X in 10.213.X.0/24 and fd53:5350:0:X::/64
	Hosts  []*Host // in order; Hosts[i] has address i+1
}

// Host is one network namespace of a [Network].
type Host struct {
	Name  string // the namespace name, for `ip netns exec` and SSHDOptions.Netns
	IPv4  string // e.g. "10.213.7.1"
	IPv6  string // e.g. "fd53:5350:0:7::1", in canonical form
	Link  string // the interface name, "eth0"
	Index int    // position in Network.Hosts
}

// Subnets are unique among the networks of this process, so their addresses never meet even in
// logs. Networks of different processes could share X without harm: each network is a closed
// world of its own namespaces.
var subnets struct {
	mu   sync.Mutex
	used [256]bool
	next int
}

func allocSubnet() (int, error) {
	subnets.mu.Lock()
	defer subnets.mu.Unlock()
	for i := 0; i < 256; i++ {
		x := (subnets.next + i) % 256
		if !subnets.used[x] {
			subnets.used[x] = true
			subnets.next = x + 1
			return x, nil
		}
	}
	return 0, fmt.Errorf("harness: all 256 subnets of 10.213.0.0/16 in use")
}

func freeSubnet(x int) {
	subnets.mu.Lock()
	subnets.used[x] = false
	subnets.mu.Unlock()
}

// NewNetwork creates n hosts joined by a bridge and removes them (killing whatever still runs in
// them) when the test ends, even if it fails. It returns once every link is up, every bridge
// port forwards and every address is usable.
func NewNetwork(t testing.TB, n int, opts NetworkOptions) *Network {
	t.Helper()
	Require(t, NeedRoot, NeedIP, NeedNetns)
	if n < 1 || n > 250 {
		t.Fatalf("harness: NewNetwork with %d hosts", n)
	}
	x, err := allocSubnet()
	if err != nil {
		t.Fatal(err)
	}
	nw := &Network{Name: "sp-" + randomHex(3), Subnet: x}
	nw.Switch = nw.Name + "-sw"
	names := []string{nw.Switch}
	for i := 0; i < n; i++ {
		names = append(names, fmt.Sprintf("%s-h%d", nw.Name, i))
	}
	makeNamespaces(t, nw.Name, names, x)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("harness: %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}

	run("ip", "-n", nw.Switch, "link", "add", "br0", "type", "bridge", "stp_state", "0")
	run("ip", "-n", nw.Switch, "link", "set", "br0", "up")
	for i := 0; i < n; i++ {
		h := &Host{
			Name:  names[i+1],
			IPv4:  fmt.Sprintf("10.213.%d.%d", x, i+1),
			IPv6:  netip.MustParseAddr(fmt.Sprintf("fd53:5350:0:%x::%x", x, i+1)).String(),
			Link:  "eth0",
			Index: i,
		}
		port := fmt.Sprintf("h%d", i)
		// Both ends are created inside namespaces: no interface ever appears in the root one.
		run("ip", "-n", nw.Switch, "link", "add", port, "type", "veth", "peer", "name", h.Link, "netns", h.Name)
		run("ip", "-n", nw.Switch, "link", "set", port, "master", "br0", "up")
		run("ip", "-n", h.Name, "addr", "add", h.IPv4+"/24", "dev", h.Link)
		run("ip", "-n", h.Name, "addr", "add", h.IPv6+"/64", "dev", h.Link, "nodad")
		run("ip", "-n", h.Name, "link", "set", h.Link, "up")
		nw.Hosts = append(nw.Hosts, h)
	}

	timeout := opts.SetupTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	if err := nw.waitUsable(timeout); err != nil {
		t.Fatalf("harness: network %s: %v", nw.Name, err)
	}
	return nw
}

// makeNamespaces creates the named network namespaces of the network called name, on subnet x
// (from allocSubnet), and removes them, killing whatever still runs in them, and frees x when
// the test ends, even if it fails. A state file names this process as their owner, so that
// the next test binary removes them if this one is killed before its cleanups run.
func makeNamespaces(t testing.TB, name string, names []string, x int) {
	t.Helper()
	sweepOnce.Do(sweepStale)
	if err := recordOwner(name, names); err != nil {
		freeSubnet(x)
		t.Fatalf("harness: %v", err)
	}
	var created []string
	t.Cleanup(func() {
		failed := false
		for i := len(created) - 1; i >= 0; i-- {
			if err := deleteNetns(created[i]); err != nil {
				t.Errorf("harness: %v", err)
				failed = true
			}
		}
		if !failed {
			forgetOwner(name)
		}
		freeSubnet(x)
	})
	for _, ns := range names {
		if err := addNetns(ns); err != nil {
			t.Fatalf("harness: %v", err)
		}
		created = append(created, ns)
	}
}

// waitUsable polls until every host's link is up with no tentative address and every bridge
// port forwards: before that, the first packets may be lost and a connect would stall for a
// SYN retransmission.
func (nw *Network) waitUsable(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := nw.usable()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not usable after %v: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (nw *Network) usable() error {
	for _, h := range nw.Hosts {
		out, err := exec.Command("ip", "-n", h.Name, "-j", "addr", "show", "dev", h.Link).Output()
		if err != nil {
			return fmt.Errorf("ip -n %s addr show: %w", h.Name, err)
		}
		var links []struct {
			Operstate string `json:"operstate"`
			AddrInfo  []struct {
				Local     string `json:"local"`
				Tentative bool   `json:"tentative"`
			} `json:"addr_info"`
		}
		if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
			return fmt.Errorf("ip -n %s addr show: unexpected output %q", h.Name, out)
		}
		if links[0].Operstate != "UP" {
			return fmt.Errorf("%s %s is %s", h.Name, h.Link, links[0].Operstate)
		}
		for _, a := range links[0].AddrInfo {
			if a.Tentative && (a.Local == h.IPv4 || a.Local == h.IPv6) {
				return fmt.Errorf("%s %s address %s is tentative", h.Name, h.Link, a.Local)
			}
		}
	}
	out, err := exec.Command("bridge", "-n", nw.Switch, "-j", "link", "show").Output()
	if err != nil {
		return fmt.Errorf("bridge -n %s link show: %w", nw.Switch, err)
	}
	var ports []struct {
		Ifname string `json:"ifname"`
		State  string `json:"state"`
	}
	if err := json.Unmarshal(out, &ports); err != nil {
		return fmt.Errorf("bridge -n %s link show: unexpected output %q", nw.Switch, out)
	}
	forwarding := 0
	for _, p := range ports {
		if p.State == "forwarding" {
			forwarding++
		}
	}
	if forwarding != len(nw.Hosts) {
		return fmt.Errorf("%d of %d bridge ports forwarding: %s", forwarding, len(nw.Hosts), out)
	}
	return nil
}

// Command returns an exec.Cmd that runs argv inside the host (`ip netns exec NAME argv...`).
func (h *Host) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Name}, argv...)...)
}

// Exec runs argv inside the host, fails the test if it fails, and returns its standard output.
func (h *Host) Exec(t testing.TB, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := h.Command(ctx, argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("harness: in %s: %q: %v\nstderr: %s", h.Name, argv, err, stderr.String())
	}
	return string(out)
}

// DialContext connects from inside the host to addr, which must be a literal IP address and port.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return dialIn(ctx, h.Name, network, addr)
}

// Listen listens inside the host on addr (a literal IP address and port, or ":port").
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	return listenIn(h.Name, network, addr)
}
