package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Pos is a chain entry's place in the chain's order, given by the caller:
// chain.Pos{Clock, CID} is Pos{Clock: Clock, Key: string(CID.Bytes())}, and
// Compare orders both the same way. Positions of distinct entries differ.
type Pos struct {
	Clock uint64
	Key   string
}

// Compare orders positions: -1 if p is before q, 0 if equal, +1 after.
func (p Pos) Compare(q Pos) int {
	if c := cmp.Compare(p.Clock, q.Clock); c != 0 {
		return c
	}
	return cmp.Compare(p.Key, q.Key)
}

// at is an operation's place in the order: its entry's position, then
// OpPlace of its transaction's index in the entry and its index in the
// transaction.
type at struct {
	pos Pos
	op  int
}

func (a at) compare(b at) int {
	if c := a.pos.Compare(b.pos); c != 0 {
		return c
	}
	return cmp.Compare(a.op, b.op)
}

// slot is the winning write of one trait: a put (trait set) or a tombstone.
// A live slot also keeps the latest delete of the trait before it (del,
// when hasDel) and firsts, the puts since that delete (and the entity's)
// that a later delete could leave the earliest Created: see firsts.
type slot struct {
	at     at
	dead   bool
	trait  Trait
	hasDel bool
	del    at
	firsts []first
}

// first is a put with a Created time: its place and that time.
type first struct {
	at      at
	created time.Time
}

// addFirst adds the put at a, created at c (not zero), to fs, the puts
// that no other put dominates (one after it in chain order with a Created
// as early or earlier: every delete that leaves the first leaves the
// other, which is no later; or one of the same entry with an earlier
// Created, or as early and before it: no other entry sorts between two
// operations of one entry, so a delete leaves both or neither, and one
// of the entry's own deletes is applied in its order, before the puts
// after it). fs is in chain order, so their Created times increase
// strictly, one put an entry at most: fs[0] is the earliest. The same
// put twice changes nothing.
func addFirst(fs []first, a at, c time.Time) []first {
	for _, f := range fs {
		if f.at.compare(a) == 0 || dominates(f.at, f.created, a, c) {
			return fs
		}
	}
	out := make([]first, 0, len(fs)+1)
	for _, f := range fs {
		if dominates(a, c, f.at, f.created) {
			continue // dominated by the new one
		}
		out = append(out, f)
	}
	i, _ := slices.BinarySearchFunc(out, a, func(f first, a at) int { return f.at.compare(a) })
	return slices.Insert(out, i, first{at: a, created: c})
}

// dominates reports whether the put at a created at c makes the one at b
// created at d count for nothing in a trait's Created (addFirst).
func dominates(a at, c time.Time, b at, d time.Time) bool {
	if a.pos.Compare(b.pos) == 0 { // one entry
		return c.Before(d) || c.Equal(d) && a.op < b.op
	}
	return a.compare(b) > 0 && !c.After(d)
}

// cutFirsts drops the puts of fs before a (a delete at a).
func cutFirsts(fs []first, a at) []first {
	i, _ := slices.BinarySearchFunc(fs, a, func(f first, a at) int { return f.at.compare(a) })
	return slices.Clone(fs[i:])
}

// settle sets the slot's Created: the earliest of its puts' since the
// delete, or the winning put's own (zero) when none has one.
func (sl *slot) settle(own time.Time) {
	if len(sl.firsts) > 0 {
		sl.trait.Created = sl.firsts[0].created
	} else {
		sl.trait.Created = own
	}
}

// entity is everything State keeps of one entity: the latest delete-entity
// (deleted false if none) and, for each trait, its latest write after it.
type entity struct {
	deleted bool
	del     at
	traits  map[TraitID]slot
}

// Skip reasons, the keys of Stats.Skipped.
const (
	SkipDecode = "decode" // the payload does not decode (Decode's errors)
	SkipSchema = "schema" // a document does not match its registered schema
)

// ErrSkipped is an entry whose mutation was not applied; the error says why.
var ErrSkipped = errors.New("store: mutation skipped")

// Stats counts what State was given.
type Stats struct {
	// Applied is the number of transactions applied (a batch entry's
	// counted one by one).
	Applied int
	// Ops is the number of operations in them.
	Ops int
	// Skipped counts the transactions skipped, by reason (SkipDecode,
	// SkipSchema); a payload that does not split (Split) counts once.
	Skipped map[string]int
}

