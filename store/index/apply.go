package index

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/exopeer/exopeer/store"
)

// Arrival is one chain entry, in this node's arrival order: Index is its
// place in that order (0, 1, 2, ...), CID its content ID, Pos its place in
// the chain's order. The index does not retain Payload.
//
// Validated says that the caller has validated the documents of
// Payload's transaction against the index's registry already (an entry
// of this node's own writes, which Put validated before appending it):
// Apply then decodes the payload but does not validate its documents
// again. Only the writer of the entry may set it; an arrival from
// anywhere else (sync, another device) must leave it false, and is
// checked as store.State does.
type Arrival struct {
	Index     uint64
	CID       []byte
	Pos       store.Pos
	Payload   []byte
	Validated bool
}

// Checkpoint is how far Apply has gone: arrivals 0 to Next-1 are applied,
// Last is the CID of arrival Next-1 (nil when Next is 0).
type Checkpoint struct {
	Next uint64
	Last []byte
}

// Skip is a transaction that was not applied: arrival Index's
// transaction Tx (0 for an entry of one transaction, its index in a
// batch; -1 for a payload that does not split, store.Split, skipped
// whole). Reason is store.SkipDecode or store.SkipSchema, Err why.
type Skip struct {
	Index  uint64
	Tx     int
	Reason string
	Err    error
}

// Apply applies arrivals in one SQLite transaction that also advances the
// checkpoint, so a crash never half-applies them. as[0].Index must be the
// checkpoint's Next and the indexes consecutive (else ErrOrder, nothing
// applied). A payload that is not a store mutation (store.IsMutation) is
// ignored; a mutation's transactions (one, or a batch's: store.Split) are
// applied in their order, and one that does not decode, or with a
// document its schema refuses, is skipped alone (returned, counted in
// Stats.Skipped), as store.State does. Watches are refreshed after the commit, by the
// index's refresher: Apply does not wait for their queries. ctx is
// checked before each arrival (a canceled Apply rolls back, applying
// nothing); a statement under way is not interrupted. Safe for
// concurrent use (serialised); as is not retained.
func (ix *Index) Apply(ctx context.Context, as []Arrival) ([]Skip, error) {
	if len(as) == 0 {
		return nil, nil
	}
	ix.mu.Lock()
	skips, changed, err := ix.apply(ctx, as)
	ix.cp = nil
	if err == nil { // committed: the checkpoint is known without reading it
		last := as[len(as)-1]
		ix.cp = &Checkpoint{Next: last.Index + 1, Last: append([]byte{}, last.CID...)}
	}
	ix.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if changed {
		ix.kickRefresh()
	}
	return skips, nil
}

func (ix *Index) apply(ctx context.Context, as []Arrival) ([]Skip, bool, error) {
	if ix.closed {
		return nil, false, ErrClosed
	}
	cp, err := ix.checkpoint(ctx)
	if err != nil {
		return nil, false, err
	}
	for i, a := range as {
		if a.Index != cp.Next+uint64(i) {
			return nil, false, fmt.Errorf("index: apply: arrival %d at place %d, want %d: %w", a.Index, i, cp.Next+uint64(i), ErrOrder)
		}
	}
	// The statements run under a context that is never canceled: modernc
	// watches a cancelable one with a goroutine per statement (5% of a
	// store write's CPU). ctx is checked before the transaction and each
	// arrival instead; a canceled Apply rolls back.
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("index: apply: %w", err)
	}
	sctx := context.WithoutCancel(ctx)
	if _, err := ix.wc.ExecContext(sctx, `BEGIN IMMEDIATE`); err != nil {
		return nil, false, fmt.Errorf("index: apply: begin: %w", err)
	}
	w := writer{ix: ix, ctx: sctx, end: ctx, ents: make(map[store.EntityID]*entState)}
	skips, err := w.arrivals(as)
	if err == nil {
		w.settle()
		last := as[len(as)-1]
		err = w.exec(ix.st.addMeta, "live.traits", w.traits)
		if err == nil {
			err = w.exec(ix.st.addMeta, "live.entities", w.entities)
		}
		if err == nil {
			err = w.exec(ix.st.setMeta, "next", int64(last.Index+1))
		}
		if err == nil {
			err = w.exec(ix.st.setMeta, "last", append([]byte{}, last.CID...))
		}
	}
	if err == nil {
		ix.types.begin(w.types) // see TypesVersion
		_, err = ix.wc.ExecContext(sctx, `COMMIT`)
		ix.types.end(w.types)
	}
	if err != nil {
		_, rerr := ix.wc.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		return nil, false, errors.Join(fmt.Errorf("index: apply: %w", err), rerr)
	}
	return skips, w.changed, nil
}

