package peer

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"

	"github.com/exopeer/exopeer/cell"
)

// TestPlanMeets: an unreached alive member is dialled at once by the
// member with the lower ID and meetYield later by the other, then after
// each wait of meetBackoff, 10 dials in all and then none; nothing while
// no relay is at hand (and no dial is counted); a member reached or no
// longer alive is forgotten, and dialled afresh when unreached again.
func TestPlanMeets(t *testing.T) {
	lo, mid, hi := peer.ID("a"), peer.ID("m"), peer.ID("z")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	// From mid: hi is due at once, lo after meetYield.
	st, due := planMeets(mid, nil, []peer.ID{lo, hi, mid}, true, t0)
	if !slices.Equal(due, []peer.ID{hi}) {
		t.Fatalf("first sweep due %v, want [z]", due)
	}
	if len(st) != 2 {
		t.Fatalf("state %v, want lo and hi (not self)", st)
	}
	_, due = planMeets(mid, st, []peer.ID{lo, hi}, true, t0.Add(meetYield-time.Millisecond))
	if slices.Contains(due, lo) {
		t.Fatalf("lo due before meetYield: %v", due)
	}
	_, due = planMeets(mid, st, []peer.ID{lo, hi}, true, t0.Add(meetYield))
	if !slices.Contains(due, lo) {
		t.Fatalf("lo not due at meetYield: %v", due)
	}

	// hi's back-off, run to its end: 10 dials, at the waits of meetBackoff.
	st, _ = planMeets(mid, nil, []peer.ID{hi}, true, t0)
	now, dials := t0, 1
	for _, w := range meetBackoff {
		if _, d := planMeets(mid, st, []peer.ID{hi}, true, now.Add(w-time.Millisecond)); len(d) != 0 {
			t.Fatalf("dial %d due before its wait %v", dials+1, w)
		}
		now = now.Add(w)
		st, due = planMeets(mid, st, []peer.ID{hi}, true, now)
		if len(due) != 1 {
			t.Fatalf("dial %d not due after %v", dials+1, w)
		}
		dials++
	}
	if dials != len(meetBackoff)+1 {
		t.Fatalf("%d dials", dials)
	}
	for i := range 5 {
		now = now.Add(time.Hour)
		if st, due = planMeets(mid, st, []peer.ID{hi}, true, now); len(due) != 0 {
			t.Fatalf("dial after the last (%d h on): %v", i+1, due)
		}
	}
	// Reached (or no longer alive): forgotten; unreached again: at once.
	if st, _ = planMeets(mid, st, nil, true, now); len(st) != 0 {
		t.Fatalf("state %v after hi was reached, want empty", st)
	}
	if _, due = planMeets(mid, st, []peer.ID{hi}, true, now); !slices.Equal(due, []peer.ID{hi}) {
		t.Fatalf("hi unreached again: due %v, want [z]", due)
	}

	// No relay: nothing due, nothing counted; a relay then: due at once.
	st, due = planMeets(mid, nil, []peer.ID{hi}, false, t0)
	for i := range 3 {
		st, due = planMeets(mid, st, []peer.ID{hi}, false, t0.Add(time.Duration(i)*time.Minute))
		if len(due) != 0 {
			t.Fatalf("due with no relay: %v", due)
		}
	}
	if st[hi].tries != 0 {
		t.Fatalf("tries %d with no relay, want 0", st[hi].tries)
	}
	if _, due = planMeets(mid, st, []peer.ID{hi}, true, t0.Add(3*time.Minute)); !slices.Equal(due, []peer.ID{hi}) {
		t.Fatalf("relay at hand: due %v, want [z]", due)
	}
}

// TestFirstMeets: an alive member the host is not connected to is
// dialled until it has been connected once; then never again in this run
// (discovery and gossip redial it), not even when its connection is
// lost; a member not alive is not dialled; the met set forgets a member
// off the roster, which, added again, is met afresh.
func TestFirstMeets(t *testing.T) {
	self, a, b := peer.ID("m"), peer.ID("a"), peer.ID("b")
	view := func(id peer.ID, alive, connected bool) meetView {
		return meetView{meetMember: meetMember{id: id, alive: alive}, connected: connected}
	}
	met, un := firstMeets(self, nil, []meetView{view(self, true, false), view(a, true, false), view(b, false, false)})
	if !slices.Equal(un, []peer.ID{a}) || len(met) != 0 {
		t.Fatalf("unreached %v, met %v; want [a], none", un, met)
	}
	met, un = firstMeets(self, met, []meetView{view(a, true, true), view(b, true, false)})
	if !slices.Equal(un, []peer.ID{b}) || !met[a] {
		t.Fatalf("unreached %v, met %v; want [b], a met", un, met)
	}
	// a's connection is lost: a is not dialled again.
	met, un = firstMeets(self, met, []meetView{view(a, true, false), view(b, true, false)})
	if !slices.Equal(un, []peer.ID{b}) || !met[a] {
		t.Fatalf("a lost: unreached %v, met %v; want [b], a still met", un, met)
	}
	// a off the roster: forgotten; added again: met afresh.
	met, _ = firstMeets(self, met, []meetView{view(b, true, false)})
	if len(met) != 0 {
		t.Fatalf("met %v with a off the roster, want none", met)
	}
	if _, un = firstMeets(self, met, []meetView{view(a, true, false)}); !slices.Equal(un, []peer.ID{a}) {
		t.Fatalf("a added again: unreached %v, want [a]", un)
	}
}

