package peer

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
)

// TestContactLedger: places per (contact, destination) up to max, all
// contacts together to one destination up to all, all or nothing for a
// device of several contacts, cap in all (each admission holds a place
// per contact and one for all); the sweep's free
// keeps a place per live circuit and every place younger than slotGrace.
func TestContactLedger(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	l := newContactLedger(3, 4, 14, clk.now)
	d1, d2, d3, a, b := seedID(t, 1), seedID(t, 2), seedID(t, 3), seedID(t, 8), seedID(t, 9)
	bob, carol := []string{"bob"}, []string{"carol"}
	for i, src := range []peer.ID{d1, d1, d2} {
		if !l.admit(bob, src, a) {
			t.Fatalf("bob's circuit %d to A refused", i)
		}
	}
	if l.admit(bob, d3, a) {
		t.Fatal("bob's fourth circuit to A admitted past max")
	}
	if !l.admit(bob, d3, b) || !l.admit(carol, d3, a) {
		t.Fatal("a circuit to another member, or another contact's, refused")
	}
	if l.admit([]string{"carol", "bob"}, d3, a) || l.count("carol", a) != 1 {
		t.Fatal("a device of two contacts admitted while one of them is full, or took a place")
	}
	if l.admit([]string{"frank"}, d3, a) || l.count("frank", a) != 0 {
		t.Fatal("a third contact admitted to A past all the contacts' bound (bob 3, carol 1)")
	}
	// free: d1 has one circuit left to A, d2 none; within grace all stay.
	live := func(src, dest peer.ID) int {
		if src == d1 && dest == a {
			return 1
		}
		return 0
	}
	l.free(live)
	if n := l.count("bob", a); n != 3 {
		t.Fatalf("%d of bob's places to A kept within their grace, want 3", n)
	}
	clk.set(clk.now().Add(slotGrace))
	l.free(live)
	if n := l.count("bob", a); n != 1 {
		t.Fatalf("%d of bob's places to A kept after grace, want 1 (d1's live circuit)", n)
	}
	if !l.admit(bob, d3, a) || !l.admit(bob, d3, a) || l.admit(bob, d3, a) {
		t.Fatal("freed places not taken again up to max")
	}
	// cap in all: 6 (bob's 3 to A, and all's 3); bob's to B and carol's,
	// with no circuit, were freed; dave's take 2 each.
	for i := range 4 {
		if !l.admit([]string{"dave"}, d1, peer.ID([]byte{byte(i)})) {
			t.Fatalf("dave's circuit %d refused under the cap", i)
		}
	}
	if l.admit([]string{"erin"}, d1, a) {
		t.Fatal("admitted past the ledger's cap")
	}
}

// TestRelayContactCircuitBound (real hosts on loopback): three devices of
// one contact, each within maxGuestCircuits, hold at most
// maxContactCircuits circuits to member A all together; another
// contact's device still reaches A; once a device's circuits end and the
// sweep frees their places, the third device gets one.
func TestRelayContactCircuitBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr, ha := loopbackHost(t, 1), loopbackHost(t, 2)
	d1, d2, d3, e := loopbackHost(t, 3), loopbackHost(t, 4), loopbackHost(t, 5), loopbackHost(t, 6)
	clk := &clock{t: time.Now()}
	members := &memberSet{m: map[peer.ID]bool{hr.ID(): true, ha.ID(): true}}
	contactOf := func(p peer.ID) ([]string, error) {
		switch p {
		case d1.ID(), d2.ID(), d3.ID():
			return []string{"bob"}, nil
		case e.ID():
			return []string{"carol"}, nil
		}
		return nil, nil
	}
	acl := relayACL{self: hr.ID(), member: members.has,
		contactDevice: func(p peer.ID) (bool, error) { cs, err := contactOf(p); return len(cs) > 0, err },
		hops:          func(src peer.ID) int { return hopStreams(hr, src) },
		contactOf:     contactOf,
		perContact:    newContactLedger(maxContactCircuits, maxContactsCircuits, maxCircuitBook, clk.now),
	}
	svc := startRelay(ctx, t, hr, acl)
	rinfo := peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}
	if st := reserveStatus(ctx, ha, rinfo); st != pbv2.Status_OK {
		t.Fatalf("member's reservation: %v", st)
	}
	for _, h := range []host.Host{d1, d2, d3, e} {
		if err := h.Connect(ctx, rinfo); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, h := range []host.Host{d1, d2} {
		for range maxGuestCircuits {
			if st := hopConnect(ctx, t, h, hr.ID(), ha.ID()); st != pbv2.Status_OK {
				t.Fatalf("bob's circuit %d: %v", n, st)
			}
			n++
		}
	}
	if n != maxContactCircuits {
		t.Fatalf("test opened %d circuits, want maxContactCircuits", n)
	}
	if st := hopConnect(ctx, t, d3, hr.ID(), ha.ID()); st != pbv2.Status_PERMISSION_DENIED {
		t.Fatalf("bob's third device's first circuit: %v, want PERMISSION_DENIED", st)
	}
	if st := hopConnect(ctx, t, e, hr.ID(), ha.ID()); st != pbv2.Status_OK {
		t.Fatalf("carol's device's circuit: %v", st)
	}
	// d1 goes: its circuits end; past their grace, the sweep frees them.
	if err := d1.Network().ClosePeer(hr.ID()); err != nil {
		t.Fatal(err)
	}
	clk.set(clk.now().Add(slotGrace))
	for svc.book.len() > maxGuestCircuits+1 { // d2's and carol's
		if ctx.Err() != nil {
			t.Fatalf("%d circuits noted after d1 left", svc.book.len())
		}
		sweep(hr, svc.book, acl)
		time.Sleep(20 * time.Millisecond)
	}
	sweep(hr, svc.book, acl)
	if st := hopConnect(ctx, t, d3, hr.ID(), ha.ID()); st != pbv2.Status_OK {
		t.Fatalf("bob's third device once d1's circuits ended: %v", st)
	}
}
