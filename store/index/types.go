package index

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"

	"github.com/exopeer/exopeer/store"
)

// Versions by trait type: which types each commit touched, so that a
// reader (a watch, a cache of one type's entities) knows without SQLite
// whether anything of its types changed since it last looked.
//
// A commit touches the type of each trait it puts, of each live trait
// it replaces or deletes, and of each live trait of an entity it deletes
// (Reset touches every type). Each registered type has a slot, and so do
// the first maxExtraTypes other types a commit touches; the types beyond
// share one; one more slot moves with every commit that touches any type.
// So the memory is bounded, whatever types the chain carries.

// typeSeq numbers the versions of every Index of the process. A commit
// gives the slots it touched the next number, and an Index's slots start
// above every number given before: a number is never given twice, so a
// version read from an index closed and opened again (or from another
// cell's) never equals one of the new index.
var typeSeq atomic.Uint64

// The fixed slots.
const (
	slotAny   = 0 // moves with every commit that touches any type
	slotOther = 1 // the types without a schema beyond maxExtraTypes, shared
	slotFirst = 2 // the registered types', in registry order, then the others'
)

// maxExtraTypes bounds the types without a schema that have a slot of
// their own.
const maxExtraTypes = 64

// typeSlot is one type's (or a group's) version.
type typeSlot struct {
	v atomic.Uint64
	// busy counts the commits touching the slot between the start of
	// their COMMIT and the new version: while it is not 0, the data a
	// reader queries may be newer than v says.
	busy atomic.Int32
}

// typeVersions are an Index's slots. byType, the registered types', is
// fixed at Open; extra, the other types', grows (by copy: readers load
// it without a lock) as commits touch them, up to maxExtraTypes.
type typeVersions struct {
	byType map[string]int
	extra  atomic.Pointer[map[string]int]
	slots  []typeSlot
}

func newTypeVersions(reg *store.Registry) *typeVersions {
	ss := reg.Types()
	tv := &typeVersions{byType: make(map[string]int, len(ss)), slots: make([]typeSlot, slotFirst+len(ss)+maxExtraTypes)}
	tv.extra.Store(&map[string]int{})
	for i, s := range ss {
		tv.byType[s.Type] = slotFirst + i
	}
	start := typeSeq.Add(1)
	for i := range tv.slots {
		tv.slots[i].v.Store(start)
	}
	return tv
}

// slot returns typ's slot.
func (tv *typeVersions) slot(typ string) int {
	if i, ok := tv.byType[typ]; ok {
		return i
	}
	if i, ok := (*tv.extra.Load())[typ]; ok {
		return i
	}
	return slotOther
}

