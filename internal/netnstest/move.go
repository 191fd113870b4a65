package netnstest

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Move gives h the address to instead of its own, as if its machine had
// moved to another network: a node running on it loses its connections,
// and one started on it afterwards listens on to. to must be in the LAN's
// subnet (10.213.7.0/24) and no other host's.
func (l *LAN) Move(h *Host, to netip.Addr) error {
	if !strings.HasPrefix(to.String(), subnet) {
		return fmt.Errorf("netnstest: move %s to %s: not in %s0/24", h.Name, to, subnet)
	}
	for _, o := range l.Hosts {
		if o.IP == to {
			return fmt.Errorf("netnstest: move %s to %s: host %s has it", h.Name, to, o.Name)
		}
	}
	// The old address goes first: deleting a primary address deletes the
	// secondaries of its subnet with it (unless promote_secondaries is
	// set), so the new one, added before, would go too.
	if err := ip("-n", h.NS, "addr", "del", h.IP.String()+"/24", "dev", "eth0"); err != nil {
		return fmt.Errorf("netnstest: move %s: %w", h.Name, err)
	}
	if err := ip("-n", h.NS, "addr", "add", to.String()+"/24", "dev", "eth0"); err != nil {
		return fmt.Errorf("netnstest: move %s: %w", h.Name, err)
	}
	h.IP = to
	return nil
}

// LogHas reports whether the node's log, all of it (every run on its
// host), has a line containing every one of parts.
func (n *Node) LogHas(parts ...string) bool {
	data, err := os.ReadFile(n.log)
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
