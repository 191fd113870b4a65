package chain

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Pos is a place in a chain's order: entries are sorted by Lamport clock,
// then by CID bytes. A parent's clock is below its children's, so the
// order is a topological sort of the DAG, and it is the same on every node
// that holds the same entries. The zero Pos is before every entry.
type Pos struct {
	Clock uint64
	CID   cid.Cid
}

// Compare orders positions: -1 if p is before q, 0 if equal, +1 after.
func (p Pos) Compare(q Pos) int {
	if c := cmp.Compare(p.Clock, q.Clock); c != 0 {
		return c
	}
	return bytes.Compare(p.CID.Bytes(), q.CID.Bytes())
}

// String formats p as CLOCK.CID, the cursor syntax of the API and the CLI.
func (p Pos) String() string {
	if p.Clock == 0 {
		return "0"
	}
	return strconv.FormatUint(p.Clock, 10) + "." + p.CID.String()
}

// ParsePos parses what String makes ("0" or "" is the start).
func ParsePos(s string) (Pos, error) {
	if s == "" || s == "0" {
		return Pos{}, nil
	}
	clock, c, ok := strings.Cut(s, ".")
	if !ok {
		return Pos{}, fmt.Errorf("chain: cursor %q is not CLOCK.CID", s)
	}
	n, err := strconv.ParseUint(clock, 10, 63)
	if err != nil || n == 0 {
		return Pos{}, fmt.Errorf("chain: cursor %q: bad clock", s)
	}
	id, err := cid.Decode(c)
	if err != nil {
		return Pos{}, fmt.Errorf("chain: cursor %q: %w", s, err)
	}
	return Pos{Clock: n, CID: id}, nil
}

// Meta is what the State keeps of an accepted entry.
type Meta struct {
	CID     cid.Cid
	Author  peer.ID
	Seq     uint64
	Clock   uint64
	Epoch   uint64
	Parents []cid.Cid
	Index   uint64 // the entry's place in this node's arrival order, from 0
}

// Pos returns the entry's place in the chain's order.
func (m *Meta) Pos() Pos { return Pos{Clock: m.Clock, CID: m.CID} }

// Rejected is an entry that breaks the chain's rules, and why.
type Rejected struct {
	CID    cid.Cid
	Author peer.ID
	Err    error
}

// Ready is what Add did: the entries that joined the chain, in an order
// where parents come first (the caller stores them, in that order, before it
// shows them to anyone), the forks found and the entries refused.
type Ready struct {
	Accepted []*Entry
	Forks    []Fork
	Rejected []Rejected
	// Waiting is how many entries wait for missing parents after this
	// call; Dropped how many entries of this call were not kept waiting
	// because the waiting budget (Limits) was spent (they will be fetched
	// again); DroppedAuthor how many of those because their author's
	// share of it was.
	Waiting, Dropped, DroppedAuthor int
}

// Vector maps each author to the highest sequence number held of theirs.
// Because a State holds only entries whose parents it holds, and each
// entry's parents include its author's previous entry, a node's Vector
// names exactly the entries it holds (forks aside: see Missing).
type Vector map[peer.ID]uint64

// Digest sums up an author's entries up to a sequence number n:
// d(0) is zero, d(n) = SHA-256(d(n−1) || the CIDs of the author's entries
// with sequence number n, sorted by bytes)[:16]. Two nodes with one
// Vector entry for an author hold the same entries of that author exactly
// when their digests agree: it is what shows a fork one of them does not
// know of.
type Digest [16]byte

// Digests maps authors to the Digest of their entries up to a Vector's
// sequence number. A zero or absent Digest says nothing.
type Digests map[peer.ID]Digest

// authorLog is one author's entries, by sequence number.
type authorLog struct {
	seqs    [][]cid.Cid // seqs[n-1]: the entries with sequence number n
	digests []Digest    // digests[n-1]: d(n), from 1 to stale-1 if stale > 0
	stale   uint64      // the lowest sequence number whose digest is out of date; 0: none
	forkAt  uint64      // the lowest forked sequence number; 0: none
	fork    int         // the author's place in State.forks, if forkAt > 0
}