// State is the store's convergent state: a pure reducer of positioned
// mutations. Its state depends on the set of entries applied, not on the
// order they arrived in (see the package doc). The zero State is not
// ready: use NewState. Not safe for concurrent use.
type State struct {
	reg      *Registry
	entities map[EntityID]*entity
	stats    Stats
}

// NewState returns an empty state that validates documents with reg.
func NewState(reg *Registry) *State {
	return &State{reg: reg, entities: make(map[EntityID]*entity), stats: Stats{Skipped: make(map[string]int)}}
}

// Apply decodes the payload of the chain entry at pos and applies it: its
// transaction, or each transaction of a batch (Split) on its own, in
// their order. A transaction that does not decode, or with a document its
// schema refuses, changes nothing and is counted in Stats.Skipped; the
// others of its batch apply. A payload that does not split is skipped
// whole (counted once, as SkipDecode). Apply returns the skips as an
// error wrapping ErrSkipped and each cause (nil when nothing was
// skipped). Applying the same entry twice is harmless. p is not retained.
func (s *State) Apply(pos Pos, p []byte) error {
	parts, err := Split(p)
	if err != nil {
		s.stats.Skipped[SkipDecode]++
		return fmt.Errorf("%w at %d: %w", ErrSkipped, pos.Clock, err)
	}
	if len(parts) == 1 {
		tx, err := Decode(p)
		if err != nil {
			s.stats.Skipped[SkipDecode]++
			return fmt.Errorf("%w at %d: %w", ErrSkipped, pos.Clock, err)
		}
		return s.applyTransaction(pos, 0, tx)
	}
	var errs []error
	for i, part := range parts {
		tx, err := Decode(part)
		if err == nil {
			err = s.applyTransaction(pos, i, tx)
		} else {
			s.stats.Skipped[SkipDecode]++
			err = fmt.Errorf("%w at %d: %w", ErrSkipped, pos.Clock, err)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("transaction %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// ApplyTransaction applies a decoded transaction at pos (an entry's only
// transaction), all or nothing: it is checked whole (Transaction.Check,
// and every put's document against its schema) before any operation is
// applied. It retains tx's documents.
func (s *State) ApplyTransaction(pos Pos, tx Transaction) error {
	return s.applyTransaction(pos, 0, tx)
}

// applyTransaction applies tx, the n-th transaction of the entry at pos.
func (s *State) applyTransaction(pos Pos, n int, tx Transaction) error {
	if err := tx.Check(); err != nil {
		s.stats.Skipped[SkipDecode]++
		return fmt.Errorf("%w at %d: %w", ErrSkipped, pos.Clock, err)
	}
	for i := range tx.Ops {
		o := &tx.Ops[i]
		if o.Kind != OpPutTrait {
			continue
		}
		if err := s.reg.Validate(o.Trait.Type, o.Trait.Doc); err != nil {
			s.stats.Skipped[SkipSchema]++
			return fmt.Errorf("%w at %d: op %d: %w", ErrSkipped, pos.Clock, i, err)
		}
	}
	for i := range tx.Ops {
		s.apply(at{pos: pos, op: OpPlace(n, i)}, &tx.Ops[i])
	}
	s.stats.Applied++
	s.stats.Ops += len(tx.Ops)
	return nil
}

// apply applies one checked operation at a. Invariant: every slot of an
// entity is after its delete (when it has one); so a write before the
// delete is dropped, and a delete drops the slots before it. A live
// slot's trait has the winning put's type, document and Modified, and the
// earliest Created of the puts of the trait after its latest delete
// (firsts: a put before the winner still counts, a late delete cuts).
func (s *State) apply(a at, o *Op) {
	e := s.entities[o.Entity]
	if e == nil {
		e = &entity{traits: make(map[TraitID]slot)}
		s.entities[o.Entity] = e
	}
	if o.Kind == OpDeleteEntity {
		if e.deleted && e.del.compare(a) >= 0 {
			return
		}
		e.deleted, e.del = true, a
		for tid, sl := range e.traits {
			switch {
			case sl.at.compare(a) < 0:
				delete(e.traits, tid)
			case !sl.dead:
				// The entity's delete is the latest before the winner
				// now, when the trait's is before it.
				own := sl.ownCreated()
				if sl.hasDel && sl.del.compare(a) < 0 {
					sl.hasDel, sl.del = false, at{}
				}
				sl.firsts = cutFirsts(sl.firsts, a)
				sl.settle(own)
				e.traits[tid] = sl
			}
		}
		return
	}
	if e.deleted && a.compare(e.del) < 0 {
		return
	}
	old, ok := e.traits[o.Trait.ID]
	if ok && old.at.compare(a) == 0 {
		return // this operation again
	}
	if ok && old.at.compare(a) > 0 { // a later write holds the trait
		if old.dead || old.hasDel && old.del.compare(a) > 0 {
			return // a put or delete before the trait's latest delete
		}
		own := old.ownCreated()
		if o.Kind == OpDeleteTrait {
			old.hasDel, old.del = true, a
			old.firsts = cutFirsts(old.firsts, a)
		} else if !o.Trait.Created.IsZero() {
			old.firsts = addFirst(old.firsts, a, o.Trait.Created)
		}
		old.settle(own)
		e.traits[o.Trait.ID] = old
		return
	}
	if o.Kind == OpDeleteTrait {
		e.traits[o.Trait.ID] = slot{at: a, dead: true}
		return
	}
	sl := slot{at: a, trait: o.Trait}
	switch {
	case ok && old.dead:
		sl.hasDel, sl.del = true, old.at
	case ok:
		sl.hasDel, sl.del, sl.firsts = old.hasDel, old.del, old.firsts
	}
	if !o.Trait.Created.IsZero() {
		sl.firsts = addFirst(sl.firsts, a, o.Trait.Created)
	}
	sl.settle(o.Trait.Created)
	e.traits[o.Trait.ID] = sl
}

// ownCreated is the winning put's own Created: the last of firsts when it
// is the winner's, else zero (a put with no Created is never in firsts).
func (sl *slot) ownCreated() time.Time {
	if n := len(sl.firsts); n > 0 && sl.firsts[n-1].at.compare(sl.at) == 0 {
		return sl.firsts[n-1].created
	}
	return time.Time{}
}

// Get returns entity id's live traits in TraitID order, and false if it has
// none (never written, deleted, or all its traits deleted). The traits'
// documents are shared with the state: the caller must not modify them.
func (s *State) Get(id EntityID) (Entity, bool) {
	e := s.entities[id]
	if e == nil {
		return Entity{}, false
	}
	ent := Entity{ID: id}
	for _, tid := range slices.Sorted(maps.Keys(e.traits)) {
		if sl := e.traits[tid]; !sl.dead {
			ent.Traits = append(ent.Traits, sl.trait)
		}
	}
	if len(ent.Traits) == 0 {
		return Entity{}, false
	}
	return ent, true
}

// Entities returns the IDs of the entities with live traits, sorted.
func (s *State) Entities() []EntityID {
	var ids []EntityID
	for id := range s.entities {
		if _, ok := s.Get(id); ok {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b EntityID) int { return cmpString(string(a[:]), string(b[:])) })
	return ids
}

// Stats returns the counts so far (a copy).
func (s *State) Stats() Stats {
	st := s.stats
	st.Skipped = maps.Clone(s.stats.Skipped)
	return st
}

// Canonical returns an encoding of the whole state, tombstones and their
// positions included, that depends only on the state: two states are equal
// exactly when their canonical encodings are. It is for comparing states
// (tests, and nodes checking that they agree), not a storage format.
func (s *State) Canonical() []byte {
	var b []byte
	ids := slices.SortedFunc(maps.Keys(s.entities), func(a, b EntityID) int { return cmpString(string(a[:]), string(b[:])) })
	for _, id := range ids {
		e := s.entities[id]
		if !e.deleted && len(e.traits) == 0 {
			continue
		}
		b = append(b, id[:]...)
		if e.deleted {
			b = append(b, 1)
			b = appendAt(b, e.del)
		} else {
			b = append(b, 0)
		}
		b = binary.AppendUvarint(b, uint64(len(e.traits)))
		for _, tid := range slices.Sorted(maps.Keys(e.traits)) {
			sl := e.traits[tid]
			b = appendAt(b, sl.at)
			if sl.dead {
				b = append(b, byte(OpDeleteTrait))
				b = appendString(b, string(tid))
				continue
			}
			b = appendOp(b, &Op{Kind: OpPutTrait, Entity: id, Trait: sl.trait})
			if sl.hasDel {
				b = append(b, 1)
				b = appendAt(b, sl.del)
			} else {
				b = append(b, 0)
			}
			b = binary.AppendUvarint(b, uint64(len(sl.firsts)))
			for _, f := range sl.firsts {
				b = appendAt(b, f.at)
				b = appendTime(b, f.created)
			}
		}
	}
	return b
}

func appendAt(b []byte, a at) []byte {
	b = binary.AppendUvarint(b, a.pos.Clock)
	b = appendString(b, a.pos.Key)
	return binary.AppendUvarint(b, uint64(a.op))
}
