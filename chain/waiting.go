package chain

import (
	"bytes"
	"slices"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Entries waiting for their parents. A member can send entries whose
// parents never come (or not yet: sync answers overlap); a State keeps
// them, up to a budget of entries and bytes, overall and per author, so
// that they join as soon as their parents do. What does not fit is
// dropped and counted; the entry is fetched again later, since a Vector
// names only the entries held.

// The default bounds of the entries a State keeps while their parents are
// missing (see Limits).
const (
	MaxWaiting            = 1 << 17
	MaxWaitingBytes       = 64 << 20
	MaxWaitingAuthorBytes = 16 << 20
)

// Limits bound the entries a State keeps while their parents are missing.
// An entry that does not fit is dropped (it is fetched again later) and
// counted in Ready. A zero field takes its default.
type Limits struct {
	Waiting      int // entries; default MaxWaiting
	WaitingBytes int // bytes, as counted by waitingCost; default MaxWaitingBytes
	AuthorBytes  int // bytes of one author's entries; default MaxWaitingAuthorBytes
}

func (l Limits) withDefaults() Limits {
	if l.Waiting <= 0 {
		l.Waiting = MaxWaiting
	}
	if l.WaitingBytes <= 0 {
		l.WaitingBytes = MaxWaitingBytes
	}
	if l.AuthorBytes <= 0 {
		l.AuthorBytes = MaxWaitingAuthorBytes
	}
	return l
}

// SetLimits sets the bounds of the entries waiting for their parents.
// Entries waiting already stay, even past new bounds.
func (s *State) SetLimits(l Limits) { s.limits = l.withDefaults() }

// waiter is an entry waiting for its parents.
type waiter struct {
	c       cid.Cid
	e       *Entry // its payload shares e's encoding
	missing int    // parents not held yet
	cost    int    // what it counts against the budget
}

// Per waiting entry, what waitingCost counts beside its encoding: the
// Entry and its map records, and each missing parent's record in blocked.
const (
	waiterOverhead  = 512
	missingOverhead = 96
	parentOverhead  = 56
)

// waitingCost is what an entry with missing parents counts against the
// waiting budget: about the heap it holds while it waits.
func waitingCost(e *Entry, missing int) int {
	return len(e.raw) + waiterOverhead + len(e.Parents)*parentOverhead + missing*missingOverhead
}

// Waiting returns the number of entries waiting for their parents.
func (s *State) Waiting() int { return len(s.waiting) }

// WaitingBytes returns the bytes counted for the entries waiting for their
// parents.
func (s *State) WaitingBytes() int { return s.waitingBytes }

// wait keeps e (not held, missing parents) until its parents come, if it
// fits the budget; if not, it counts it dropped in rd.
func (s *State) wait(c cid.Cid, e *Entry, missing int, rd *Ready) {
	l := s.limits.withDefaults()
	cost := waitingCost(e, missing)
	switch {
	case s.waitingByAuthor[e.Author]+cost > l.AuthorBytes:
		rd.Dropped++
		rd.DroppedAuthor++
		return
	case len(s.waiting) >= l.Waiting || s.waitingBytes+cost > l.WaitingBytes:
		rd.Dropped++
		return
	}
	// Keep the encoding once: a decoded payload is a copy of the
	// encoding's tail (the last field of the canonical map).
	slim := *e
	if n, r := len(e.Payload), e.raw; n > 0 && n <= len(r) && bytes.Equal(r[len(r)-n:], e.Payload) {
		slim.Payload = r[len(r)-n : len(r) : len(r)]
	}
	w := &waiter{c: c, e: &slim, missing: missing, cost: cost}
	s.waiting[c] = w
	s.waitingBytes += cost
	if s.waitingByAuthor == nil {
		s.waitingByAuthor = make(map[peer.ID]int)
	}
	s.waitingByAuthor[e.Author] += cost
	s.compactBlocked()
	for _, p := range e.Parents {
		if _, ok := s.metas[p]; !ok {
			s.blocked[p] = append(s.blocked[p], w)
			s.records++
		}
	}
	s.live += missing
}

// unwait forgets the waiting entry c. Its records in blocked for the
// parents still missing stay, stale, until compactBlocked.
func (s *State) unwait(c cid.Cid, w *waiter) {
	delete(s.waiting, c)
	s.waitingBytes -= w.cost
	s.live -= w.missing
	a := w.e.Author
	if s.waitingByAuthor[a] -= w.cost; s.waitingByAuthor[a] <= 0 {
		delete(s.waitingByAuthor, a)
	}
}

// release appends to queue the waiting entries whose last missing parent
// was c, which just joined the chain. A record of an entry no longer
// waiting (refused with another parent), or waiting again since (given
// again), is stale: it is skipped, so that an entry is released only when
// all its parents are held.
func (s *State) release(c cid.Cid, queue []*Entry) []*Entry {
	for _, w := range s.blocked[c] {
		if s.waiting[w.c] != w {
			continue
		}
		s.live--
		if w.missing--; w.missing == 0 {
			s.unwait(w.c, w)
			queue = append(queue, w.e)
		}
	}
	s.unblock(c)
	return queue
}

// unblock forgets the records of the entries waiting for c.
func (s *State) unblock(c cid.Cid) {
	s.records -= len(s.blocked[c])
	delete(s.blocked, c)
}

// compactSlack is how many stale records blocked may hold beyond as many
// as live ones before compactBlocked removes them.
const compactSlack = 64

// compactBlocked removes the stale records from blocked once they
// outnumber the live ones (plus compactSlack): an entry refused with one
// parent leaves its records on its other missing parents, and removing
// them one by one would cost a scan of each such parent's list. Compacting
// costs one pass over blocked, paid for by the stale records it removes,
// and keeps blocked within about twice what the waiting budget counts.
func (s *State) compactBlocked() {
	if s.records-s.live <= s.live+compactSlack {
		return
	}
	s.records = 0
	for p, l := range s.blocked {
		l = slices.DeleteFunc(l, func(w *waiter) bool { return s.waiting[w.c] != w })
		switch {
		case len(l) == 0:
			delete(s.blocked, p)
			continue
		case cap(l) > 2*len(l):
			l = slices.Clone(l) // lets the longer array go
		}
		s.blocked[p] = l
		s.records += len(l)
	}
}
