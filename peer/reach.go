package peer

import (
	"slices"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Reachability is whether the node can be reached from the internet, as
// the node tells it from AutoNAT v2's verdicts on its addresses.
type Reachability string

const (
	// ReachPublic: some address of the node is confirmed reachable.
	ReachPublic Reachability = "public"
	// ReachPrivate: no address is reachable from the internet: every
	// public address was found unreachable, or the node has none (only
	// loopback, LAN or relayed addresses).
	ReachPrivate Reachability = "private"
	// ReachUnknown: no address is confirmed reachable and some public
	// address is not decided yet.
	ReachUnknown Reachability = "unknown"
)

// AddrState is the reachability of one address of the node.
type AddrState string

const (
	// AddrReachable: AutoNAT v2 confirmed that peers on the internet
	// reach this address.
	AddrReachable AddrState = "reachable"
	// AddrUnreachable: AutoNAT v2 found that they do not.
	AddrUnreachable AddrState = "unreachable"
	// AddrUnknown: a public address AutoNAT v2 has not decided yet (no
	// server asked, or too few answers).
	AddrUnknown AddrState = "unknown"
	// AddrLocal: not a public address (loopback, private ranges,
	// link-local, CGNAT): AutoNAT does not test it; it is reachable from
	// its own network only.
	AddrLocal AddrState = "local"
	// AddrRelay: an address through a circuit relay.
	AddrRelay AddrState = "relay"
)

// AddrReach is one address of the node and its reachability.
type AddrReach struct {
	Addr  ma.Multiaddr
	State AddrState
}

// Reach is the node's reachability: overall, and address by address.
type Reach struct {
	Overall Reachability
	// Addrs are the node's addresses (listen, observed, mapped, relayed)
	// and those AutoNAT v2 found unreachable, which the host no longer
	// advertises; sorted by their string form, each once.
	Addrs []AddrReach
}

// reachOf tells the reachability of the node whose host advertises addrs,
// given AutoNAT v2's last verdicts v2 (event.EvtHostReachableAddrsChanged,
// whose lists hold public addresses only). Each address takes the state of
// the verdict list it is in; an address in none is relayed (a circuit
// address), local (not public) or unknown (public, not decided). Overall,
// the node is public if some address is reachable, unknown if none is
// and some is unknown, private otherwise. It is pure and keeps none of its
// arguments.
func reachOf(addrs []ma.Multiaddr, v2 event.EvtHostReachableAddrsChanged) Reach {
	states := make(map[string]AddrReach)
	put := func(list []ma.Multiaddr, st AddrState) {
		for _, a := range list {
			if a == nil {
				continue
			}
			if _, ok := states[a.String()]; !ok {
				states[a.String()] = AddrReach{Addr: a, State: st}
			}
		}
	}
	put(v2.Reachable, AddrReachable)
	put(v2.Unreachable, AddrUnreachable)
	put(v2.Unknown, AddrUnknown)
	for _, a := range addrs {
		if a == nil {
			continue
		}
		st := AddrUnknown
		switch {
		case isRelayed(a):
			st = AddrRelay
		case !manet.IsPublicAddr(a):
			st = AddrLocal
		}
		put([]ma.Multiaddr{a}, st)
	}
	r := Reach{Overall: ReachPrivate, Addrs: make([]AddrReach, 0, len(states))}
	for _, ar := range states {
		r.Addrs = append(r.Addrs, ar)
		switch {
		case ar.State == AddrReachable:
			r.Overall = ReachPublic
		case ar.State == AddrUnknown && r.Overall != ReachPublic:
			r.Overall = ReachUnknown
		}
	}
	slices.SortFunc(r.Addrs, func(a, b AddrReach) int {
		switch as, bs := a.Addr.String(), b.Addr.String(); {
		case as < bs:
			return -1
		case as > bs:
			return 1
		}
		return 0
	})
	return r
}

// isRelayed reports whether a is an address through a circuit relay.
func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// dhtReachability is what the DHT is told (dht.DHT.SetReachability): in
// dht.ModeAuto its WAN table is a server exactly while this is public,
// that is while some address is confirmed reachable (or, reachWatch's
// hysteresis, was and is only undecided again since).
func dhtReachability(r Reachability) network.Reachability {
	switch r {
	case ReachPublic:
		return network.ReachabilityPublic
	case ReachPrivate:
		return network.ReachabilityPrivate
	}
	return network.ReachabilityUnknown
}
