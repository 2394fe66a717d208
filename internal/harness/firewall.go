//go:build linux

package harness

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The harness keeps its rules in two tables of its own, so a firewall and a cut link can be
// set and lifted independently.
const (
	firewallTable = "sp_firewall"
	cutTable      = "sp_cut"
)

// Nft runs an nft script (nft -f -) inside the host.
func (h *Host) Nft(t testing.TB, script string) {
	t.Helper()
	Require(t, NeedNft)
	// Not t.Context(): it is already cancelled when a Cleanup lifts a firewall.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := h.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("harness: nft in %s: %v: %s\nscript:\n%s", h.Name, err, strings.TrimSpace(string(out)), script)
	}
}

// replaceTable is an nft script replacing table inet name with body in one transaction: the
// "add; delete" pair makes the delete succeed whether or not the table existed.
func replaceTable(name, body string) string {
	s := fmt.Sprintf("table inet %s\ndelete table inet %s\n", name, name)
	if body != "" {
		s += fmt.Sprintf("table inet %s {\n%s\n}\n", name, body)
	}
	return s
}

// Firewall replaces the host's firewall with rules: the body of an nft table of family inet
// (chain definitions), e.g.
//
//	chain input { type filter hook input priority filter; policy drop; iifname "lo" accept }
func (h *Host) Firewall(t testing.TB, rules string) {
	t.Helper()
	h.Nft(t, replaceTable(firewallTable, rules))
}

// DropInboundExcept makes the host drop every new inbound TCP connection except to the given
// ports; packets of established connections (including replies to the host's own outbound
// connections) and loopback traffic pass, as does everything that is not TCP (so neighbour
// discovery keeps working). Dropped, not rejected: a peer's connect times out, as behind a
// real firewall.
func (h *Host) DropInboundExcept(t testing.TB, ports ...int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n")
	b.WriteString("\t\tct state established,related accept\n")
	b.WriteString("\t\tiifname \"lo\" accept\n")
	if len(ports) > 0 {
		ps := make([]string, len(ports))
		for i, p := range ports {
			ps[i] = fmt.Sprint(p)
		}
		fmt.Fprintf(&b, "\t\ttcp dport { %s } accept\n", strings.Join(ps, ", "))
	}
	b.WriteString("\t\tmeta l4proto tcp drop\n\t}")
	h.Firewall(t, b.String())
}

// ClearFirewall removes what Firewall or DropInboundExcept set.
func (h *Host) ClearFirewall(t testing.TB) {
	t.Helper()
	h.Nft(t, replaceTable(firewallTable, ""))
}

// CutLink silently drops every packet the host sends or receives on its network interface, as
// if a cable further along had been cut: the interface stays up, nothing is refused or reset,
// and TCP notices only through its own timeouts. Loopback inside the host still works.
func (h *Host) CutLink(t testing.TB) {
	t.Helper()
	h.Nft(t, replaceTable(cutTable, fmt.Sprintf(
		"\tchain input { type filter hook input priority -300; policy accept; iifname %q drop; }\n"+
			"\tchain output { type filter hook output priority -300; policy accept; oifname %q drop; }",
		h.Link, h.Link)))
}

// RestoreLink undoes CutLink. Connections that survived the cut carry on.
func (h *Host) RestoreLink(t testing.TB) {
	t.Helper()
	h.Nft(t, replaceTable(cutTable, ""))
}
