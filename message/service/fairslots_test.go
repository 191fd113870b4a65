package service

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/message"
)

// TestIdleFloodLeavesSlots: a contact's device opens 16 streams to
// this node (the resource manager's bound per peer), half of them left
// idle and half sending a frame's header and nothing more. Another
// contact's message is still delivered at once: the idle streams hold
// no frame slot, and the header-only ones hold at most the flooding
// contact's share (half of the node's when it is alone).
func TestIdleFloodLeavesSlots(t *testing.T) { bubble(t, testIdleFloodLeavesSlots) }

func testIdleFloodLeavesSlots(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	alice, bob, carol := devs[0], devs[1], devs[2]
	alice.befriend("Bob", bob)
	alice.befriend("Carol", carol)
	bob.befriend("Alice", alice)
	carol.befriend("Alice", alice)
	alice.maxIn = 8
	onClock(t, alice, bob, carol)
	ctx := t.Context()
	if _, err := bob.svc.Send(ctx, "Alice", "bob's first"); err != nil {
		t.Fatalf("bob sends: %v", err)
	}
	if _, err := carol.svc.Send(ctx, "Alice", "carol's first"); err != nil {
		t.Fatalf("carol sends: %v", err)
	}
	_, b := sealFrame(t, bob, alice, "never sent whole")
	var sts []network.Stream
	for range 8 {
		sts = append(sts, rawStream(t, bob, alice))
	}
	synctest.Wait()
	if got := alice.svc.slots.inUse(); got != 0 {
		t.Fatalf("bob's 8 idle streams hold %d of alice's frame slots, want none", got)
	}
	for range 8 {
		st := rawStream(t, bob, alice)
		if _, err := st.Write(b[:message.FrameHeader]); err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	synctest.Wait() // alice reads what bob sent
	if got, most := alice.svc.slots.inUse(), alice.maxIn/2; got > most {
		t.Fatalf("bob's 16 streams (8 idle, 8 sending only a header) hold %d of alice's %d frame slots, want at most %d", got, alice.maxIn, most)
	}
	sent := make(chan error, 1)
	go func() {
		_, err := carol.svc.Send(ctx, "Alice", "during bob's idle flood")
		sent <- err
	}()
	synctest.Wait()
	select {
	case err := <-sent:
		if err != nil {
			t.Fatalf("carol sends during bob's idle flood: %v", err)
		}
	default:
		t.Fatalf("carol's message waits for a frame slot held by bob's idle streams (%d of %d in use)", alice.svc.slots.inUse(), alice.maxIn)
	}
	// The header-only streams end, reset, once their frames' time
	// passed; the idle ones once idle for twice IdleTimeout.
	time.Sleep(2*alice.svc.cfg.IdleTimeout + time.Second)
	synctest.Wait()
	if got := alice.svc.slots.inUse(); got != 0 {
		t.Fatalf("%d frame slots still held after bob's streams' time passed", got)
	}
	if n := streamsOf(alice, bob); n != 0 {
		t.Fatalf("%d of bob's idle streams still open at alice after twice IdleTimeout", n)
	}
	for _, st := range sts {
		_ = st.Reset()
	}
}

// TestFairSlotsShare: a key alone takes at most half of the slots;
// while another waits, a slot freed goes to the key under its share,
// not to the one over it; the maps hold no key that neither holds nor
// waits.
func TestFairSlotsShare(t *testing.T) { synctest.Test(t, testFairSlotsShare) }

func testFairSlotsShare(t *testing.T) {
	f := newFairSlots(8)
	ctx := context.Background()
	for i := range 4 {
		if !f.tryLockedUnderLock("a") {
			t.Fatalf("a alone: slot %d refused, want 4 of 8", i+1)
		}
	}
	if f.tryLockedUnderLock("a") {
		t.Fatal("a alone took a 5th slot of 8: more than half")
	}
	for i := range 2 {
		if !f.tryLockedUnderLock("b") {
			t.Fatalf("b beside a: slot %d refused", i+1)
		}
	}
	// a holds 4, b 2: c's share is 8/4 = 2; d waits with it, then a's
	// share is 8/5 = 1: a slot a frees goes to c or d, not back to a.
	if !f.tryLockedUnderLock("c") || !f.tryLockedUnderLock("c") {
		t.Fatal("c refused under its share")
	}
	ctxd, cancel := context.WithCancel(ctx)
	got := make(chan bool, 1)
	go func() { got <- f.take(ctxd, "d") }()
	synctest.Wait() // d waits: no slot free
	f.give("a")
	if !<-got {
		t.Fatal("d, waiting, did not get the slot a freed")
	}
	f.give("a")
	if f.tryLockedUnderLock("a") {
		t.Fatal("a, over its share (8/5 among a, b, c and d), took a slot back")
	}
	cancel()
	for _, k := range []string{"a", "a", "b", "b", "c", "c", "d"} {
		f.give(k)
	}
	if f.inUse() != 0 || len(f.held) != 0 || len(f.wait) != 0 {
		t.Fatalf("all given back: %d in use, held %v, wait %v", f.inUse(), f.held, f.wait)
	}
}

// tryLockedUnderLock is tryLocked under f's lock.
func (f *fairSlots) tryLockedUnderLock(k string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tryLocked(k)
}
