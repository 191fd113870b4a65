package peer

import (
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
