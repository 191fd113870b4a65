package peer

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/dht"
)

func mas(s ...string) []ma.Multiaddr {
	out := make([]ma.Multiaddr, len(s))
	for i, a := range s {
		out[i] = ma.StringCast(a)
	}
	return out
}

// show is a Reach as "overall: addr=state ...".
func show(r Reach) string {
	s := string(r.Overall) + ":"
	for _, a := range r.Addrs {
		s += fmt.Sprintf(" %s=%s", a.Addr, a.State)
	}
	return s
}

// TestReachOf is the rule: addresses and AutoNAT v2's verdicts → each
// address's state → the node's reachability → what the DHT is told.
func TestReachOf(t *testing.T) {
	const (
		lo    = "/ip4/127.0.0.1/tcp/4001"
		lan   = "/ip4/192.168.1.5/udp/4001/quic-v1"
		pubT  = "/ip4/1.2.3.4/tcp/4001"
		pubQ  = "/ip4/1.2.3.4/udp/4001/quic-v1"
		pub6  = "/ip6/2001:4860::1/tcp/4001"
		relay = "/ip4/5.6.7.8/tcp/4001/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo/p2p-circuit"
	)
	tests := []struct {
		name  string
		addrs []string
		v2    event.EvtHostReachableAddrsChanged
		want  string
		dht   network.Reachability
	}{
		{"nothing", nil, event.EvtHostReachableAddrsChanged{}, "private:", network.ReachabilityPrivate},
		{"loopback and LAN only: private, not tested", []string{lo, lan}, event.EvtHostReachableAddrsChanged{},
			"private: " + lo + "=local " + lan + "=local", network.ReachabilityPrivate},
		{"a public address not judged yet", []string{lo, pubT}, event.EvtHostReachableAddrsChanged{},
			"unknown: " + pubT + "=unknown " + lo + "=local", network.ReachabilityUnknown},
		{"judged unknown", []string{pubT}, event.EvtHostReachableAddrsChanged{Unknown: mas(pubT)},
			"unknown: " + pubT + "=unknown", network.ReachabilityUnknown},
		{"one reachable is enough", []string{pubQ, lo}, event.EvtHostReachableAddrsChanged{Reachable: mas(pubQ), Unreachable: mas(pubT), Unknown: mas(pub6)},
			"public: " + pubT + "=unreachable " + pubQ + "=reachable " + lo + "=local " + pub6 + "=unknown", network.ReachabilityPublic},
		{"all unreachable, the host no longer lists them", []string{lo}, event.EvtHostReachableAddrsChanged{Unreachable: mas(pubT, pubQ)},
			"private: " + pubT + "=unreachable " + pubQ + "=unreachable " + lo + "=local", network.ReachabilityPrivate},
		{"unreachable and unknown", nil, event.EvtHostReachableAddrsChanged{Unreachable: mas(pubT), Unknown: mas(pubQ)},
			"unknown: " + pubT + "=unreachable " + pubQ + "=unknown", network.ReachabilityUnknown},
		{"relayed is not reachable", []string{lo, relay}, event.EvtHostReachableAddrsChanged{Unreachable: mas(pubT)},
			"private: " + pubT + "=unreachable " + lo + "=local " + relay + "=relay", network.ReachabilityPrivate},
		{"a verdict wins over the host's list, each address once", []string{pubT, pubT}, event.EvtHostReachableAddrsChanged{Reachable: mas(pubT)},
			"public: " + pubT + "=reachable", network.ReachabilityPublic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := reachOf(mas(tt.addrs...), tt.v2)
			if got := show(r); got != tt.want {
				t.Errorf("reachOf:\n got %s\nwant %s", got, tt.want)
			}
			if got := dhtReachability(r.Overall); got != tt.dht {
				t.Errorf("dhtReachability(%s) = %v, want %v", r.Overall, got, tt.dht)
			}
		})
	}
}

