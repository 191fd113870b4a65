package peer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
)

// lateHost is a host whose connections, listed by the sweep, run after
// once the first time their streams are listed: a circuit that opens
// while the sweep is between listing the streams and cleaning the book.
type lateHost struct {
	host.Host
	after func()
	once  *sync.Once
}

func (h lateHost) Network() network.Network { return lateNet{h.Host.Network(), h} }

type lateNet struct {
	network.Network
	h lateHost
}

func (n lateNet) Conns() []network.Conn {
	cs := n.Network.Conns()
	out := make([]network.Conn, len(cs))
	for i, c := range cs {
		out[i] = lateConn{c, n.h}
	}
	return out
}

type lateConn struct {
	network.Conn
	h lateHost
}

func (c lateConn) GetStreams() []network.Stream {
	st := c.Conn.GetStreams()
	c.h.once.Do(c.h.after)
	return st
}

// TestRelaySweepRaceKeepsNewCircuit: a circuit whose stop stream opens
// (and is noted in the book) while a sweep runs, after the sweep listed
// the connections' streams, must stay in the book: the sweep's cleanup
// (book.keep) must drop only the circuits it saw gone. Otherwise the
// circuit is never judged again and outlives its source's removal from
// the cell (or its window's close) for as long as it stays open.
func TestRelaySweepRaceKeepsNewCircuit(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr, ha, hb := loopbackHost(t, 1), loopbackHost(t, 2), loopbackHost(t, 3)
	members := &memberSet{m: map[peer.ID]bool{hr.ID(): true, ha.ID(): true, hb.ID(): true}}
	acl := relayACL{self: hr.ID(), member: members.has, contactDevice: noContact}
	svc := startRelay(ctx, t, hr, acl)
	if _, err := client.Reserve(ctx, ha, peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}); err != nil {
		t.Fatalf("member's reservation: %v", err)
	}
	late := lateHost{Host: hr, once: new(sync.Once), after: func() {
		if err := hb.Connect(ctx, circuitTo(t, hr, ha.ID())); err != nil {
			t.Errorf("member B to A through the relay: %v", err)
		}
	}}
	sweep(late, svc.book, acl)
	if t.Failed() {
		t.FailNow()
	}
	c := relayedConn(t, hb, ha.ID())
	if n := svc.book.len(); n != 1 {
		t.Errorf("a circuit opened during a sweep: %d noted after it, want 1", n)
	}
	members.set(hb.ID(), false)
	sweep(hr, svc.book, acl)
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	defer wcancel()
	if !waitClosed(wctx, c) {
		t.Fatal("removed member B's circuit to A, opened during a sweep, is still open after the next sweep")
	}
}

// TestWindowSlotReadmitted: a stranger whose circuit to A ended long
// after it took its slot asks for a new one, and the window admits it
// (it holds the slot). The relay then opens the stop stream; a sweep in
// between sees no circuit of it and frees the slot (its grace counted
// from the first admission), and the next sweep ends the circuit the ACL
// just admitted. slotGrace is there to cover that handshake.
func TestWindowSlotReadmitted(t *testing.T) {
	a, s := seedID(t, 2), seedID(t, 9)
	t0 := time.Unix(1_800_000_000, 0)
	var tab windowTable
	tab.put(windowMsg{member: a, issued: t0, until: t0.Add(windowLease)}, t0, func(peer.ID) bool { return true })
	if !tab.admit(s, a, t0) {
		t.Fatal("stranger refused through an open window")
	}
	circuits := func(src, dest peer.ID) bool { return true }
	tab.free(circuits, t0.Add(2*slotGrace)) // its first circuit lives
	again := t0.Add(3 * slotGrace)          // it ended; the stranger asks again
	if !tab.admit(s, a, again) {
		t.Fatal("stranger holding a slot refused")
	}
	none := func(src, dest peer.ID) bool { return false }
	tab.free(none, again.Add(time.Second)) // the new circuit's stop stream not open yet
	if !tab.holds(s, a, again.Add(2*time.Second)) {
		t.Fatal("a slot just used for an admission was freed during its circuit's handshake: the next sweep ends that circuit")
	}
}

// TestRelayContactCannotFillMember: maxGuestCircuits bounds one source
// and maxContactCircuits one contact, but 16 devices of 16 contacts, 4
// circuits each, would take all of member A's 64 (go-libp2p's
// MaxCircuits, counted per destination), and member B could no longer
// reach A through its own cell's relay: all the contacts together hold
// at most maxContactsCircuits to one member.
func TestRelayContactCannotFillMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	hr, ha, hb := loopbackHost(t, 1), loopbackHost(t, 2), loopbackHost(t, 3)
	const devices = 16 // relayResources().MaxCircuits / maxGuestCircuits
	var devs []host.Host
	contactOf := map[peer.ID]string{} // each device its own contact
	for i := range devices {
		h := loopbackHost(t, byte(10+i))
		devs = append(devs, h)
		contactOf[h.ID()] = fmt.Sprintf("contact-%d", i)
	}
	members := &memberSet{m: map[peer.ID]bool{hr.ID(): true, ha.ID(): true, hb.ID(): true}}
	clk := &clock{t: time.Now()}
	acl := relayACL{self: hr.ID(), member: members.has,
		contactDevice: func(p peer.ID) (bool, error) { return contactOf[p] != "", nil },
		hops:          func(src peer.ID) int { return hopStreams(hr, src) },
		contactOf: func(p peer.ID) ([]string, error) {
			if c := contactOf[p]; c != "" {
				return []string{c}, nil
			}
			return nil, nil
		},
		perContact: newContactLedger(maxContactCircuits, maxContactsCircuits, maxCircuitBook, clk.now),
	}
	startRelay(ctx, t, hr, acl)
	rinfo := peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}
	if _, err := client.Reserve(ctx, ha, rinfo); err != nil {
		t.Fatalf("member's reservation: %v", err)
	}
	for _, h := range append([]host.Host{hb}, devs...) {
		if err := h.Connect(ctx, rinfo); err != nil {
			t.Fatal(err)
		}
	}
	ok := 0
	for _, d := range devs {
		for range maxGuestCircuits {
			if hopConnect(ctx, t, d, hr.ID(), ha.ID()) == pbv2.Status_OK {
				ok++
			}
		}
	}
	if ok != maxContactsCircuits {
		t.Errorf("%d contacts' devices opened %d circuits to member A, want maxContactsCircuits", devices, ok)
	}
	if st := hopConnect(ctx, t, hb, hr.ID(), ha.ID()); st != pbv2.Status_OK {
		t.Fatalf("member B's circuit to member A, after %d contacts' devices opened %d: %v, want OK", devices, ok, st)
	}
}
