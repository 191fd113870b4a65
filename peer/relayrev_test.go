package peer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
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
	svc, err := newRelayService(hr, RelayOn, acl, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
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
