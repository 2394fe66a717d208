//go:build !linux

package harness

// Network-namespace hosts, TUN devices and nft exist on Linux only: elsewhere the tests that
// need them report why they cannot run.

import "errors"

func probe() {
	probeNetnsErr = errors.New("network namespaces are Linux's")
	probeNftErr = errors.New("nft is Linux's")
	probeTUNErr = errors.New("TUN devices with offloads are Linux's")
}
