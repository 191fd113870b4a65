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
	"github.com/exopeer/exopeer/datadir"
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
	acl := relayACL{self: hr.ID(), member: func(id peer.ID) bool { return roster.Load().Has(id) }, contactDevice: noContact}
	svc := startRelay(ctx, t, hr, acl)
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

// TestParseStaticRelays: addresses of one relay merge; a bad entry is an
// error naming it.
func TestParseStaticRelays(t *testing.T) {
	const id = "12D3KooWCdjerAFxxpikqirU1zpF64PQtak8gAtCNYkJxzUm9Cuh"
	got, err := ParseStaticRelays([]string{
		"/ip4/192.0.2.1/tcp/4777/p2p/" + id,
		"/ip4/192.0.2.1/udp/4777/quic-v1/p2p/" + id,
	})
	if err != nil || len(got) != 1 || len(got[0].Addrs) != 2 || got[0].ID.String() != id {
		t.Fatalf("ParseStaticRelays: %v, %v; want one relay with two addresses", got, err)
	}
	for in, want := range map[string]string{
		"/ip4/1.2.3":                  "is not a multiaddr",
		"/ip4/192.0.2.1/tcp/4777":     "does not end in /p2p/<peer ID>",
		"/p2p/" + id + "/p2p-circuit": "relayed address",
	} {
		if _, err := ParseStaticRelays([]string{in}); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseStaticRelays(%q): %v, want an error naming it, %q", in, err, want)
		}
	}
}

// FuzzParseStaticRelays: whatever the config holds, ParseStaticRelays
// returns relays with peer IDs and no relayed address, or an error; it
// agrees with the config's check (datadir), which ran first.
func FuzzParseStaticRelays(f *testing.F) {
	f.Add("/ip4/192.0.2.1/tcp/4777/p2p/12D3KooWCdjerAFxxpikqirU1zpF64PQtak8gAtCNYkJxzUm9Cuh")
	f.Add("/p2p/12D3KooWCdjerAFxxpikqirU1zpF64PQtak8gAtCNYkJxzUm9Cuh/p2p-circuit")
	f.Add("/ip4/1.2.3")
	f.Add("/ip4/192.0.2.1/tcp/4777")
	f.Add("/p2p/12D3KooWCdjerAFxxpikqirU1zpF64PQtak8gAtCNYkJxzUm9Cuh")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		ais, err := ParseStaticRelays([]string{s, s})
		_, cerr := datadir.ParseConfig([]byte(fmt.Sprintf("[network]\nstatic_relays = [%q]", s)))
		// cerr may also be TOML's (Go's quoting is not TOML's for every
		// string): compared only when the config got as far as the check.
		checked := cerr == nil || strings.Contains(cerr.Error(), "network.static_relays:")
		if checked && (err == nil) != (cerr == nil) {
			t.Fatalf("ParseStaticRelays %v, config check %v: they disagree on %q", err, cerr, s)
		}
		if err != nil {
			return
		}
		if len(ais) != 1 || ais[0].ID == "" {
			t.Fatalf("%q twice: %v, want one relay", s, ais)
		}
		for _, a := range ais[0].Addrs {
			if isRelayed(a) {
				t.Fatalf("%q: relayed address %v accepted", s, a)
			}
		}
	})
}
