package netnstest

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// Port is the libp2p port of a network's first host; host i (from 0, in
// the order they were added, over all segments) listens on Port+i, so
// that two hosts behind one NAT never ask it for the same source port.
const Port = 4777

// lanPrefix is the subnet of New's LAN.
var lanPrefix = netip.MustParsePrefix("10.213.7.0/24")

// Host is one machine of a network: a namespace with one interface, eth0,
// on its segment's bridge.
type Host struct {
	Name    string     // as given to New or AddHost
	NS      string     // the network namespace's name
	IP      netip.Addr // eth0's address
	Segment *Segment   // where its cable goes
	Port    int        // the libp2p port Start gives its node
}

// Segment is one Ethernet segment of a network: a bridge in a namespace of
// its own, and the hosts (and NAT sides) cabled to it.
type Segment struct {
	Name   string
	NS     string       // the namespace holding the bridge
	Prefix netip.Prefix // its subnet: the n-th cable plugged in gets address n
	// Gateway is the address of the segment's router, the inside address
	// of a home LAN's NAT; the zero Addr on a segment with no router, whose
	// hosts have on-link routes only.
	Gateway netip.Addr
	// NAT is the router between a home LAN and its uplink; nil for a
	// segment that HomeLAN did not make.
	NAT *NAT

	plugged int // cables plugged in so far
}

// NATKind is how a NAT maps a home host's flows to its outside address.
type NATKind int

const (
	// NATCone keeps a flow's source port when it is free (Linux's plain
	// masquerade): every destination sees a home host's socket at the same
	// outside address and port (endpoint-independent mapping), and only the
	// destination a flow went to can answer on it (address-and-port
	// dependent filtering). Hole punching works through it.
	NATCone NATKind = iota + 1
	// NATSymmetric gives each flow a random outside port (masquerade
	// fully-random): each destination sees a home host's socket at its own
	// port, so the port one peer observed is no use to another, and hole
	// punching fails.
	NATSymmetric
)

func (k NATKind) String() string {
	switch k {
	case NATCone:
		return "cone"
	case NATSymmetric:
		return "symmetric"
	}
	return fmt.Sprintf("NATKind(%d)", int(k))
}

// NAT is a router between a home LAN and its uplink: a namespace with
// lan0 on the home LAN (at its Gateway) and wan0 on the uplink, that
// forwards the home's flows out with nftables masquerade and takes in
// nothing a home host did not start.
type NAT struct {
	Kind   NATKind
	NS     string     // the NAT's namespace
	WAN    netip.Addr // its address on the uplink: the source the uplink's hosts see
	Uplink *Segment
}

// Net is a network of segments, hosts and NATs in network namespaces. Its
// namespaces only route between one another: no host has a route out of
// the test's network (a segment's hosts reach their segment, and through
// its gateway whatever the gateway reaches).
type Net struct {
	Hosts    []*Host
	Segments []*Segment

	t    testing.TB
	dir  string   // the data dirs and the nodes' output
	base string   // the start of the names of its namespaces
	made []string // namespaces created, in order
}

// LAN is a network of one segment, as New builds it.
type LAN = Net

// NewNet returns an empty network, or skips t with the reason when this
// process cannot build one. Everything it makes is removed when t ends.
func NewNet(t testing.TB) *Net {
	t.Helper()
	if err := Available(); err != nil {
		unavailable(t, err)
	}
	if err := removeStale(); err != nil {
		t.Logf("netnstest: removing stale namespaces: %v", err)
	}
	n := &Net{t: t, dir: t.TempDir(), base: fmt.Sprintf("%s%d-%d-", prefix, os.Getpid(), netSeq.Add(1))}
	t.Cleanup(n.remove)
	return n
}

// New builds a LAN, one segment on 10.213.7.0/24 with one host per name
// (1 to 8 lowercase letters or digits) at 10.213.7.1, .2, ..., or skips t
// with the reason when it cannot. Everything it makes is removed when t
// ends.
func New(t testing.TB, names ...string) *LAN {
	t.Helper()
	if len(names) == 0 || len(names) > 250 {
		t.Fatalf("netnstest: %d hosts, want 1 to 250", len(names))
	}
	n := NewNet(t)
	seg := n.Segment("lan", lanPrefix)
	for _, name := range names {
		n.AddHost(seg, name)
	}
	return n
}

// checkName fails the test unless name is 1 to 8 lowercase letters or
// digits, and not br.
func (n *Net) checkName(what, name string) {
	n.t.Helper()
	if name == "" || name == "br" || strings.IndexFunc(name, func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	}) >= 0 || len(name) > 8 {
		n.t.Fatalf("netnstest: %s name %q: want 1 to 8 lowercase letters or digits, not br", what, name)
	}
}

