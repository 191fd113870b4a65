package peer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/cell"
)

// TestRelayCandidates: the peer source offers members running a relay
// (hop), the role relay first, then members with a public address, then
// the static relays; never the node itself, a member that is neither, or
// a peer twice; at most n.
func TestRelayCandidates(t *testing.T) {
	id := func(seed byte) peer.ID {
		pid, err := peer.IDFromPrivateKey(seedKey(t, seed))
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	self, hopRole, hop, pubRole, pub, lan, static := id(1), id(2), id(3), id(4), id(5), id(6), id(7)
	name := map[peer.ID]string{self: "self", hopRole: "hopRole", hop: "hop", pubRole: "pubRole", pub: "pub", lan: "lan", static: "static"}
	c := func(p peer.ID, relay, hop, public bool) relayCandidate {
		return relayCandidate{id: p, relay: relay, hop: hop, public: public, addrInfo: peer.AddrInfo{ID: p}}
	}
	members := []relayCandidate{
		c(pub, false, false, true), c(lan, true, false, false), c(hop, false, true, false),
		c(self, true, true, true), c(pubRole, true, false, true), c(hopRole, true, true, true),
	}
	statics := []peer.AddrInfo{{ID: static}, {ID: hop}, {ID: self}}
	names := func(ais []peer.AddrInfo) string {
		var s []string
		for _, ai := range ais {
			s = append(s, name[ai.ID])
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		n    int
		want string
	}{
		{8, "hopRole hop pubRole pub static"},
		{3, "hopRole hop pubRole"},
		{0, ""},
	} {
		if got := names(relayCandidates(self, members, statics, tc.n)); got != tc.want {
			t.Errorf("n=%d: %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := names(relayCandidates(self, nil, statics, 8)); got != "static hop" {
		t.Errorf("no cell: %q, want the static relays", got)
	}
}

// TestAutoRelayFromRoster: a node whose reachability is private reserves
// a slot on a member of its cell that runs the relay service, found in
// the roster, and advertises the relayed address (h.Addrs). The relay
// advertises a public address as well as its loopback ones, as a relay on
// the internet would (AutoRelay builds circuit addresses from a relay's
// public addresses only).
func TestAutoRelayFromRoster(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	public := ma.StringCast("/ip4/11.213.0.10/udp/4777/quic-v1")
	hr, err := libp2p.New(
		libp2p.Identity(seedKey(t, 1)),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.AddrsFactory(func(addrs []ma.Multiaddr) []ma.Multiaddr { return append(addrs, public) }),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Close()
	ha := loopbackHost(t, 2)
	var roster atomic.Pointer[cell.Roster]
	ms := []cell.Member{{Peer: hr.ID(), Roles: cell.RoleRelay}, {Peer: ha.ID()}}
	slices.SortFunc(ms, func(a, b cell.Member) int { return strings.Compare(string(a.Peer), string(b.Peer)) })
	roster.Store(&cell.Roster{Members: ms})
	acl := relayACL{self: hr.ID(), member: func(id peer.ID) bool { return roster.Load().Has(id) }, contactDevice: func(peer.ID) bool { return false }}
	svc, err := newRelayService(hr, RelayOn, acl, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	// A knows R as a member it is connected to (discovery connects the
	// cell's members).
	if err := ha.Connect(ctx, peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "A learns that R relays", func() bool {
		p, _ := ha.Peerstore().SupportsProtocols(hr.ID(), proto.ProtoIDv2Hop)
		return len(p) > 0
	})
	ar, err := newAutoRelay(ha, roster.Load, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ar.reach(network.ReachabilityPrivate)
	if err := ar.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ar.Close()
	want := fmt.Sprintf("%s/p2p/%s/p2p-circuit", public, hr.ID())
	eventually(t, 20*time.Second, "A advertises its address through R", func() bool {
		return slices.ContainsFunc(ha.Addrs(), func(a ma.Multiaddr) bool { return a.String() == want })
	})
	if st := svc.stats(); st.Reservations == 0 {
		t.Errorf("relay stats %+v, want a reservation", st)
	}
}
