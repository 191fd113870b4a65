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

// maxContactGuests bounds the devices of one contact (one set of
// contacts naming a device, as the relay's circuits count them) among
// the guests: a contact's list may name any number of peer IDs, and one
// contact would otherwise take every slot.
const maxContactGuests = 8

// relayGuests is the bounded book of the contacts' devices that hold a
// reservation on the relay: each until its reservation would expire (the
// relay's ReservationTTL from its last grant; AutoRelay refreshes well
// before). A reservation request goes through three steps, all while the
// relay handles the request's hop stream:
//
//   - take (the ACL): a device already in the book, or asking now, may
//     ask again (a refresh); a new one only while fewer than max devices
//     hold or are asking for one, and fewer than perOwner of its contacts'
//     (takeAs). The device is then pending.
//   - grant (the relay accepted it, past its own limits: per IP, in all):
//     the device holds its slot until its reservation would expire.
//   - done (the relay has handled the last hop stream the device had
//     open, granted or not): the device is no longer pending. A device
//     refused after the ACL (go-libp2p's per-IP or total limits, the
//     relay closing) holds no slot.
//
// An entry past its time leaves the book at the next take. A nil book
// admits nobody. Safe for concurrent use.
type relayGuests struct {
	max, perOwner int
	ttl           time.Duration
	now           func() time.Time

	mu      sync.Mutex
	until   map[peer.ID]time.Time // granted; at most max devices with pending
	pending map[peer.ID]bool      // taken, not yet done
	hops    map[peer.ID]int       // hop streams being handled, by peer
	owners  map[peer.ID]string    // the contacts of each device in until or pending ("": not bounded)
}

func newRelayGuests(max int, ttl time.Duration, now func() time.Time) *relayGuests {
	return &relayGuests{max: max, perOwner: maxContactGuests, ttl: ttl, now: now, until: make(map[peer.ID]time.Time),
		pending: make(map[peer.ID]bool), hops: make(map[peer.ID]int), owners: make(map[peer.ID]string)}
}

// take notes a reservation request of p's, pending until done, and
// reports whether the bound allows it.
func (g *relayGuests) take(p peer.ID) bool { return g.takeAs(p, "") }

// takeAs is take for a device of owner (its contacts, as the relay's
// circuits count them): a new device only while owner's devices are
// fewer than perOwner ("": no such bound).
func (g *relayGuests) takeAs(p peer.ID, owner string) bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for id, t := range g.until {
		if !now.Before(t) {
			delete(g.until, id)
			if !g.pending[id] {
				delete(g.owners, id)
			}
		}
	}
	_, held := g.until[p]
	if !held && !g.pending[p] {
		if g.heldLocked() >= g.max {
			return false
		}
		if owner != "" {
			n := 0
			for _, o := range g.owners {
				if o == owner {
					n++
				}
			}
			if n >= g.perOwner {
				return false
			}
		}
	}
	g.pending[p] = true
	g.owners[p] = owner
	return true
}

// heldLocked counts the devices holding or asking for a slot.
func (g *relayGuests) heldLocked() int {
	n := len(g.until)
	for id := range g.pending {
		if _, ok := g.until[id]; !ok {
			n++
		}
	}
	return n
}

// grant notes that the relay granted p the reservation it asked for: p
// holds its slot until it would expire. A peer with no pending request
// (a member) is not a guest.
func (g *relayGuests) grant(p peer.ID) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pending[p] {
		g.until[p] = g.now().Add(g.ttl)
	}
}

// start notes that the relay handles a hop stream of p's.
func (g *relayGuests) start(p peer.ID) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hops[p]++
}

// done notes that the relay has handled a hop stream of p's: once it has
// handled them all, p's request, granted or not, is no longer pending.
// (A request's hop stream cannot be told from a circuit's here: p stays
// pending while any is handled, at most go-libp2p's handshake.)
func (g *relayGuests) done(p peer.ID) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := g.hops[p]; n > 1 {
		g.hops[p] = n - 1
		return
	}
	delete(g.hops, p)
	delete(g.pending, p)
	if _, held := g.until[p]; !held {
		delete(g.owners, p)
	}
}

// len is how many devices hold or ask for a slot now.
func (g *relayGuests) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.heldLocked()
}