// digest returns d(n), 1 ≤ n ≤ len(a.seqs), bringing the digests up to
// date first: an insert only marks them stale, so that entries arriving
// below an author's last sequence number (the second branch of a fork)
// cost no rehash of everything after them each.
func (a *authorLog) digest(n uint64) Digest {
	if a.stale != 0 {
		a.update(a.stale)
		a.stale = 0
	}
	return a.digests[n-1]
}

// update recomputes the digests from sequence number from on.
func (a *authorLog) update(from uint64) {
	a.digests = a.digests[:from-1]
	var prev Digest
	if from > 1 {
		prev = a.digests[from-2]
	}
	for n := from; n <= uint64(len(a.seqs)); n++ {
		h := sha256.New()
		h.Write(prev[:])
		for _, c := range SortCIDs(slices.Clone(a.seqs[n-1])) {
			h.Write(c.Bytes())
		}
		prev = Digest(h.Sum(nil))
		a.digests = append(a.digests, prev)
	}
}

// State is a cell's chain in memory: the DAG of accepted entries, its
// heads, its order, each author's entries, and entries waiting for their
// parents. It is a pure state machine: it does no I/O and is not safe for
// concurrent use. Entries given to Add must have passed Verify.
type State struct {
	cell    ed25519.PublicKey
	metas   map[cid.Cid]*Meta
	arrival []*Meta
	order   []Pos // sorted up to sorted, then in arrival order
	sorted  int
	heads   map[cid.Cid]struct{}
	authors map[peer.ID]*authorLog
	forks   []Fork                // one per forked author
	waiting map[cid.Cid]*waiter   // entries missing a parent (see waiting.go)
	blocked map[cid.Cid][]*waiter // missing parent → entries waiting for it
	records int                   // in blocked, stale ones included
	live    int                   // in blocked for the waiting: their missing parents

	waitingBytes    int             // what the waiting entries count
	waitingByAuthor map[peer.ID]int // the same, per author
	limits          Limits
}

// NewState returns the empty chain of a cell.
func NewState(cell ed25519.PublicKey) *State {
	return &State{
		cell:    slices.Clone(cell),
		metas:   make(map[cid.Cid]*Meta),
		heads:   make(map[cid.Cid]struct{}),
		authors: make(map[peer.ID]*authorLog),
		waiting: make(map[cid.Cid]*waiter),
		blocked: make(map[cid.Cid][]*waiter),
	}
}

// Cell returns the key of the cell whose chain this is.
func (s *State) Cell() ed25519.PublicKey { return s.cell }

// Len returns the number of entries in the chain.
func (s *State) Len() int { return len(s.arrival) }

// Has reports whether the chain holds c (or holds it waiting, if waiting).
func (s *State) Has(c cid.Cid, waiting bool) bool {
	if _, ok := s.metas[c]; ok {
		return true
	}
	_, ok := s.waiting[c]
	return ok && waiting
}

// Meta returns what the chain knows of c.
func (s *State) Meta(c cid.Cid) (*Meta, bool) {
	m, ok := s.metas[c]
	return m, ok
}

// Add merges entries (verified, in any order) into the chain. An entry
// whose parents are all in the chain joins it if it obeys the rules: its
// clock is one more than its parents' largest, its epoch is at least its
// parents' largest, and if its sequence number
// is n > 1 one of its parents is its author's entry n−1 (and no parent of
// its author's is later), and the chain does not hold MaxForkWidth entries
// of its author with its sequence number already (else: ErrForked).
// Others wait for their parents, within the State's Limits. Entries
// already held are ignored.
func (s *State) Add(entries []*Entry) Ready {
	var rd Ready
	// refused holds this call's refused entries and why, so that an
	// entry given after its refused parent is refused too.
	var refused map[cid.Cid]error
	for _, e := range entries {
		c := e.CID()
		if s.Has(c, true) {
			continue
		}
		if !bytes.Equal(e.Cell, s.cell) {
			rd.Rejected = append(rd.Rejected, Rejected{CID: c, Author: e.Author, Err: ErrOtherCell})
			continue
		}
		missing := 0
		var bad error
		for _, p := range e.Parents {
			if _, ok := s.metas[p]; !ok {
				missing++
				if why, ok := refused[p]; ok && bad == nil {
					bad = fmt.Errorf("%w: parent %s was refused", cause(why), p)
				}
			}
		}
		if bad == nil && missing > 0 && s.widthFull(e.Author, e.Seq) {
			bad = s.errForked(e.Author, e.Seq)
		}
		switch {
		case bad != nil:
			rd.Rejected = append(rd.Rejected, Rejected{CID: c, Author: e.Author, Err: bad})
			if refused == nil {
				refused = make(map[cid.Cid]error)
			}
			refused[c] = bad
			s.dropBlocked(c, bad, refused, &rd)
		case missing > 0:
			s.wait(c, e, missing, &rd)
		default:
			// Joins now, so that entries given parents first never
			// wait, and neither do the waiting children it releases.
			refused = s.join(e, refused, &rd)
		}
	}
	s.compactBlocked()
	rd.Waiting = len(s.waiting)
	return rd
}