// touchSlot returns the slot of typ, which a commit touches: a type
// without a schema and without a slot takes a new one while there are
// any left. The new slot starts at a new number, above the number of
// slotOther that readers of typ read until now, so their version moves.
// Called by the writer only (under the index's mu).
func (tv *typeVersions) touchSlot(typ string) int {
	if i := tv.slot(typ); i != slotOther {
		return i
	}
	old := *tv.extra.Load()
	if len(old) >= maxExtraTypes {
		return slotOther
	}
	i := slotFirst + len(tv.byType) + len(old)
	tv.slots[i].v.Store(typeSeq.Add(1))
	m := make(map[string]int, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[typ] = i
	tv.extra.Store(&m)
	return i
}

// version returns the version of the slots (nil: slotAny): the largest
// of their numbers, which changes whenever a commit touches one of them
// (a commit's number is above every earlier one); while a commit
// touching one is under way, a number never given before nor after, so
// that it matches nothing a reader kept.
func (tv *typeVersions) version(slots []int) uint64 {
	if slots == nil {
		slots = []int{slotAny}
	}
	var v uint64
	for _, i := range slots {
		s := &tv.slots[i]
		// busy before v: a commit marks busy, commits, then moves v
		// and clears busy; a reader that sees busy clear reads a v at
		// least as new as the data its query will read.
		if s.busy.Load() != 0 {
			return typeSeq.Add(1)
		}
		v = max(v, s.v.Load())
	}
	return v
}

// begin marks the slots of set busy, before a COMMIT.
func (tv *typeVersions) begin(set typeSet) {
	if set.empty() {
		return
	}
	tv.slots[slotAny].busy.Add(1)
	for i := range set.each(len(tv.slots)) {
		tv.slots[i].busy.Add(1)
	}
}

// end gives the slots of set a new number and clears what begin marked,
// after the COMMIT (committed or not: a version that moves for nothing
// costs a reader one query).
func (tv *typeVersions) end(set typeSet) {
	if set.empty() {
		return
	}
	n := typeSeq.Add(1)
	tv.slots[slotAny].v.Store(n)
	tv.slots[slotAny].busy.Add(-1)
	for i := range set.each(len(tv.slots)) {
		tv.slots[i].v.Store(n)
		tv.slots[i].busy.Add(-1)
	}
}

// all returns the set of every slot.
func (tv *typeVersions) all() typeSet {
	var s typeSet
	for i := range tv.slots {
		s.add(i)
	}
	return s
}

// deps returns the types whose commits may change q's pages: q.Type
// and those of the traits it returns; nil (every commit) for a query of
// any type, one that returns every trait (an entity of q.Type may gain
// a trait of any type), or a full-text one (a rank depends on every
// text indexed). They are types, not slots: a type without a schema
// gets a slot of its own with the first commit that touches it, after
// a watch of it began, so its slot is looked up at each refresh.
func deps(q store.Query) []string {
	if q.Type == "" || q.Traits == nil || q.Match != "" {
		return nil
	}
	return append([]string{q.Type}, q.Traits...)
}

// typesVersion is the version of types' slots, as they are now (nil:
// slotAny).
func (tv *typeVersions) typesVersion(types []string) uint64 {
	if types == nil {
		return tv.version(nil)
	}
	slots := make([]int, 0, 4)
	for _, t := range types {
		slots = append(slots, tv.slot(t))
	}
	return tv.version(slots)
}

// typeSet is a set of slots, a bit each.
type typeSet []uint64

func (s *typeSet) add(i int) {
	for len(*s) <= i/64 {
		*s = append(*s, 0)
	}
	(*s)[i/64] |= 1 << (i % 64)
}

func (s typeSet) empty() bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}

// each yields the slots in s, below n.
func (s typeSet) each(n int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for i := range min(n, 64*len(s)) {
			if s[i/64]&(1<<(i%64)) != 0 && !yield(i) {
				return
			}
		}
	}
}

// TypesVersion returns a number that changes whenever a commit touches
// one of types (a put or delete of a trait of one of them, or the
// delete of an entity holding one; a Reset touches all), or any type
// when types is empty. It is moved before Apply returns, so a caller
// that wrote and applied reads a new one; while a commit touching them
// is under way it returns a number never returned before, nor after. So
// a reader may keep what it read of these types under the number it got
// just before reading, and use it as long as the number is the same. It
// reads no SQLite; safe for concurrent use. A type without a schema
// has a number of its own from the first commit that touches it (the
// first maxExtraTypes such types; those beyond share one), so a caller
// looks its types up at each call, as a watch does at each refresh.
func (ix *Index) TypesVersion(types ...string) uint64 {
	if len(types) == 0 {
		return ix.types.version(nil)
	}
	return ix.types.typesVersion(types)
}

// touch adds typ to the types this Apply touched.
func (w *writer) touch(typ string) {
	w.types.add(w.ix.types.touchSlot(typ))
}

// touchEntity adds the types of entity ent's live traits, before a
// delete of the entity deletes them.
func (w *writer) touchEntity(ent []byte) error {
	st, err := w.ix.typeStmt(w.ctx, 0, `SELECT DISTINCT type FROM traits WHERE entity = ? AND dead = 0`)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(w.ctx, ent)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			return err
		}
		w.touch(typ)
	}
	return rows.Err()
}

// typeStmt returns the writer's statement i of the types' reads,
// preparing it the first time. The caller holds ix.mu.
func (ix *Index) typeStmt(ctx context.Context, i int, q string) (*sql.Stmt, error) {
	if st := ix.typeStmts[i]; st != nil {
		return st, nil
	}
	st, err := ix.wc.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("index: prepare %.40q: %w", q, err)
	}
	ix.typeStmts[i] = st
	return st, nil
}

// closeTypeStmts closes the statements typeStmt prepared. The caller
// holds ix.mu.
func (ix *Index) closeTypeStmts() {
	for i, st := range ix.typeStmts {
		if st != nil {
			st.Close()
		}
		ix.typeStmts[i] = nil
	}
}
