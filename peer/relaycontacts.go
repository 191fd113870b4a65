package peer

import (
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// maxContactCircuits bounds the circuits the devices of one contact (one
// contact cell), all together, hold to any one member through the relay
// at once: maxGuestCircuits bounds each device, and a contact with 16
// devices would otherwise hold all of go-libp2p's MaxCircuits (64) to a
// member, shutting everyone else out of reaching it through this relay.
const maxContactCircuits = 8

// maxContactsCircuits bounds the circuits all the contacts' devices
// together hold to any one member: maxContactCircuits bounds one contact,
// and a few contacts would otherwise hold all 64 of a member's circuits
// and leave none for the cell's own members. With window strangers (at
// most windowStrangers × maxGuestCircuits) a member keeps room.
const maxContactsCircuits = 24

// allContacts is the ledger's key for all the contacts together: contact
// cell IDs are never empty.
const allContacts = ""

// contactLedger is the relay's count of the circuits admitted from
// contacts' devices, by contact and destination: each admission holds a
// place from the moment the ACL admits it (so requests made at once
// count), and keeps it while its source has a circuit to that
// destination, and no less than slotGrace (the relay's handshake after
// the admission). The sweep frees the others. At most max places per
// (contact, destination), all places to one destination (all contacts
// together), cap in all. Safe for concurrent use.
type contactLedger struct {
	max, all, cap int
	now           func() time.Time

	mu sync.Mutex
	m  map[contactDest][]admission // each in admission order; cap entries in all
	n  int
}

type contactDest struct {
	contact string
	dest    peer.ID
}

type admission struct {
	src peer.ID
	at  time.Time
}

func newContactLedger(max, all, cap int, now func() time.Time) *contactLedger {
	return &contactLedger{max: max, all: all, cap: cap, now: now, m: make(map[contactDest][]admission)}
}

// admit takes a place for a circuit from src, a device of each of
// contacts, to dest, if every one of those contacts has room and all the
// contacts together have room to dest; it reports whether it did.
func (l *contactLedger) admit(contacts []string, src, dest peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	contacts = slices.DeleteFunc(slices.Clone(contacts), func(c string) bool { return c == allContacts })
	if len(contacts) == 0 {
		return false
	}
	contacts = append(contacts, allContacts)
	if l.n+len(contacts) > l.cap {
		return false
	}
	for _, c := range contacts {
		limit := l.max
		if c == allContacts {
			limit = l.all
		}
		if len(l.m[contactDest{c, dest}]) >= limit {
			return false
		}
	}
	now := l.now()
	for _, c := range contacts {
		k := contactDest{c, dest}
		l.m[k] = append(l.m[k], admission{src: src, at: now})
		l.n++
	}
	return true
}

// free keeps, for each source and destination, as many places as it has
// circuits (live: the relay's circuits now, counted by pair) or were
// taken less than slotGrace ago, whichever is more: the newest ones.
func (l *contactLedger) free(live func(src, dest peer.ID) int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for k, as := range l.m {
		young, total := map[peer.ID]int{}, map[peer.ID]int{}
		for _, a := range as {
			total[a.src]++
			if now.Sub(a.at) < slotGrace {
				young[a.src]++
			}
		}
		keep := map[peer.ID]int{}
		for src, n := range total {
			keep[src] = min(n, max(young[src], live(src, k.dest)))
		}
		kept := make([]admission, 0, len(as))
		for i := len(as) - 1; i >= 0; i-- { // the newest first
			if a := as[i]; keep[a.src] > 0 {
				keep[a.src]--
				kept = append(kept, a)
			}
		}
		slices.Reverse(kept)
		l.n -= len(as) - len(kept)
		if len(kept) == 0 {
			delete(l.m, k)
		} else {
			l.m[k] = kept
		}
	}
}

// count is how many places contact's devices hold to dest.
func (l *contactLedger) count(contact string, dest peer.ID) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m[contactDest{contact, dest}])
}