// writer applies arrivals inside Apply's transaction.
type writer struct {
	ix *Index
	// ctx is the statements' context, never canceled; end is Apply's,
	// checked before each arrival.
	ctx, end context.Context
	changed  bool
	// ents caches what this transaction read or wrote of the entities
	// it touches: a transaction's operations are mostly on one entity.
	ents map[store.EntityID]*entState
	// traits and entities are the changes to the live counts so far.
	traits, entities int64
	// types are the trait types this transaction touched (types.go).
	types typeSet
}

// entState is an entity as the writer knows it: its tomb, and its number
// of live traits when first read and now.
type entState struct {
	tomb        *at
	live0, live int64
}

// maxEnts bounds writer.ents, whatever the batch.
const maxEnts = 4096

// ent returns entity e's state, reading it (one statement: its tomb and
// its live traits' count) the first time in this transaction.
func (w *writer) ent(e store.EntityID) (*entState, error) {
	if es, ok := w.ents[e]; ok {
		return es, nil
	}
	if len(w.ents) >= maxEnts {
		w.settle()
	}
	var clock sql.NullInt64
	var t at
	es := &entState{}
	if err := w.ix.st.getEntity.QueryRowContext(w.ctx, e[:]).Scan(&clock, &t.key, &t.op, &es.live0); err != nil {
		return nil, err
	}
	if clock.Valid {
		t.clock = uint64(clock.Int64)
		es.tomb = &t
	}
	es.live = es.live0
	w.ents[e] = es
	return es, nil
}

// settle folds the cached entities' changes into the entity count and
// empties the cache.
func (w *writer) settle() {
	for _, es := range w.ents {
		switch {
		case es.live0 == 0 && es.live > 0:
			w.entities++
		case es.live0 > 0 && es.live == 0:
			w.entities--
		}
	}
	clear(w.ents)
}

func (w *writer) exec(s *sql.Stmt, args ...any) error {
	_, err := s.ExecContext(w.ctx, args...)
	return err
}

func (w *writer) arrivals(as []Arrival) ([]Skip, error) {
	var skips []Skip
	for _, a := range as {
		if err := w.end.Err(); err != nil {
			return nil, err
		}
		if !store.IsMutation(a.Payload) {
			continue
		}
		parts, err := store.Split(a.Payload)
		if err != nil {
			skips = append(skips, Skip{Index: a.Index, Tx: -1, Reason: store.SkipDecode, Err: fmt.Errorf("%w: %w", store.ErrSkipped, err)})
			if err := w.exec(w.ix.st.addSkip, "skip."+store.SkipDecode); err != nil {
				return nil, err
			}
			continue
		}
		for t, p := range parts {
			reason, why := w.ix.check(p, a.Validated)
			if reason != "" {
				skips = append(skips, Skip{Index: a.Index, Tx: t, Reason: reason, Err: why.err})
				if err := w.exec(w.ix.st.addSkip, "skip."+reason); err != nil {
					return nil, err
				}
				continue
			}
			for i := range why.tx.Ops {
				if err := w.op(at{clock: a.Pos.Clock, key: []byte(a.Pos.Key), op: store.OpPlace(t, i)}, &why.tx.Ops[i]); err != nil {
					return nil, err
				}
			}
		}
	}
	return skips, nil
}

type checked struct {
	tx  store.Transaction
	err error
}

// check decodes and checks one transaction's encoding (a payload, or a
// part of a batch's) as store.State.ApplyTransaction does:
// a reason (store.SkipDecode, store.SkipSchema) and the error, or "" and
// the transaction. validated skips the documents' validation (see
// Arrival.Validated), not the decoding.
func (ix *Index) check(p []byte, validated bool) (string, checked) {
	tx, err := store.Decode(p) // Decode checks the transaction (Transaction.Check)
	if err != nil {
		return store.SkipDecode, checked{err: fmt.Errorf("%w: %w", store.ErrSkipped, err)}
	}
	if validated {
		return "", checked{tx: tx}
	}
	for i := range tx.Ops {
		o := &tx.Ops[i]
		if o.Kind != store.OpPutTrait {
			continue
		}
		if err := ix.reg.Validate(o.Trait.Type, o.Trait.Doc); err != nil {
			return store.SkipSchema, checked{err: fmt.Errorf("%w: op %d: %w", store.ErrSkipped, i, err)}
		}
	}
	return "", checked{tx: tx}
}

