package harness

// The prerequisites of network-namespace hosts: ip netns (unshare(CLONE_NEWNET)), veth, a TUN
// device (ioctl(TUNSETIFF)) and nft, all Linux's.

import (
	"fmt"
	"os/exec"
	"strings"
)

// probe creates a throwaway namespace with a veth pair and a TUN device and loads a conntrack
// rule into it, once per process: binaries being present says nothing about a container
// without CAP_NET_ADMIN or a kernel without nf_tables or TUN.
func probe() {
	name := "sp-probe-" + randomHex(4)
	if err := addNetns(name); err != nil {
		probeNetnsErr = fmt.Errorf("cannot create a network namespace: %v", err)
		probeNftErr = probeNetnsErr
		probeTUNErr = probeNetnsErr
		return
	}
	defer deleteNetns(name)
	if f, err := openTUN(name, "tun0", true); err != nil {
		probeTUNErr = fmt.Errorf("cannot create a TUN device with offloads in a namespace: %v", err)
	} else {
		f.Close()
	}
	if out, err := exec.Command("ip", "-n", name, "link", "add", "p0", "type", "veth", "peer", "name", "p1").CombinedOutput(); err != nil {
		probeNetnsErr = fmt.Errorf("cannot create a veth pair in a namespace: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if _, err := exec.LookPath("nft"); err != nil {
		probeNftErr = err
		return
	}
	script := "table inet sp_probe {\n chain input {\n  type filter hook input priority filter; policy accept;\n  ct state established,related accept\n  tcp dport 9 drop\n }\n}\n"
	cmd := exec.Command("ip", "netns", "exec", name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		probeNftErr = fmt.Errorf("nft cannot load a conntrack rule in a namespace: %v: %s", err, strings.TrimSpace(string(out)))
	}
}