// TestMeetMembersOf: gossip's alive and suspect (a member this node has
// not heard from itself: every member it cannot reach) are alive to part
// "meet"; dead, left and never heard of are not; the node itself is left
// out.
func TestMeetMembersOf(t *testing.T) {
	info := cell.Info{Members: []cell.MemberStatus{
		{Peer: "a", State: "alive"}, {Peer: "b", State: "suspect"}, {Peer: "c", State: "dead"},
		{Peer: "d", State: "left"}, {Peer: "e", State: "unknown"}, {Peer: "f", State: "alive", Self: true},
	}}
	want := []meetMember{{"a", true}, {"b", true}, {"c", false}, {"d", false}, {"e", false}}
	if got := meetMembersOf(info); !slices.Equal(got, want) {
		t.Fatalf("meetMembersOf = %v, want %v", got, want)
	}
	info.Removed = true
	if got := meetMembersOf(info); len(got) != 0 {
		t.Fatalf("meetMembersOf of a removed node = %v, want none", got)
	}
}

// TestMeetThroughRelay: with real hosts on loopback, B knows of A only as
// an alive member (no address of it) and is connected to relay R, a
// member running the relay service. Before A holds a slot on R, B's dial
// fails and is retried after the back-off; once A holds one, B reaches A
// through R's circuit, and not again once that connection is closed. A
// member that is not alive, and a peer that is not a member, are never
// dialled.
func TestMeetThroughRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr, ha, hb, hc := loopbackHost(t, 1), loopbackHost(t, 2), loopbackHost(t, 3), loopbackHost(t, 4)
	members := &memberSet{m: map[peer.ID]bool{hr.ID(): true, ha.ID(): true, hb.ID(): true, hc.ID(): true}}
	acl := relayACL{self: hr.ID(), member: members.has, contactDevice: noContact}
	startRelay(ctx, t, hr, acl)
	rinfo := peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}
	// C holds a slot too, but gossip says it is dead.
	if _, err := client.Reserve(ctx, hc, rinfo); err != nil {
		t.Fatal(err)
	}
	if err := hb.Connect(ctx, rinfo); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "B learns that R relays", func() bool {
		p, _ := hb.Peerstore().SupportsProtocols(hr.ID(), proto.ProtoIDv2Hop)
		return len(p) > 0
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	view := []meetMember{{id: hr.ID(), alive: true}, {id: ha.ID(), alive: true}, {id: hc.ID()}}
	m := newMeet(hb, func() time.Time { return now }, func() []meetMember { return view }, nil)
	// B dials A at once or after meetYield, whichever side of B's ID it is.
	for range 2 {
		if got := m.sweep(ctx); len(got) != 0 {
			t.Fatalf("reached %v before A holds a slot on R", got)
		}
		if m.state[ha.ID()].tries == 1 {
			break
		}
		now = now.Add(meetYield)
	}
	if st := m.state[ha.ID()]; st.tries != 1 {
		t.Fatalf("A's state %+v after the failed dial, want 1 try", st)
	}
	if _, err := client.Reserve(ctx, ha, rinfo); err != nil {
		t.Fatal(err)
	}
	if got := m.sweep(ctx); len(got) != 0 {
		t.Fatalf("reached %v before the back-off ended", got)
	}
	now = now.Add(meetBackoff[0])
	if got := m.sweep(ctx); !slices.Equal(got, []peer.ID{ha.ID()}) {
		t.Fatalf("reached %v, want A", got)
	}
	conns := hb.Network().ConnsToPeer(ha.ID())
	if len(conns) != 1 || !isRelayed(conns[0].RemoteMultiaddr()) {
		t.Fatalf("B's connections to A: %v, want one through R", conns)
	}
	if got := m.sweep(ctx); len(got) != 0 || len(m.state) != 0 {
		t.Fatalf("the sweep after A was reached: reached %v, state %v, want none", got, m.state)
	}
	// A's connection is lost: part meet leaves it to discovery and gossip.
	if err := hb.Network().ClosePeer(ha.ID()); err != nil {
		t.Fatal(err)
	}
	for range 2 { // A is due at once or after meetYield, were it dialled
		now = now.Add(meetYield)
		if got := m.sweep(ctx); len(got) != 0 || len(hb.Network().ConnsToPeer(ha.ID())) != 0 {
			t.Fatalf("after A's connection was closed: reached %v; part meet dialled a member met before", got)
		}
	}
	if len(hb.Network().ConnsToPeer(hc.ID())) != 0 {
		t.Fatal("B dialled C, which gossip says is dead")
	}
	// C, alive again but taken off the roster (the view is the roster's):
	// not dialled either.
	view = view[:2]
	now = now.Add(time.Hour)
	if got := m.sweep(ctx); len(got) != 0 || len(hb.Network().ConnsToPeer(hc.ID())) != 0 {
		t.Fatalf("reached %v; B dialled a peer off the roster", got)
	}
}