// at is an operation's place in the chain's order: its entry's position,
// then store.OpPlace of its transaction's index in the entry and its
// index in the transaction (as in store.State).
type at struct {
	clock uint64
	key   []byte
	op    int
}

func (a at) compare(b at) int {
	switch {
	case a.clock < b.clock:
		return -1
	case a.clock > b.clock:
		return 1
	}
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c
	}
	switch {
	case a.op < b.op:
		return -1
	case a.op > b.op:
		return 1
	}
	return 0
}

// row is what the writer reads of a trait's row.
type row struct {
	id     int64
	at     at
	dead   bool
	text   bool
	firsts []byte
}

func scanRow(sc interface{ Scan(...any) error }) (row, error) {
	var r row
	var clock int64
	if err := sc.Scan(&r.id, &clock, &r.at.key, &r.at.op, &r.dead, &r.text, &r.firsts); err != nil {
		return row{}, err
	}
	r.at.clock = uint64(clock)
	return r, nil
}

// op applies one checked operation at a, with store.State's rule: every
// row of an entity is after its latest delete; per trait the latest write
// wins.
func (w *writer) op(a at, o *store.Op) error {
	st := &w.ix.st
	ent := o.Entity[:]
	es, err := w.ent(o.Entity)
	if err != nil {
		return err
	}
	if o.Kind == store.OpDeleteEntity {
		if es.tomb != nil && es.tomb.compare(a) >= 0 {
			return nil
		}
		if err := w.touchEntity(ent); err != nil {
			return err
		}
		if err := w.exec(st.setTomb, ent, int64(a.clock), a.key, a.op); err != nil {
			return err
		}
		es.tomb = &a
		rows, err := w.entityRows(ent)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.at.compare(a) >= 0 {
				if !r.dead { // the delete is the latest before it now
					if err := w.cutFirsts(r, a, false, ""); err != nil {
						return err
					}
				}
				continue
			}
			if err := w.drop(r); err != nil {
				return err
			}
			if err := w.exec(st.delTrait, r.id); err != nil {
				return err
			}
			if !r.dead {
				es.live--
				w.traits--
			}
		}
		w.changed = true
		return nil
	}
	if es.tomb != nil && a.compare(*es.tomb) < 0 {
		return nil
	}
	// The live count's change if this operation wins: a put makes the
	// trait live, a delete-trait dead (from a new row: nothing live).
	var delta int64
	if o.Kind == store.OpPutTrait {
		delta = 1
	}
	// A new row first: when the trait has none (the common case) this
	// insert is the only statement; when it has one, it does nothing and
	// the row is read and compared.
	t := &o.Trait
	var ex extracted
	var ins []any
	var fs firsts
	if o.Kind == store.OpDeleteTrait {
		ins = []any{ent, string(t.ID), "", nil, nil, nil, int64(a.clock), a.key, a.op, 1, false, nil}
	} else {
		ex = w.ix.extract(t.Type, t.Doc)
		if !t.Created.IsZero() {
			fs.add(a, t.Created)
		}
		ins = []any{ent, string(t.ID), t.Type, []byte(t.Doc), timeKey(t.Created), timeKey(t.Modified), int64(a.clock), a.key, a.op, 0, ex.text != "", fs.encode()}
	}
	res, err := st.insTrait.ExecContext(w.ctx, ins...)
	if err != nil {
		return err
	}
	var id int64
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 1 {
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
	} else {
		old, err := scanTrait(st.getTrait.QueryRowContext(w.ctx, ent, string(t.ID)))
		if err != nil {
			return err
		}
		switch c := old.at.compare(a); {
		case c == 0:
			return nil // this write again
		case c > 0: // a later write holds the trait
			if old.dead {
				return nil
			}
			if o.Kind == store.OpDeleteTrait {
				return w.cutFirsts(old.row, a, true, old.typ)
			}
			return w.addFirst(old.row, a, t.Created, old.typ)
		}
		if o.Kind == store.OpPutTrait {
			// The trait's earlier puts since its latest delete keep
			// their Created.
			if old.dead {
				fs = firsts{hasDel: true, del: old.at}
			} else if fs, err = decodeFirsts(old.firsts); err != nil {
				return err
			}
			if !t.Created.IsZero() {
				fs.add(a, t.Created)
			}
			ins[4], ins[11] = timeKey(fs.created()), fs.encode()
		}
		if !old.dead {
			w.touch(old.typ) // the type it had, which this write replaces
		}
		if o.Kind == store.OpPutTrait && !old.dead {
			// A live trait written again (a message's state): only
			// what changed of its terms and text is rewritten.
			if ex.terms, ex.text, err = w.rewrite(old, ex, timeKey(t.Modified)); err != nil {
				return err
			}
		} else if err := w.drop(old.row); err != nil {
			return err
		}
		id = old.id
		if err := w.exec(st.updTrait, append(ins[2:], id)...); err != nil {
			return err
		}
		if !old.dead {
			delta--
		}
	}
	w.changed = true
	if o.Kind == store.OpPutTrait {
		w.touch(t.Type)
	}
	es.live += delta
	w.traits += delta
	var mod []byte
	if len(ex.terms) > 0 {
		mod = timeKey(t.Modified)
	}
	// The trait's terms in statements of up to maxTermRows rows: a
	// statement per row was a third of indexing's statements.
	for terms := ex.terms; len(terms) > 0; {
		n := min(len(terms), maxTermRows)
		stmt, err := w.ix.termStmt(w.ctx, n)
		if err != nil {
			return err
		}
		args := make([]any, 0, 5*n)
		for _, tm := range terms[:n] {
			args = append(args, id, tm.field, tm.v, ent, mod)
		}
		if err := w.exec(stmt, args...); err != nil {
			return err
		}
		terms = terms[n:]
	}
	if ex.text != "" {
		return w.exec(st.insText, id, ex.text)
	}
	return nil
}