// join accepts e (whose parents are held) and then the waiting entries it
// releases, or refuses them and the waiting entries built on them; it
// records the refused in refused (allocated if nil) and returns it.
func (s *State) join(e *Entry, refused map[cid.Cid]error, rd *Ready) map[cid.Cid]error {
	queue := []*Entry{e}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		c := e.CID()
		if _, ok := s.metas[c]; ok {
			continue
		}
		if err := s.accept(e, rd); err != nil {
			rd.Rejected = append(rd.Rejected, Rejected{CID: c, Author: e.Author, Err: err})
			if refused == nil {
				refused = make(map[cid.Cid]error)
			}
			refused[c] = err
			s.dropBlocked(c, err, refused, rd)
			continue
		}
		rd.Accepted = append(rd.Accepted, e)
		queue = s.release(c, queue)
	}
	return refused
}

// cause is the sentinel an entry built on an entry refused for why is
// refused with: ErrForked for the descendants of a refused fork,
// ErrBadLink otherwise.
func cause(why error) error {
	if errors.Is(why, ErrForked) {
		return ErrForked
	}
	return ErrBadLink
}

// dropBlocked rejects, recursively, the waiting entries of a rejected
// parent: they can never join. They are refused for the parent's reason
// (see cause), and recorded in refused.
func (s *State) dropBlocked(c cid.Cid, why error, refused map[cid.Cid]error, rd *Ready) {
	reason := cause(why)
	stack := []cid.Cid{c}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, w := range s.blocked[p] {
			if child := w.c; s.waiting[child] == w {
				s.unwait(child, w)
				err := fmt.Errorf("%w: parent %s was refused", reason, p)
				rd.Rejected = append(rd.Rejected, Rejected{CID: child, Author: w.e.Author, Err: err})
				refused[child] = err
				stack = append(stack, child)
			}
		}
		s.unblock(p)
	}
}

func (s *State) parentsIn(e *Entry) bool {
	for _, p := range e.Parents {
		if _, ok := s.metas[p]; !ok {
			return false
		}
	}
	return true
}

// accept checks e against its parents (all held) and adds it.
func (s *State) accept(e *Entry, rd *Ready) error {
	var clock uint64
	prev := e.Seq == 1
	for _, p := range e.Parents {
		pm := s.metas[p]
		clock = max(clock, pm.Clock)
		if pm.Author == e.Author {
			if pm.Seq >= e.Seq {
				return fmt.Errorf("%w: sequence number %d after the author's %d", ErrBadLink, e.Seq, pm.Seq)
			}
			prev = prev || pm.Seq == e.Seq-1
		}
	}
	if e.Clock != clock+1 {
		return fmt.Errorf("%w: clock %d, want %d", ErrBadLink, e.Clock, clock+1)
	}
	if err := s.checkParentEpochs(e); err != nil {
		return err
	}
	if !prev {
		return fmt.Errorf("%w: sequence number %d without the author's entry %d as a parent", ErrBadLink, e.Seq, e.Seq-1)
	}
	if s.widthFull(e.Author, e.Seq) {
		return s.errForked(e.Author, e.Seq)
	}
	fork := s.insert(e.CID(), e.Author, e.Seq, e.Clock, e.Epoch, e.Parents)
	if fork != nil {
		rd.Forks = append(rd.Forks, *fork)
	}
	return nil
}

