package doctor

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

func listen(f Facts) []Finding {
	if len(f.Listen) == 0 {
		return []Finding{{Check: CheckListen, Level: Problem,
			Say: "The node listens on no address: no peer can connect to it.",
			Fix: fmt.Sprintf("Check network.listen_ips and network.port in %s, then restart the node.", f.config())}}
	}
	addrs := make([]string, 0, len(f.Listen))
	for _, l := range f.Listen {
		addrs = append(addrs, l.Addr)
	}
	return []Finding{ok(CheckListen, "Listening on %s.", strings.Join(addrs, ", "))}
}

func port(f Facts) []Finding {
	if f.WantPort <= 0 || len(f.Listen) == 0 {
		return nil
	}
	got := 0
	for _, l := range f.Listen {
		if l.Port == f.WantPort {
			return []Finding{ok(CheckPort, "Port %d, as configured, is this node's.", f.WantPort)}
		}
		got = l.Port
	}
	return []Finding{{Check: CheckPort, Level: Problem,
		Say: fmt.Sprintf("Port %d is taken by another program, so the node listens on port %d instead: peers and port forwards that expect %d miss it.", f.WantPort, got, f.WantPort),
		Fix: fmt.Sprintf("Stop the program on port %d (on Linux, `ss -tulpn 'sport = :%d'` names it), or set network.port in %s (or --port) to a free port, then restart the node.", f.WantPort, f.WantPort, f.config())}}
}

func reach(f Facts) []Finding {
	var out []Finding
	forward := fmt.Sprintf("Forward port %s (TCP and UDP) on your router to this machine, or set network.port_mapping = true in %s if the router speaks UPnP or NAT-PMP; until then peers outside your network reach it only through a relay.", portOf(f), f.config())
	for _, a := range f.Addrs {
		switch a.State {
		case "reachable":
			out = append(out, ok(CheckReach, "%s is reachable from the internet.", a.Addr))
		case "unreachable":
			out = append(out, Finding{Check: CheckReach, Level: Warn,
				Say: fmt.Sprintf("%s is not reachable from the internet (peers asked to dial it failed).", a.Addr),
				Fix: forward})
		case "unknown":
			out = append(out, ok(CheckReach, "%s has not been tested from the internet yet.", a.Addr))
		}
	}
	switch f.Reachability {
	case "public":
		out = append(out, ok(CheckReach, "The node is reachable from the internet."))
	case "private":
		out = append(out, Finding{Check: CheckReach, Level: Warn,
			Say: "The node is not reachable from the internet: peers outside your network connect to it only through a relay, or not at all.",
			Fix: forward})
	default:
		out = append(out, ok(CheckReach, "Whether the node is reachable from the internet is not known yet: it needs peers on the internet to test it."))
	}
	return out
}

// portOf is the port named in fixes: the one the node listens on.
func portOf(f Facts) string {
	for _, l := range f.Listen {
		if l.Port > 0 {
			return fmt.Sprint(l.Port)
		}
	}
	if f.WantPort > 0 {
		return fmt.Sprint(f.WantPort)
	}
	return "the node's port"
}

func natType(f Facts) []Finding {
	// Observers and external ports by local address and external IP: a
	// device that moved from one NAT to another (same LAN address, another
	// public IP) has two mappings, not one that changes per peer.
	type seen struct {
		local     string
		observers map[string]bool
		ports     map[int]bool
	}
	by := map[string]*seen{}
	for _, o := range f.Observations {
		k := o.Local + " " + externalIP(o.External)
		s := by[k]
		if s == nil {
			s = &seen{local: o.Local, observers: map[string]bool{}, ports: map[int]bool{}}
			by[k] = s
		}
		s.observers[o.Observer] = true
		s.ports[o.Port] = true
	}
	keys := make([]string, 0, len(by))
	for k, s := range by {
		if len(s.observers) >= 2 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) == 0 {
		return []Finding{ok(CheckNAT, "The NAT's type cannot be told yet: fewer than two of your cell's devices or contacts on the internet have seen one of this node's addresses.")}
	}
	var out []Finding
	for _, k := range keys {
		s := by[k]
		l := s.local
		ports := make([]int, 0, len(s.ports))
		for p := range s.ports {
			ports = append(ports, p)
		}
		slices.Sort(ports)
		if len(ports) > 1 {
			out = append(out, Finding{Check: CheckNAT, Level: Warn,
				Say: fmt.Sprintf("The NAT maps %s to a different port for each peer (%d peers saw ports %s): hole punching cannot pass it, so peers behind NAT reach this node only through a relay.", l, len(s.observers), joinInts(ports)),
				Fix: "Forward the node's port on your router (or set network.port_mapping = true), or put a device of your cell on a network whose NAT keeps ports (most home routers do; carrier-grade NAT and some firewalls do not)."})
			continue
		}
		out = append(out, ok(CheckNAT, "The NAT maps %s to port %d for all %d peers that saw it: hole punching can pass it.", l, ports[0], len(s.observers)))
	}
	return out
}

