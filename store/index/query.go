package index

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/exopeer/exopeer/store"
)

// Get returns entity id's live traits in TraitID order, or an error
// wrapping store.ErrNotFound when it has none. traits is a projection as
// Query.Traits: nil for every live trait, else only those of these types
// (an entity with live traits of none of them is returned without
// traits). ctx bounds the wait for a reader; the read itself, one
// entity's rows, is not interrupted. Safe for concurrent use.
func (ix *Index) Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error) {
	if traits != nil {
		if err := checkProjection(traits); err != nil {
			return store.Entity{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return store.Entity{}, fmt.Errorf("index: get %s: %w", id, err)
	}
	r, err := ix.read(ctx)
	if err != nil {
		return store.Entity{}, err
	}
	defer r.Rollback()
	// Not under ctx: modernc watches a cancelable context with a
	// goroutine per statement, which made a Get 1.6 times as long.
	ents, err := fetch(context.WithoutCancel(ctx), r, []store.EntityID{id}, traits == nil, traits)
	if err != nil {
		return store.Entity{}, err
	}
	if ents[0] == nil {
		return store.Entity{}, fmt.Errorf("index: get %s: %w", id, store.ErrNotFound)
	}
	return *ents[0], nil
}

// read takes a reader in a read transaction: one snapshot for the whole
// answer. The caller gives it back with its Rollback.
func (ix *Index) read(ctx context.Context) (*reader, error) {
	select {
	case <-ix.done:
		return nil, ErrClosed
	default:
	}
	return ix.rd.acquire(ctx, ix.done)
}

// fetch returns the entities of ids (nil for one without live traits),
// with the traits of the projection (all, or of the types in only).
//
// The IN list has a power of two of parameters (the last ID repeated),
// so that a few statement texts serve every page size.
func fetch(ctx context.Context, r *reader, ids []store.EntityID, all bool, only []string) ([]*store.Entity, error) {
	out := make([]*store.Entity, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	at := make(map[store.EntityID]int, len(ids))
	args := make([]any, 1<<bits.Len(uint(len(ids)-1)))
	for i, id := range ids {
		at[id] = i
		args[i] = id[:]
	}
	for i := len(ids); i < len(args); i++ {
		args[i] = args[len(ids)-1]
	}
	rows, err := r.query(ctx, fetchSQL(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("index: fetch: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ent []byte
		var t store.Trait
		var created, modified []byte
		var doc []byte
		if err := rows.Scan(&ent, &t.ID, &t.Type, &doc, &created, &modified); err != nil {
			return nil, fmt.Errorf("index: fetch: %w", err)
		}
		var id store.EntityID
		copy(id[:], ent)
		i, ok := at[id]
		if !ok {
			continue
		}
		if out[i] == nil {
			out[i] = &store.Entity{ID: id}
		}
		if !all && !slices.Contains(only, t.Type) {
			continue
		}
		t.Doc = json.RawMessage(doc)
		if t.Created, err = keyTime(created); err != nil {
			return nil, err
		}
		if t.Modified, err = keyTime(modified); err != nil {
			return nil, err
		}
		out[i].Traits = append(out[i].Traits, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: fetch: %w", err)
	}
	return out, nil
}

// fetchSQLs[i] is fetch's statement for 1<<i IDs: up to 1,024, more
// than a page (store.MaxLimit+1) holds.
var fetchSQLs = func() (qs [11]string) {
	for i := range qs {
		qs[i] = `SELECT entity, trait, type, doc, created, modified FROM traits WHERE dead = 0 AND entity IN (?` +
			strings.Repeat(", ?", 1<<i-1) + `) ORDER BY entity, trait`
	}
	return qs
}()

// fetchSQL is fetch's statement for n IDs, n a power of two.
func fetchSQL(n int) string {
	if i := bits.Len(uint(n)) - 1; i < len(fetchSQLs) {
		return fetchSQLs[i]
	}
	return `SELECT entity, trait, type, doc, created, modified FROM traits WHERE dead = 0 AND entity IN (?` +
		strings.Repeat(", ?", n-1) + `) ORDER BY entity, trait`
}

// Query runs q: validated first against the registry (errors wrap
// store.ErrQuery and name the part at fault), then answered from one
// snapshot of the index, reading at most Limit+1 hits. Safe for
// concurrent use.
func (ix *Index) Query(ctx context.Context, q store.Query) (store.Page, error) {
	p, err := ix.compile(q)
	if err != nil {
		return store.Page{}, err
	}
	return ix.run(ctx, p)
}

func (ix *Index) run(ctx context.Context, p *plan) (store.Page, error) {
	r, err := ix.read(ctx)
	if err != nil {
		return store.Page{}, err
	}
	defer r.Rollback()
	if p.refers != nil && len(p.refFields) == 0 {
		return store.Page{Hits: []store.Hit{}}, nil // no type has a reference field
	}
	var hits []hit
	if p.ranks() {
		hits, err = p.rankedHits(ctx, r)
	} else {
		hits, err = p.hits(ctx, r)
	}
	if err != nil {
		return store.Page{}, fmt.Errorf("index: query: %w", err)
	}
	page := store.Page{Hits: []store.Hit{}}
	if len(hits) > p.limit {
		hits = hits[:p.limit]
		last := hits[len(hits)-1]
		page.Next = cursor{fp: p.fp, entity: last.id, key: normKey(last.key)}.encode()
	}
	ids := make([]store.EntityID, len(hits))
	for i, h := range hits {
		ids[i] = h.id
	}
	ents, err := fetch(ctx, r, ids, p.all, p.traits)
	if err != nil {
		return store.Page{}, err
	}
	for i, h := range hits {
		if ents[i] == nil {
			return store.Page{}, fmt.Errorf("index: query: hit %s has no trait", h.id)
		}
		page.Hits = append(page.Hits, store.Hit{Entity: *ents[i], Rank: h.rank})
	}
	return page, nil
}

// hit is an entity of a page, before its traits are fetched.
type hit struct {
	id   store.EntityID
	key  any
	rank float64
}

// hits runs p's grouped or streamed statement and returns up to limit+1
// hits.
func (p *plan) hits(ctx context.Context, r *reader) ([]hit, error) {
	q, args := p.sql()
	if p.streams() {
		q, args = p.streamSQL()
	}
	rows, err := r.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var hits []hit
	seen := make(map[store.EntityID]bool)
	for len(hits) <= p.limit && rows.Next() {
		var h hit
		var ent []byte
		var rank sql.NullFloat64
		if err := rows.Scan(&ent, &h.key, &rank); err != nil {
			return nil, err
		}
		copy(h.id[:], ent)
		if seen[h.id] {
			continue // streamed: an entity's first row is its best
		}
		seen[h.id] = true
		h.rank = rank.Float64
		hits = append(hits, h)
	}
	return hits, rows.Err()
}

// ranks reports whether p is answered by rankedHits: a full-text match
// by relevance with no predicate or reference.
func (p *plan) ranks() bool {
	return p.order == byRelevance && len(p.preds) == 0 && p.refers == nil
}

// rankedHits reads the match's traits in rank order, as FTS5 sorts them
// itself (ORDER BY rank), joining each to its trait only as it is read:
// no grouping, no sort of the joined rows. Rows of equal rounded rank
// (contiguous, rounding being monotonic) are ordered by entity in Go; an
// entity's first row is its best. A page after a cursor reads from the
// first row again, marking the entities it passes as seen (they were on
// earlier pages): the cost of ranking every match is paid anyway.
func (p *plan) rankedHits(ctx context.Context, r *reader) ([]hit, error) {
	q := "SELECT t.entity, round(m.rank, 6) FROM (SELECT rowid AS id, rank FROM fts WHERE fts MATCH ?1 ORDER BY rank LIMIT -1) m" +
		" CROSS JOIN traits t ON t.id = m.id WHERE t.dead = 0"
	args := []any{p.match}
	if p.typ != "" {
		q += " AND t.type = ?2"
		args = append(args, p.typ)
	}
	rows, err := r.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var hits, group []hit
	seen := make(map[store.EntityID]bool)
	var groupKey float64
	flush := func() {
		slices.SortFunc(group, func(a, b hit) int { return bytes.Compare(a.id[:], b.id[:]) })
		for _, h := range group {
			if c := p.after; c != nil {
				k := c.key.(float64)
				if h.rank < k || h.rank == k && bytes.Compare(h.id[:], c.entity[:]) <= 0 {
					continue // on an earlier page
				}
			}
			hits = append(hits, h)
		}
		group = group[:0]
	}
	for rows.Next() {
		var h hit
		var ent []byte
		if err := rows.Scan(&ent, &h.rank); err != nil {
			return nil, err
		}
		copy(h.id[:], ent)
		if h.rank != groupKey || len(group) == 0 {
			flush()
			if len(hits) > p.limit {
				break
			}
			groupKey = h.rank
		}
		if seen[h.id] {
			continue
		}
		seen[h.id] = true
		h.key = h.rank
		group = append(group, h)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	flush()
	if len(hits) > p.limit+1 {
		hits = hits[:p.limit+1]
	}
	return hits, nil
}

// normKey turns a scanned key into a cursor's key type.
func normKey(k any) any {
	switch v := k.(type) {
	case int64:
		return float64(v)
	case []byte:
		return append([]byte{}, v...)
	}
	return k
}

// sql builds the query of p: the candidate traits (live, of the type,
// satisfying every condition) with their sort key, grouped by entity
// (the entity's key is its best trait's), after the cursor, in order, at
// most limit+1.
func (p *plan) sql() (string, []any) {
	var b strings.Builder
	var args []any
	arg := func(v any) string { // a numbered parameter, so that one can be used twice
		args = append(args, v)
		return "?" + strconv.Itoa(len(args))
	}
	agg := "MIN"
	if p.desc {
		agg = "MAX"
	}
	var key string
	switch p.order {
	case byModified:
		key = "t.modified"
	case byCreated:
		key = "t.created"
	case byRelevance:
		key = "round(m.r, 6)"
	case byField:
		key = "(SELECT " + agg + "(v) FROM terms WHERE trait = t.id AND field = " + arg(p.orderBy.id) + ")"
	}
	rank := "NULL"
	if p.match != "" {
		rank = "round(m.r, 6)"
	}
	// The join order is fixed (CROSS JOIN): the full-text match drives
	// when there is one, else the first predicate's index, else the
	// references', else the traits of the type; the other conditions are
	// checked per candidate through the terms' primary key.
	cond := func(pr pred, col string) string {
		if pr.op == store.Prefix {
			return col + " >= " + arg(pr.v) + " AND " + col + " < " + arg(pr.hi)
		}
		return col + " " + string(pr.op) + " " + arg(pr.v)
	}
	refFields := func() string {
		var f []string
		for _, id := range p.refFields {
			f = append(f, arg(id))
		}
		return "field IN (" + strings.Join(f, ", ") + ")"
	}
	b.WriteString("SELECT t.entity AS e, " + key + " AS k, " + rank + " AS r FROM ")
	var where []string
	preds, refers := p.preds, p.refers
	switch {
	case p.match != "":
		b.WriteString("(SELECT rowid AS id, rank AS r FROM fts WHERE fts MATCH " + arg(p.match) + ") m CROSS JOIN traits t ON t.id = m.id")
	case len(preds) > 0:
		b.WriteString("terms x CROSS JOIN traits t ON t.id = x.trait")
		d := preds[0]
		where = append(where, "x.field = "+arg(d.field)+" AND "+cond(d, "x.v"))
		// A field with one value: its other bounds narrow the driving
		// range (of a list field, each may hold for another value).
		var rest []pred
		for _, pr := range preds[1:] {
			if pr.field == d.field && !d.list {
				where = append(where, cond(pr, "x.v"))
			} else {
				rest = append(rest, pr)
			}
		}
		preds = rest
	case refers != nil:
		b.WriteString("terms x CROSS JOIN traits t ON t.id = x.trait")
		where = append(where, "x."+refFields()+" AND x.v = "+arg(refers))
		refers = nil
	default:
		b.WriteString("traits t")
	}
	where = append(where, "t.dead = 0")
	if p.typ != "" {
		where = append(where, "t.type = "+arg(p.typ))
	}
	for _, pr := range preds {
		where = append(where, "EXISTS (SELECT 1 FROM terms WHERE trait = t.id AND field = "+arg(pr.field)+" AND "+cond(pr, "v")+")")
	}
	if refers != nil {
		where = append(where, "EXISTS (SELECT 1 FROM terms WHERE trait = t.id AND "+refFields()+" AND v = "+arg(refers)+")")
	}
	b.WriteString(" WHERE " + strings.Join(where, " AND "))
	inner := b.String()
	b.Reset()
	b.WriteString("SELECT e, " + agg + "(k) AS sk, MIN(r) FROM (" + inner + ") GROUP BY e")
	dir, cmp := "ASC", ">"
	if p.desc {
		dir, cmp = "DESC", "<"
	}
	if c := p.after; c != nil {
		if c.key == nil {
			b.WriteString(" HAVING " + agg + "(k) IS NULL AND e > " + arg(c.entity[:]))
		} else {
			k := arg(c.key)
			b.WriteString(" HAVING " + agg + "(k) IS NULL OR " + agg + "(k) " + cmp + " " + k +
				" OR (" + agg + "(k) = " + k + " AND e > " + arg(c.entity[:]) + ")")
		}
	}
	b.WriteString(" ORDER BY sk IS NULL, sk " + dir + ", e LIMIT " + arg(p.limit+1))
	return b.String(), args
}

// streams reports whether p is answered by streamSQL: by modified time,
// with no match or reference, and a type (listing "notes, newest first")
// or an equality predicate first ("notes tagged work, newest first"):
// read in order from the traits_type or terms_v index.
//
// Ordered by a one-value field with a predicate on it (tasks with prio
// in a range, by prio), it streams too, from terms_v in value order.
func (p *plan) streams() bool {
	if p.match != "" || p.refers != nil {
		return false
	}
	switch {
	case p.order == byModified && len(p.preds) == 0:
		return p.typ != ""
	case p.order == byModified:
		return p.preds[0].op == store.Eq
	case p.order == byField && !p.orderBy.list:
		return len(p.preds) > 0 && p.preds[0].field == p.orderBy.id // compile puts them first
	}
	return false
}

// streamSQL reads p's traits in key order, without grouping (run keeps
// each entity's first row, its best, and stops at limit+1 entities):
// the cost is the page, not the number of candidates. After a cursor, a
// trait is left out when its entity has a matching trait at or before
// the cursor (the entity was on an earlier page).
func (p *plan) streamSQL() (string, []any) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "?" + strconv.Itoa(len(args))
	}
	exists := func(trait string, pr pred) string {
		c := " = " + arg(pr.v)
		if pr.op != store.Eq {
			c = " " + string(pr.op) + " " + arg(pr.v)
		}
		if pr.op == store.Prefix {
			c = " >= " + arg(pr.v) + " AND v < " + arg(pr.hi)
		}
		return "EXISTS (SELECT 1 FROM terms WHERE trait = " + trait + " AND field = " + arg(pr.field) + " AND v" + c + ")"
	}
	// matches is the condition for a trait row u to match p.
	matches := func(u string) string {
		c := u + ".dead = 0 AND " + u + ".type = " + arg(p.typ)
		for _, pr := range p.preds {
			c += " AND " + exists(u+".id", pr)
		}
		return c
	}
	dir, cmp, before := "ASC", ">", "<"
	if p.desc {
		dir, cmp, before = "DESC", "<", ">"
	}
	var q, key, ent string
	var uBefore func(k, e string) string // a trait u at or before the cursor (k, e)
	switch {
	case p.order == byField:
		f := arg(p.orderBy.id)
		q = "SELECT x.entity, x.v, NULL FROM terms x INDEXED BY terms_v WHERE x.field = " + f
		for _, pr := range p.preds {
			if pr.field != p.orderBy.id {
				q += " AND " + exists("x.trait", pr)
				continue
			}
			if pr.op == store.Prefix {
				q += " AND x.v >= " + arg(pr.v) + " AND x.v < " + arg(pr.hi)
			} else {
				q += " AND x.v " + string(pr.op) + " " + arg(pr.v)
			}
		}
		key, ent = "x.v", "x.entity"
		uBefore = func(k, e string) string {
			return "EXISTS (SELECT 1 FROM terms WHERE trait = u.id AND field = " + f +
				" AND (v " + before + " " + k + " OR (v = " + k + " AND u.entity <= " + e + ")))"
		}
	case len(p.preds) == 0:
		q = "SELECT t.entity, t.modified, NULL FROM traits t INDEXED BY traits_type WHERE t.dead = 0 AND t.type = " + arg(p.typ)
		key, ent = "t.modified", "t.entity"
	default:
		d := p.preds[0]
		q = "SELECT x.entity, x.mod, NULL FROM terms x INDEXED BY terms_v WHERE x.field = " + arg(d.field) + " AND x.v = " + arg(d.v)
		for _, pr := range p.preds[1:] {
			q += " AND " + exists("x.trait", pr)
		}
		key, ent = "x.mod", "x.entity"
	}
	if uBefore == nil {
		uBefore = func(k, e string) string {
			return "(u.modified " + before + " " + k + " OR (u.modified = " + k + " AND u.entity <= " + e + "))"
		}
	}
	if c := p.after; c != nil {
		k, e := arg(c.key), arg(c.entity[:])
		q += " AND (" + key + " " + cmp + " " + k + " OR (" + key + " = " + k + " AND " + ent + " > " + e + "))" +
			" AND NOT EXISTS (SELECT 1 FROM traits u WHERE u.entity = " + ent + " AND " + matches("u") +
			" AND " + uBefore(k, e) + ")"
	}
	return q + " ORDER BY " + key + " " + dir + ", " + ent, args
}