func (w *writer) entityRows(ent []byte) ([]row, error) {
	rs, err := w.ix.st.entityTraits.QueryContext(w.ctx, ent)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		r, err := scanRow(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

// drop removes what a live row indexed (its terms and text).
func (w *writer) drop(r row) error {
	if r.dead {
		return nil
	}
	if err := w.exec(w.ix.st.delTerms, r.id); err != nil {
		return err
	}
	if r.text {
		return w.exec(w.ix.st.delText, r.id)
	}
	return nil
}

// timeKey encodes t (years 0 to 9999, and a day around them) in 12 bytes
// that sort as the instants do: seconds since year 0, then nanoseconds,
// big-endian.
func timeKey(t time.Time) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint64(b, uint64(t.Unix()-minUnix))
	binary.BigEndian.PutUint32(b[8:], uint32(t.Nanosecond()))
	return b
}

// keyTime decodes timeKey.
func keyTime(b []byte) (time.Time, error) {
	if len(b) != 12 {
		return time.Time{}, fmt.Errorf("index: time of %d bytes", len(b))
	}
	return time.Unix(int64(binary.BigEndian.Uint64(b))+minUnix, int64(binary.BigEndian.Uint32(b[8:]))).UTC(), nil
}

const minUnix = -62167219200 - 86400 // 0000-01-01T00:00:00Z, less a day of time zones

// field is one indexed field of a registered type.
type field struct {
	id   int64
	typ  string
	name string
	kind store.IndexKind
	list bool
	kept bool // store.Field.Kept: no term, no query
}

// fieldMap numbers the registered types' fields (the terms' field column),
// in type then schema order: the same for the same schemas, which the
// fingerprint guarantees.
type fieldMap struct {
	byName map[string]map[string]field // type, field name
	refs   []field
}

func newFieldMap(reg *store.Registry) fieldMap {
	m := fieldMap{byName: make(map[string]map[string]field)}
	var n int64
	for _, s := range reg.Types() {
		fs := make(map[string]field, len(s.Fields))
		for _, f := range s.Fields {
			n++
			fd := field{id: n, typ: s.Type, name: f.Name, kind: f.Kind, list: f.List, kept: f.Kept}
			fs[f.Name] = fd
			if f.Kind == store.Reference && !f.Kept {
				m.refs = append(m.refs, fd)
			}
		}
		m.byName[s.Type] = fs
	}
	return m
}

// textValue converts a field's value in text form (a document's string, a
// predicate's value) to what terms hold.
func textValue(k store.IndexKind, s string) (any, bool) {
	switch k {
	case store.Keyword, store.Text:
		return s, true
	case store.Time:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, false
		}
		return timeKey(t), true
	case store.Reference:
		id, err := store.ParseEntityID(s)
		if err != nil {
			return nil, false
		}
		return id[:], true
	case store.Number:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, false
		}
		if !json.Valid([]byte(s)) {
			return nil, false
		}
		return f, true
	}
	return nil, false
}
