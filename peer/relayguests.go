package peer

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// maxRelayGuests bounds the reservations the relay service grants to
// contacts' devices, all contacts together: a contact with no public
// device reserves on its contacts' relays (config network.static_relays),
// and a cell's relay serves its own members first.
const maxRelayGuests = 32

// relayGuests is the bounded book of the contacts' devices that hold a
// reservation on the relay: each until its reservation would expire (the
// relay's ReservationTTL from its last grant; AutoRelay refreshes well
// before). A device already in the book is granted again (a refresh); a
// new one only while fewer than max devices hold one. An entry past its
// time leaves the book at the next grant. A nil book admits nobody.
// Safe for concurrent use.
type relayGuests struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	until map[peer.ID]time.Time
}

func newRelayGuests(max int, ttl time.Duration, now func() time.Time) *relayGuests {
	return &relayGuests{max: max, ttl: ttl, now: now, until: make(map[peer.ID]time.Time)}
}

// admit records a reservation granted to p now and reports whether the
// bound allows it.
func (g *relayGuests) admit(p peer.ID) bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for id, t := range g.until {
		if !now.Before(t) {
			delete(g.until, id)
		}
	}
	if _, ok := g.until[p]; !ok && len(g.until) >= g.max {
		return false
	}
	g.until[p] = now.Add(g.ttl)
	return true
}