// Segment adds a segment named name (1 to 8 lowercase letters or digits)
// on the IPv4 subnet prefix, which no other segment of the network
// overlaps; its hosts get on-link routes only. It skips t, or fails it,
// as New does when the kernel refuses.
func (n *Net) Segment(name string, prefix netip.Prefix) *Segment {
	n.t.Helper()
	n.checkName("segment", name)
	for _, s := range n.Segments {
		if s.Name == name {
			n.t.Fatalf("netnstest: two segments named %q", name)
		}
		if s.Prefix.Overlaps(prefix) {
			n.t.Fatalf("netnstest: segment %s's subnet %v overlaps %s's %v", name, prefix, s.Name, s.Prefix)
		}
	}
	if !prefix.Addr().Is4() || prefix.Bits() < 8 || prefix.Bits() > 30 || prefix.Masked() != prefix {
		n.t.Fatalf("netnstest: segment %s: subnet %v, want an IPv4 subnet from /8 to /30, its host bits zero", name, prefix)
	}
	s := &Segment{Name: name, NS: n.base + "br-" + name, Prefix: prefix}
	if err := n.addNS(s.NS); err != nil {
		unavailable(n.t, fmt.Errorf("%w: cannot create a network namespace (%v); needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN", ErrUnavailable, err))
	}
	err := run(
		[]string{"-n", s.NS, "link", "set", "lo", "up"},
		[]string{"-n", s.NS, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0", "stp_state", "0"},
		[]string{"-n", s.NS, "link", "set", "br0", "up"},
	)
	if err != nil {
		unavailable(n.t, fmt.Errorf("%w: cannot build a bridge in a network namespace: %v", ErrUnavailable, err))
	}
	n.Segments = append(n.Segments, s)
	return s
}

// plug takes the segment's next address for a new cable.
func (s *Segment) plug(t testing.TB) netip.Addr {
	t.Helper()
	size := 1 << (32 - s.Prefix.Bits())
	if s.plugged+2 >= size {
		t.Fatalf("netnstest: segment %s (%v) is full", s.Name, s.Prefix)
	}
	s.plugged++
	a := s.Prefix.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) + uint32(s.plugged)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// cidr is a's CIDR form on the segment, as ip addr add takes it.
func (s *Segment) cidr(a netip.Addr) string {
	return netip.PrefixFrom(a, s.Prefix.Bits()).String()
}

// HomeLAN adds a segment named name on prefix behind a NAT of kind on
// uplink: the NAT takes the segment's first address (its Gateway, the
// default route of the segment's hosts) and the next free one of uplink
// (NAT.WAN). It forwards with ip_forward on and nftables rules, masquerade
// out of wan0 (fully-random for NATSymmetric), and drops any new flow
// that comes in on wan0, to itself or to the home: only the replies of
// flows a home host started come in. The hosts of the home LAN reach the
// uplink's hosts, and whatever the uplink's gateway reaches (a home LAN
// behind a home LAN is a double NAT); nothing reaches them but those
// replies. It skips t (fails it with NETNSTEST_REQUIRE=1) when nft is
// missing or the kernel refuses the rules.
func (n *Net) HomeLAN(name string, prefix netip.Prefix, uplink *Segment, kind NATKind) *Segment {
	n.t.Helper()
	if err := NATAvailable(); err != nil {
		unavailable(n.t, err)
	}
	if kind != NATCone && kind != NATSymmetric {
		n.t.Fatalf("netnstest: home LAN %s: NAT kind %v, want NATCone or NATSymmetric", name, kind)
	}
	if uplink == nil {
		n.t.Fatalf("netnstest: home LAN %s: no uplink", name)
	}
	s := n.Segment(name, prefix)
	nat := &NAT{Kind: kind, NS: n.base + "nat-" + name, Uplink: uplink}
	s.Gateway = s.plug(n.t)
	nat.WAN = uplink.plug(n.t)
	if err := n.addNS(nat.NS); err != nil {
		unavailable(n.t, fmt.Errorf("%w: cannot create a network namespace: %v", ErrUnavailable, err))
	}
	steps := [][]string{
		{"-n", nat.NS, "link", "set", "lo", "up"},
		{"-n", uplink.NS, "link", "add", "vw-" + name, "type", "veth", "peer", "name", "wan0", "netns", nat.NS},
		{"-n", uplink.NS, "link", "set", "vw-" + name, "master", "br0"},
		{"-n", uplink.NS, "link", "set", "vw-" + name, "up"},
		{"-n", nat.NS, "addr", "add", uplink.cidr(nat.WAN), "dev", "wan0"},
		{"-n", nat.NS, "link", "set", "wan0", "up"},
		{"-n", s.NS, "link", "add", "vl-" + name, "type", "veth", "peer", "name", "lan0", "netns", nat.NS},
		{"-n", s.NS, "link", "set", "vl-" + name, "master", "br0"},
		{"-n", s.NS, "link", "set", "vl-" + name, "up"},
		{"-n", nat.NS, "addr", "add", s.cidr(s.Gateway), "dev", "lan0"},
		{"-n", nat.NS, "link", "set", "lan0", "up"},
	}
	if uplink.Gateway.IsValid() {
		steps = append(steps, []string{"-n", nat.NS, "route", "add", "default", "via", uplink.Gateway.String()})
	}
	err := run(steps...)
	if err == nil {
		// ip_forward is per namespace, and 0 in a new one.
		err = Do(nat.NS, func() error { return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644) })
	}
	if err == nil {
		err = nft(nat.NS, natRules(kind))
	}
	if err != nil {
		unavailable(n.t, fmt.Errorf("%w: cannot build the NAT of home LAN %s: %v", ErrUnavailable, name, err))
	}
	s.NAT = nat
	return s
}