// Restore adds an entry this node accepted before (read back from its
// store, in arrival order) without checking it again. Its parents must be
// held already. It returns the fork the entry reveals, if its author was
// not known to be forked.
func (s *State) Restore(e *Entry) (*Fork, error) {
	if _, ok := s.metas[e.CID()]; ok {
		return nil, nil
	}
	if !bytes.Equal(e.Cell, s.cell) {
		return nil, ErrOtherCell
	}
	if !s.parentsIn(e) {
		return nil, fmt.Errorf("%w: stored entry %s before its parents", ErrBadLink, e.CID())
	}
	return s.insert(e.CID(), e.Author, e.Seq, e.Clock, e.Epoch, e.Parents), nil
}

func (s *State) insert(c cid.Cid, author peer.ID, seq, clock, epoch uint64, parents []cid.Cid) *Fork {
	m := &Meta{CID: c, Author: author, Seq: seq, Clock: clock, Epoch: epoch, Parents: parents, Index: uint64(len(s.arrival))}
	s.metas[c] = m
	s.arrival = append(s.arrival, m)
	s.order = append(s.order, m.Pos())
	for _, p := range parents {
		delete(s.heads, p)
	}
	s.heads[c] = struct{}{}
	a := s.authors[author]
	if a == nil {
		a = &authorLog{}
		s.authors[author] = a
	}
	for uint64(len(a.seqs)) < seq {
		a.seqs = append(a.seqs, nil)
	}
	a.seqs[seq-1] = append(a.seqs[seq-1], c)
	if a.stale == 0 || seq < a.stale {
		a.stale = seq
	}
	if len(a.seqs[seq-1]) < 2 || (a.forkAt != 0 && a.forkAt <= seq) {
		return nil
	}
	// The evidence is the two smallest CIDs at the lowest forked sequence
	// number, so that States holding the same entries hold the same
	// evidence. (More than two are held only if restored from a store
	// written before the bound.)
	f := Fork{Author: author, Seq: seq, CIDs: SortCIDs(slices.Clone(a.seqs[seq-1]))[:2]}
	if a.forkAt != 0 {
		a.forkAt = seq
		s.forks[a.fork] = f // a lower fork of a forked author: not news
		return nil
	}
	a.forkAt, a.fork = seq, len(s.forks)
	s.forks = append(s.forks, f)
	return &f
}

// Heads returns the entries no other entry names as a parent, sorted.
func (s *State) Heads() []cid.Cid {
	return SortCIDs(slices.Collect(maps.Keys(s.heads)))
}

// Vector returns the highest sequence number held of every author.
func (s *State) Vector() Vector {
	v := make(Vector, len(s.authors))
	for a, l := range s.authors {
		v[a] = uint64(len(l.seqs))
	}
	return v
}

// Next returns the sequence number, clock and parents of author's next
// entry: its parents are the heads and the author's own last entry (so
// that its sequence numbers link up even when others built on it). If
// there are more heads than MaxParents allows, the latest are kept.
func (s *State) Next(author peer.ID, cell ed25519.PublicKey, epoch uint64) Draft {
	parents := s.Heads()
	var seq uint64
	if a := s.authors[author]; a != nil {
		seq = uint64(len(a.seqs))
		parents = append(parents, a.seqs[seq-1]...)
		parents = SortCIDs(parents)
	}
	if len(parents) > MaxParents {
		slices.SortFunc(parents, func(a, b cid.Cid) int { return s.metas[b].Pos().Compare(s.metas[a].Pos()) })
		var own []cid.Cid
		if seq > 0 {
			own = s.authors[author].seqs[seq-1]
		}
		keep := parents[:0]
		for i, p := range parents {
			if i < MaxParents-len(own) || slices.Contains(own, p) {
				keep = append(keep, p)
			}
		}
		parents = SortCIDs(keep)
	}
	var clock uint64
	for _, p := range parents {
		clock = max(clock, s.metas[p].Clock)
	}
	return Draft{Cell: cell, Seq: seq + 1, Clock: clock + 1, Parents: parents, Epoch: epoch}
}

