package peer

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestRelayContactNamedByAnother: any cell may sign a device list naming
// any peer ID (see Node.owner), so a hostile contact can name another
// contact's device. That must not let it shut the device out: once the
// hostile contact's own devices hold all its places to member A, carol's
// device, which the hostile contact also names, still reaches A (carol
// holds no place to A).
func TestRelayContactNamedByAnother(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	relay, a := seedID(t, 1), seedID(t, 2)
	h1, h2, v := seedID(t, 3), seedID(t, 4), seedID(t, 5)
	members := &memberSet{m: map[peer.ID]bool{relay: true, a: true}}
	contactOf := func(p peer.ID) ([]string, error) {
		switch p {
		case h1, h2:
			return []string{"mallory"}, nil
		case v:
			return []string{"carol", "mallory"}, nil // mallory's list names carol's device
		}
		return nil, nil
	}
	acl := relayACL{self: relay, member: members.has,
		contactDevice: func(p peer.ID) (bool, error) { cs, err := contactOf(p); return len(cs) > 0, err },
		contactOf:     contactOf,
		perContact:    newContactLedger(maxContactCircuits, maxContactsCircuits, maxCircuitBook, clk.now),
	}
	for i := range maxContactCircuits {
		src := h1
		if i%2 == 1 {
			src = h2
		}
		if !acl.AllowConnect(src, nil, a) {
			t.Fatalf("mallory's circuit %d to A refused", i)
		}
	}
	if acl.AllowConnect(h1, nil, a) {
		t.Fatal("mallory's circuit past maxContactCircuits admitted")
	}
	if !acl.AllowConnect(v, nil, a) {
		t.Fatal("carol's device refused because mallory, which names it, holds all of mallory's places to A")
	}
}

// TestRelayGuestsOneContact: one contact, whose list may name as many
// peer IDs as it likes, takes the guests' reservation slots
// (maxRelayGuests) with its own devices; another contact's device must
// still get one, as circuits (maxContactCircuits) and known entries
// (discovery.MaxKnownPerContact) are bounded per contact.
func TestRelayGuestsOneContact(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	relay := seedID(t, 1)
	mallory := map[peer.ID]bool{}
	for i := range maxRelayGuests {
		mallory[seedID(t, byte(10+i))] = true
	}
	carol := seedID(t, 2)
	contactOf := func(p peer.ID) ([]string, error) {
		switch {
		case mallory[p]:
			return []string{"mallory"}, nil
		case p == carol:
			return []string{"carol"}, nil
		}
		return nil, nil
	}
	acl := relayACL{self: relay, member: func(peer.ID) bool { return false },
		contactDevice: func(p peer.ID) (bool, error) { cs, err := contactOf(p); return len(cs) > 0, err },
		contactOf:     contactOf,
		guests:        newRelayGuests(maxRelayGuests, time.Hour, clk.now),
	}
	reserve := func(p peer.ID) bool {
		acl.hopStarted(p)
		defer acl.hopDone(p)
		if !acl.AllowReserve(p, nil) {
			return false
		}
		acl.reserved(p)
		return true
	}
	for p := range mallory {
		reserve(p)
	}
	if !reserve(carol) {
		t.Fatalf("carol's device refused a reservation: mallory's devices hold all %d guest slots", acl.guests.len())
	}
}

// TestContactGateFailedLookup: a look-up that did not finish (the store
// member unreachable, the read timed out) found nothing about the peer;
// the gate must not refuse a contact's device for NotContactFor on it:
// once the store answers, the device is admitted.
func TestContactGateFailedLookup(t *testing.T) {
	var reachable atomic.Bool
	rule := peerRule{
		member: func(peer.ID) bool { return false },
		contact: func(ctx context.Context, p peer.ID) (string, error) {
			if !reachable.Load() {
				<-ctx.Done() // the read times out
				return "", ctx.Err()
			}
			return ownerIf(p, p == "contact")
		},
	}
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	g := newContactGate(rule, clk.now)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if g.allows(ctx, "contact") {
		t.Fatal("admitted with no look-up done")
	}
	reachable.Store(true)
	clk.set(clk.now().Add(2 * time.Second))
	if !g.allows(t.Context(), "contact") {
		t.Fatal("a contact's device refused on a look-up that timed out, remembered for NotContactFor")
	}
}

// blockingSweepACL is an ACL whose first sweep stops half-way (in
// freeSlots) until released.
type blockingSweepACL struct {
	relayACL
	once             sync.Once
	entered, release chan struct{}
	ended            atomic.Bool
}

func (a *blockingSweepACL) freeSlots(func(src, dest peer.ID) int) {
	a.once.Do(func() {
		close(a.entered)
		<-a.release
		time.Sleep(20 * time.Millisecond)
		a.ended.Store(true)
	})
}

// TestRelayCloseWaitsForStoppedSweep: the relay stops (reachability
// lost) while a sweep is mid-run, and Close comes before that sweep
// ends. Close must wait for it (Close waits for every goroutine it
// started): the relay's r is nil by then, and Close returned at once.
func TestRelayCloseWaitsForStoppedSweep(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	h := loopbackHost(t, 1)
	acl := &blockingSweepACL{relayACL: relayACL{self: h.ID(), member: func(peer.ID) bool { return true }, contactDevice: noContact},
		entered: make(chan struct{}), release: make(chan struct{})}
	svc, err := newRelayService(h, RelayAuto, acl, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	svc.reach(network.ReachabilityPublic)
	select {
	case <-acl.entered:
	case <-ctx.Done():
		t.Fatal("no sweep ran")
	}
	go svc.reach(network.ReachabilityPrivate) // stops the relay; waits for the sweep
	for {
		svc.mu.Lock()
		stopped := svc.r == nil
		svc.mu.Unlock()
		if stopped {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the relay did not stop")
		case <-time.After(5 * time.Millisecond):
		}
	}
	closed := make(chan struct{})
	go func() { _ = svc.Close(); close(closed) }()
	select {
	case <-closed:
		if !acl.ended.Load() {
			close(acl.release)
			t.Fatal("Close returned while a sweep it started still runs")
		}
	case <-time.After(200 * time.Millisecond):
		close(acl.release)
		<-closed
	}
}