// natRules is the NAT's nftables ruleset. Dropping new flows on wan0 at
// input matters beyond keeping the NAT closed: a peer's packet that came
// in before a home host's first one out would otherwise be confirmed as a
// conntrack entry for that outside port, and the host's flow, clashing
// with it, would be given another port.
func natRules(kind NATKind) string {
	random := ""
	if kind == NATSymmetric {
		random = " fully-random"
	}
	return `table ip nat {
	chain masq {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" masquerade` + random + `
	}
}
table inet fw {
	chain inbound {
		type filter hook input priority filter; policy accept;
		iifname "wan0" ct state new drop
	}
	chain through {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan0" oifname "wan0" accept
	}
}
`
}

// AddHost adds a host named name (1 to 8 lowercase letters or digits,
// unique in the network) on segment seg, at the segment's next free
// address, with its loopback up, a route to multicast on eth0 (mDNS) and,
// on a segment with a gateway, its default route through it. It skips t,
// or fails it, as New does when the kernel refuses.
func (n *Net) AddHost(seg *Segment, name string) *Host {
	n.t.Helper()
	n.checkName("host", name)
	for _, h := range n.Hosts {
		if h.Name == name {
			n.t.Fatalf("netnstest: two hosts named %q", name)
		}
	}
	h := &Host{Name: name, NS: n.base + name, IP: seg.plug(n.t), Segment: seg, Port: Port + len(n.Hosts)}
	if err := n.addNS(h.NS); err != nil {
		unavailable(n.t, fmt.Errorf("%w: cannot create a network namespace (%v); needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN", ErrUnavailable, err))
	}
	veth := "veth-" + name
	steps := [][]string{
		{"-n", h.NS, "link", "set", "lo", "up"},
		{"-n", seg.NS, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		{"-n", seg.NS, "link", "set", veth, "master", "br0"},
		{"-n", seg.NS, "link", "set", veth, "up"},
		{"-n", h.NS, "addr", "add", seg.cidr(h.IP), "dev", "eth0"},
		{"-n", h.NS, "link", "set", "eth0", "multicast", "on", "up"},
		// mDNS picks the interface per packet; the route is belt and
		// braces for multicast in a namespace with no default route.
		{"-n", h.NS, "route", "add", "224.0.0.0/4", "dev", "eth0"},
	}
	if seg.Gateway.IsValid() {
		steps = append(steps, []string{"-n", h.NS, "route", "add", "default", "via", seg.Gateway.String()})
	}
	if err := run(steps...); err != nil {
		unavailable(n.t, fmt.Errorf("%w: cannot build the virtual LAN (bridge, veth) in network namespaces: %v", ErrUnavailable, err))
	}
	n.Hosts = append(n.Hosts, h)
	return h
}

// addNS creates the namespace ns, to be removed with the network.
func (n *Net) addNS(ns string) error {
	if err := ip("netns", "add", ns); err != nil {
		return err
	}
	n.made = append(n.made, ns)
	return nil
}

// run runs ip with each of steps in turn, and stops at the first the
// kernel refuses.
func run(steps ...[]string) error {
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

// Host returns the host named name, or fails the test.
func (n *Net) Host(name string) *Host {
	n.t.Helper()
	for _, h := range n.Hosts {
		if h.Name == name {
			return h
		}
	}
	n.t.Fatalf("netnstest: no host %q in the network", name)
	return nil
}

// Cut takes h off its segment, as if its cable were pulled: the bridge's
// end of its veth pair goes down, and its packets go nowhere until Heal.
func (n *Net) Cut(h *Host) error {
	return ip("-n", h.Segment.NS, "link", "set", "veth-"+h.Name, "down")
}

// Heal puts a host that Cut took off back on its segment.
func (n *Net) Heal(h *Host) error {
	return ip("-n", h.Segment.NS, "link", "set", "veth-"+h.Name, "up")
}

// remove kills what still runs in the network's namespaces and deletes
// them, the last made first (hosts and NATs before their bridges; deleting
// a namespace takes the veth pairs with an end in it).
func (n *Net) remove() {
	for i := len(n.made) - 1; i >= 0; i-- {
		if err := deleteNS(n.made[i]); err != nil {
			n.t.Errorf("netnstest: %v", err)
		}
	}
	n.made = nil
}