// Missing returns, in chain order, the entries held here that a node
// holding v (with digests d, which may be nil) lacks. For an author whose
// digest in d differs from this node's at v's sequence number, the two hold
// different forks: it returns all of that author's entries. For an author
// with a fork here and no digest in d, it returns every entry from the fork
// on, since v alone cannot say which branch that node holds.
func (s *State) Missing(v Vector, d Digests) []cid.Cid {
	var out []*Meta
	for a, l := range s.authors {
		from := v[a]
		switch dig, ok := d[a]; {
		case ok && dig != Digest{} && from <= uint64(len(l.seqs)):
			if from > 0 && l.digest(from) != dig {
				from = 0
			}
		case l.forkAt != 0 && from >= l.forkAt:
			from = l.forkAt - 1
		}
		for seq := from + 1; seq <= uint64(len(l.seqs)); seq++ {
			for _, c := range l.seqs[seq-1] {
				out = append(out, s.metas[c])
			}
		}
	}
	slices.SortFunc(out, func(a, b *Meta) int { return a.Pos().Compare(b.Pos()) })
	cs := make([]cid.Cid, len(out))
	for i, m := range out {
		cs[i] = m.CID
	}
	return cs
}

// Digests returns the Digest of every author at this node's Vector.
func (s *State) Digests() Digests {
	d := make(Digests, len(s.authors))
	for a, l := range s.authors {
		d[a] = l.digest(uint64(len(l.seqs)))
	}
	return d
}

// Behind returns how many entries held here a node holding v lacks,
// forks aside.
func (s *State) Behind(v Vector) int {
	n := 0
	for a, l := range s.authors {
		if have := uint64(len(l.seqs)); have > v[a] {
			n += int(have - v[a])
		}
	}
	return n
}

// Ahead reports whether a node holding v (with digests d, which may be
// nil) holds an entry this one lacks: a higher sequence number of some
// author, or a digest that differs from this node's at v's sequence number
// (a fork).
func (s *State) Ahead(v Vector, d Digests) bool {
	for a, seq := range v {
		l := s.authors[a]
		if l == nil || uint64(len(l.seqs)) < seq {
			return true
		}
		if dig, ok := d[a]; ok && dig != (Digest{}) && seq > 0 && l.digest(seq) != dig {
			return true
		}
	}
	return false
}

// sortOrder merges the unsorted tail of the order into its sorted head.
func (s *State) sortOrder() {
	if s.sorted == len(s.order) {
		return
	}
	tail := s.order[s.sorted:]
	slices.SortFunc(tail, Pos.Compare)
	if s.sorted > 0 && s.order[s.sorted-1].Compare(tail[0]) > 0 {
		merged := make([]Pos, 0, len(s.order))
		a, b := s.order[:s.sorted], tail
		for len(a) > 0 && len(b) > 0 {
			if a[0].Compare(b[0]) <= 0 {
				merged, a = append(merged, a[0]), a[1:]
			} else {
				merged, b = append(merged, b[0]), b[1:]
			}
		}
		merged = append(append(merged, a...), b...)
		s.order = merged
	}
	s.sorted = len(s.order)
}

// Log returns up to limit entries in chain order, from the first after
// `after` (the zero Pos: from the start).
func (s *State) Log(after Pos, limit int) []cid.Cid {
	s.sortOrder()
	i, _ := slices.BinarySearchFunc(s.order, after, Pos.Compare)
	if i < len(s.order) && s.order[i].Compare(after) == 0 {
		i++
	}
	end := i + min(max(limit, 0), len(s.order)-i)
	out := make([]cid.Cid, 0, end-i)
	for _, p := range s.order[i:end] {
		out = append(out, p.CID)
	}
	return out
}

// Rank returns how many entries come before p in chain order.
func (s *State) Rank(p Pos) int {
	s.sortOrder()
	i, _ := slices.BinarySearchFunc(s.order, p, Pos.Compare)
	return i
}

// Arrivals returns up to limit entries in the order this node accepted
// them, from index from on. This order only grows: a reader that follows
// it misses nothing, where an entry that arrives late may take a place in
// chain order before a reader's cursor.
func (s *State) Arrivals(from uint64, limit int) []*Meta {
	if from >= uint64(len(s.arrival)) {
		return nil
	}
	end := min(uint64(len(s.arrival)), from+uint64(max(limit, 0)))
	return slices.Clone(s.arrival[from:end])
}
