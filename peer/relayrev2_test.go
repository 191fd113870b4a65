package peer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

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
		contact: func(ctx context.Context, p peer.ID) bool {
			if !reachable.Load() {
				<-ctx.Done() // the read times out
				return false
			}
			return p == "contact"
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