// TestNodeReach: a node on loopback (RealNetwork: AutoNAT v2 on, its
// dial-request service registered) in dht.ModeAuto reports AutoNAT v2's
// verdicts as its address manager emits them on the host's bus, and its
// DHT follows: a server once some address is reachable, a client again
// when none is. Real AutoNAT v2 never judges a loopback address (only
// public ones are tracked, and servers refuse private ones), so the
// verdicts are emitted here as the address manager would.
func TestNodeReach(t *testing.T) {
	opts := loopbackOptions(t, 11)
	opts.DHT.Mode = dht.ModeAuto
	n := startNode(t, opts)
	if !slices.Contains(n.Host().Mux().Protocols(), autonatv2.DialProtocol) {
		t.Fatalf("the host does not serve %s: AutoNAT v2 is off", autonatv2.DialProtocol)
	}
	status := func() (Status, string) {
		t.Helper()
		st, err := n.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return st, fmt.Sprint(st.DHTModes)
	}
	st, modes := status()
	if st.Reach.Overall != ReachPrivate || modes != "[main:client]" || st.DHTMode != "auto" || len(st.Reach.Addrs) == 0 {
		t.Fatalf("at start: %s, DHT %s %s; want private with only local addresses, DHT auto [main:client]", show(st.Reach), st.DHTMode, modes)
	}
	for _, a := range st.Reach.Addrs {
		if a.State != AddrLocal {
			t.Fatalf("at start: %s is %s, want local", a.Addr, a.State)
		}
	}

	em, err := n.Host().EventBus().Emitter(new(event.EvtHostReachableAddrsChanged), eventbus.Stateful)
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	pubT, pubQ := "/ip4/1.2.3.4/tcp/4001", "/ip4/1.2.3.4/udp/4001/quic-v1"
	state := func(r Reach, a string) AddrState {
		for _, ar := range r.Addrs {
			if ar.Addr.String() == a {
				return ar.State
			}
		}
		return ""
	}
	if err := em.Emit(event.EvtHostReachableAddrsChanged{Reachable: mas(pubQ), Unreachable: mas(pubT)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "public, and a DHT server", func() bool {
		st, modes := status()
		return st.Reach.Overall == ReachPublic && state(st.Reach, pubQ) == AddrReachable &&
			state(st.Reach, pubT) == AddrUnreachable && modes == "[main:server]"
	})
	if err := em.Emit(event.EvtHostReachableAddrsChanged{Unreachable: mas(pubT, pubQ)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "private, and a DHT client", func() bool {
		st, modes := status()
		return st.Reach.Overall == ReachPrivate && state(st.Reach, pubQ) == AddrUnreachable && modes == "[main:client]"
	})
	if got := n.Reach(); got.Overall != ReachPrivate {
		t.Fatalf("Reach() = %s, want private", show(got))
	}
}

// TestNATOptions: AutoNAT v1's service and AutoNAT v2 are on; port
// mapping is off unless the config turns it on, and off in the default
// config and in the tests' loopback config.
func TestNATOptions(t *testing.T) {
	on := datadir.DefaultConfig().Network
	on.PortMapping = true
	tests := []struct {
		name    string
		cfg     datadir.NetworkConfig
		mapping bool
	}{
		{"default config", datadir.DefaultConfig().Network, false},
		{"zero config", datadir.NetworkConfig{}, false},
		{"port_mapping = true", on, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c libp2p.Config
			if err := c.Apply(natOptions(tt.cfg)...); err != nil {
				t.Fatal(err)
			}
			if !c.EnableAutoNATv2 || !c.AutoNATConfig.EnableService {
				t.Errorf("AutoNAT v2 %v, v1 service %v; want both on", c.EnableAutoNATv2, c.AutoNATConfig.EnableService)
			}
			if got := c.NATManager != nil; got != tt.mapping {
				t.Errorf("port mapping %v, want %v", got, tt.mapping)
			}
		})
	}
}