// externalIP is the IP of an observed address, a thin waist multiaddr
// (/ip4/A/udp/P) or host:port; ext itself if it is neither.
func externalIP(ext string) string {
	if strings.HasPrefix(ext, "/") {
		if parts := strings.SplitN(ext, "/", 4); len(parts) >= 3 {
			return parts[1] + "/" + parts[2]
		}
		return ext
	}
	if h, _, err := net.SplitHostPort(ext); err == nil {
		return h
	}
	return ext
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

func relays(f Facts) []Finding {
	via := map[string]bool{}
	for _, a := range f.Addrs {
		if a.State == "relay" && a.Relay != "" {
			via[a.Relay] = true
		}
	}
	carried := map[string]bool{}
	for _, c := range f.Conns {
		if c.Relay != "" {
			carried[c.Relay] = true
		}
	}
	var out []Finding
	if len(via) > 0 {
		out = append(out, ok(CheckRelays, "Peers can reach this node through %s %s.", plural(len(via), "relay", "relays"), joinKeys(via)))
	} else if f.Reachability == "private" {
		out = append(out, Finding{Check: CheckRelays, Level: Warn,
			Say: "The node is not reachable from the internet and holds no relay reservation: peers outside your network cannot connect to it (it can still connect to them).",
			Fix: "Keep one device of your cell reachable from the internet (it relays for the others), or forward the node's port on your router."})
	} else {
		out = append(out, ok(CheckRelays, "The node holds no relay reservation."))
	}
	if len(carried) > 0 {
		out = append(out, ok(CheckRelays, "Connections go through %s %s.", plural(len(carried), "relay", "relays"), joinKeys(carried)))
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func joinKeys(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}

// path is what a peer's connections say of it.
type path struct {
	kind     string
	name     string
	direct   string // a direct connection's remote address
	relay    string // a relayed connection's relay
	limited  bool
	inbound  bool
	relayedN int
	punch    string // the last hole punch: "ok", an error, or ""
}

func peers(f Facts) []Finding {
	byPeer := map[string]*path{}
	for _, c := range f.Conns {
		p := byPeer[c.Peer]
		if p == nil {
			p = &path{}
			byPeer[c.Peer] = p
		}
		if c.Kind != "" {
			p.kind, p.name = c.Kind, c.Name
		}
		if c.Punch != "" {
			p.punch = c.Punch
		}
		if c.Relay == "" {
			if p.direct == "" {
				p.direct, p.inbound = c.Remote, c.Inbound
			}
			continue
		}
		p.relayedN++
		p.relay = c.Relay
		p.limited = p.limited || c.Limited
	}
	if len(byPeer) == 0 {
		return []Finding{ok(CheckPeers, "No peer is connected.")}
	}
	ids := make([]string, 0, len(byPeer))
	for id := range byPeer {
		ids = append(ids, id)
	}
	// Members first, then contacts, then the rest; by ID within each.
	rank := map[string]int{"member": 0, "contact": 1, "": 2}
	slices.SortFunc(ids, func(a, b string) int {
		if d := rank[byPeer[a].kind] - rank[byPeer[b].kind]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	symmetric := false
	for _, x := range natType(f) {
		symmetric = symmetric || x.Level == Warn
	}
	var out []Finding
	var direct, relayed int
	for i, id := range ids {
		p := byPeer[id]
		if i >= MaxPeerFindings || p.kind == "" {
			if p.direct != "" {
				direct++
			} else {
				relayed++
			}
			continue
		}
		out = append(out, peerFinding(id, p, f.Reachability, symmetric))
	}
	if direct+relayed > 0 {
		out = append(out, ok(CheckPeers, "%d other %s connected: %d directly, %d through a relay.", direct+relayed, plural(direct+relayed, "peer", "peers"), direct, relayed))
	}
	return out
}

func peerFinding(id string, p *path, reach string, symmetric bool) Finding {
	who := strings.ToUpper(p.kind[:1]) + p.kind[1:] + " " + named(p.name, id)
	if p.direct != "" {
		how := "it dialled this node"
		if !p.inbound {
			how = "this node dialled it"
		}
		if p.punch == "ok" {
			how = "hole punching made it, through the NATs"
		}
		return ok(CheckPeers, "%s is connected directly at %s (%s).", who, p.direct, how)
	}
	if p.limited {
		return Finding{Check: CheckPeers, Level: Problem,
			Say: fmt.Sprintf("%s is connected only through relay %s, which limits the connection's time and bytes: messages, store reads, chain sync and the cell's gossip run over it until a limit ends it, but files (blobs) and the DHT do not use it, so no file passes between this node and it.", who, p.relay),
			Fix: "Use a relay of your own cell (a device of it reachable from the internet relays without limits), or make this node or the peer reachable."}
	}
	why := "hole punching has not made a direct connection (yet)"
	switch {
	case symmetric:
		why = "this node's NAT maps ports per peer, so hole punching cannot pass it"
	case reach == "public":
		why = "the peer is behind a NAT that has not let a direct connection through"
	}
	if p.punch != "" && p.punch != "ok" {
		why += "; the last hole punch failed: " + p.punch
	}
	return Finding{Check: CheckPeers, Level: Warn,
		Say: fmt.Sprintf("%s is connected through relay %s: %s.", who, p.relay, why),
		Fix: "A direct path is faster: forward the node's port on this router or the peer's."}
}

func clock(f Facts) []Finding {
	if len(f.Clocks) == 0 {
		return []Finding{ok(CheckClock, "No cell member is connected to compare clocks with.")}
	}
	var out []Finding
	var ahead, behind int // peers off, by direction
	for _, c := range f.Clocks {
		if c.Err != "" {
			out = append(out, Finding{Check: CheckClock, Level: Warn,
				Say: fmt.Sprintf("Could not read the clock of %s: %s.", named(c.Name, c.Peer), c.Err),
				Fix: "Run the doctor again; if it keeps failing, update the peer to this version of exopeer."})
			continue
		}
		skew := c.Skew.Abs() - c.RTT/2
		if skew < ClockWarn {
			out = append(out, ok(CheckClock, "The clock of %s agrees with this node's (within %s).", named(c.Name, c.Peer), roundDur(max(c.RTT/2, skew))))
			continue
		}
		if c.Skew < 0 {
			behind++
		} else {
			ahead++
		}
		lv := Warn
		if skew >= ClockProblem {
			lv = Problem
		}
		dir := "ahead of"
		if c.Skew < 0 {
			dir = "behind"
		}
		out = append(out, Finding{Check: CheckClock, Level: lv,
			Say: fmt.Sprintf("The clock of %s is %s %s this node's.", named(c.Name, c.Peer), roundDur(c.Skew.Abs()), dir),
			Fix: "If most peers disagree with this node, its clock is wrong: turn on network time (on Linux: timedatectl set-ntp true); else set the peer's clock right."})
	}
	// Only peers off in the same direction agree against this node: one
	// ahead and one behind say nothing of its clock.
	if off := max(ahead, behind); off >= 2 && off*2 > len(f.Clocks) {
		out = append(out, Finding{Check: CheckClock, Level: Problem,
			Say: fmt.Sprintf("%d of %d peers' clocks disagree with this node's: this node's clock is wrong.", off, len(f.Clocks)),
			Fix: "Turn on network time on this machine (on Linux: timedatectl set-ntp true)."})
	}
	return out
}

// named is a peer as "name (ID)", or its ID alone; a name with anything
// but printable characters is quoted, so that no name a peer chose can
// write to the terminal.
func named(name, id string) string {
	switch {
	case name == "":
		return id
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return strconv.Quote(name) + " (" + id + ")"
	}
	return name + " (" + id + ")"
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func disk(f Facts) []Finding {
	d := f.Disk
	if d.Path == "" {
		return nil
	}
	if d.Err != "" {
		return []Finding{{Check: CheckDisk, Level: Problem,
			Say: fmt.Sprintf("Could not read the free space of %s: %s.", d.Path, d.Err),
			Fix: "Check that the data dir's disk is mounted and readable."}}
	}
	free := fmt.Sprintf("%s free of %s", bytes(d.Free), bytes(d.Total))
	move := fmt.Sprintf("Free space on the disk of %s, or move the data dir (--dir) to a larger disk.", d.Path)
	switch {
	case d.Free < DiskProblem:
		return []Finding{{Check: CheckDisk, Level: Problem,
			Say: fmt.Sprintf("The disk of %s is nearly full (%s): writes to the chain, store and files will fail.", d.Path, free), Fix: move}}
	case d.Free < DiskWarn || float64(d.Free) < DiskWarnShare*float64(d.Total):
		return []Finding{{Check: CheckDisk, Level: Warn,
			Say: fmt.Sprintf("The disk of %s is low on space (%s).", d.Path, free), Fix: move}}
	}
	return []Finding{ok(CheckDisk, "The disk of %s has %s.", d.Path, free)}
}

// bytes writes n in binary units.
func bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

func files(f Facts) []Finding {
	var out []Finding
	for _, x := range f.Files {
		switch {
		case x.Err != "":
			out = append(out, Finding{Check: CheckFiles, Level: Problem,
				Say: fmt.Sprintf("Could not read %s: %s.", x.Path, x.Err),
				Fix: "Check that the data dir is yours and readable by you."})
		case x.Mode&0o077 != 0:
			mode, who := "600", "readable"
			if x.Dir {
				mode, who = "700", "open"
			}
			out = append(out, Finding{Check: CheckFiles, Level: Problem,
				Say: fmt.Sprintf("%s is %s to other users (mode %04o): they can read this node's keys or data.", x.Path, who, x.Mode),
				Fix: fmt.Sprintf("Run: chmod %s %s", mode, x.Path)})
		default:
			out = append(out, ok(CheckFiles, "%s is private (mode %04o).", x.Path, x.Mode))
		}
	}
	return out
}
