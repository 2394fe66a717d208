package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/socketpipe/socketpipe/internal/testenv"
)

// Prerequisites understood by [Require].
const (
	NeedRoot   = "root"       // running as uid 0 (sshd, namespaces and nft need it)
	NeedSSHD   = "sshd"       // /usr/sbin/sshd (openssh-server)
	NeedSSH    = "ssh"        // ssh on PATH (openssh-client)
	NeedKeygen = "ssh-keygen" // ssh-keygen on PATH (openssh-client)
	NeedIP     = "ip"         // ip on PATH (iproute2)
	NeedNetns  = "netns"      // network namespaces and veth pairs can actually be created
	NeedNft    = "nft"        // nft on PATH and nf_tables with conntrack usable inside a namespace
	NeedGo     = "go"         // the go command, to build binaries
	NeedTUN    = "tun"        // /dev/net/tun with vnet headers and offloads, inside a namespace (NewWAN)
)

// SSHDPath is the OpenSSH server binary the harness runs. sshd re-executes itself for every
// connection, so it must be an absolute path.
var SSHDPath = "/usr/sbin/sshd"

// Require checks each named prerequisite (the Need* constants) and stops the test if one is
// missing: with t.Fatalf under CI, with t.Skipf elsewhere ([testenv.Need]). Unknown names fail
// the test.
func Require(t testing.TB, what ...string) {
	t.Helper()
	var names, missing []string
	for _, w := range what {
		if err := checkPrereq(w); errors.Is(err, errUnknownPrereq) {
			t.Fatalf("harness: %v", err)
		} else if err != nil {
			names = append(names, w)
			missing = append(missing, err.Error())
		}
	}
	if len(missing) > 0 {
		testenv.Need(t, strings.Join(names, ", "), errors.New(strings.Join(missing, "; ")))
	}
}

var errUnknownPrereq = errors.New("unknown prerequisite")

func checkPrereq(what string) error {
	switch what {
	case NeedRoot:
		if os.Geteuid() != 0 {
			return fmt.Errorf("not running as root (euid %d)", os.Geteuid())
		}
		return nil
	case NeedSSHD:
		if _, err := os.Stat(SSHDPath); err != nil {
			return fmt.Errorf("%s not found (install openssh-server)", SSHDPath)
		}
		return nil
	case NeedSSH, NeedKeygen:
		if _, err := exec.LookPath(what); err != nil {
			return fmt.Errorf("%s not on PATH (install openssh-client)", what)
		}
		return nil
	case NeedIP:
		if _, err := exec.LookPath("ip"); err != nil {
			return errors.New("ip not on PATH (install iproute2)")
		}
		return nil
	case NeedNft:
		if _, err := exec.LookPath("nft"); err != nil {
			return errors.New("nft not on PATH (install nftables)")
		}
		if err := checkPrereq(NeedNetns); err != nil {
			return fmt.Errorf("nft: %w", err)
		}
		probeOnce.Do(probe)
		return probeNftErr
	case NeedNetns:
		if err := checkPrereq(NeedRoot); err != nil {
			return fmt.Errorf("network namespaces: %w", err)
		}
		if err := checkPrereq(NeedIP); err != nil {
			return err
		}
		probeOnce.Do(probe)
		return probeNetnsErr
	case NeedTUN:
		if err := checkPrereq(NeedNetns); err != nil {
			return fmt.Errorf("tun: %w", err)
		}
		probeOnce.Do(probe)
		return probeTUNErr
	case NeedGo:
		if _, err := goCommand(); err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("%w %q (harness bug)", errUnknownPrereq, what)
}

var (
	probeOnce     sync.Once
	probeNetnsErr error
	probeNftErr   error
	probeTUNErr   error
)
