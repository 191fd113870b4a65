package netnstest

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Move gives h the address to instead of its own, as if its machine had
// moved to another network: a node running on it loses its connections,
// and one started on it afterwards listens on to. to must be in h's
// segment's subnet, and be neither its router's nor another host's.
func (l *LAN) Move(h *Host, to netip.Addr) error {
	seg := h.Segment
	if !seg.Prefix.Contains(to) || to == seg.Gateway {
		return fmt.Errorf("netnstest: move %s to %s: not a host address of %s (%v)", h.Name, to, seg.Name, seg.Prefix)
	}
	for _, o := range l.Hosts {
		if o.IP == to {
			return fmt.Errorf("netnstest: move %s to %s: host %s has it", h.Name, to, o.Name)
		}
	}
	// The old address goes first: deleting a primary address deletes the
	// secondaries of its subnet with it (unless promote_secondaries is
	// set), so the new one, added before, would go too. The default route
	// through the segment's router goes with the old address.
	if err := ip("-n", h.NS, "addr", "del", seg.cidr(h.IP), "dev", "eth0"); err != nil {
		return fmt.Errorf("netnstest: move %s: %w", h.Name, err)
	}
	if err := ip("-n", h.NS, "addr", "add", seg.cidr(to), "dev", "eth0"); err != nil {
		return fmt.Errorf("netnstest: move %s: %w", h.Name, err)
	}
	if seg.Gateway.IsValid() {
		if err := ip("-n", h.NS, "route", "replace", "default", "via", seg.Gateway.String()); err != nil {
			return fmt.Errorf("netnstest: move %s: %w", h.Name, err)
		}
	}
	h.IP = to
	return nil
}

// LogHas reports whether the node's log, all of it (every run on its
// host), has a line containing every one of parts.
func (n *Node) LogHas(parts ...string) bool { return len(n.LogLines(1, parts...)) > 0 }

// LogLines returns the first max lines of the node's log, all of it
// (every run on its host), that contain every one of parts.
func (n *Node) LogLines(max int, parts ...string) []string {
	data, err := os.ReadFile(n.log)
	if err != nil {
		return nil
	}
	var out []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if len(out) >= max {
			break
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}
