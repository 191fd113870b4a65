package index

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/exopeer/exopeer/store"
)

// Get returns entity id's live traits in TraitID order, or an error
// wrapping store.ErrNotFound when it has none. traits is a projection as
// Query.Traits: nil for every live trait, else only those of these types
// (an entity with live traits of none of them is returned without
// traits). Safe for concurrent use.
func (ix *Index) Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error) {
	if traits != nil {
		if err := checkProjection(traits); err != nil {
			return store.Entity{}, err
		}
	}
	tx, err := ix.read(ctx)
	if err != nil {
		return store.Entity{}, err
	}
	defer tx.Rollback()
	ents, err := fetch(ctx, tx, []store.EntityID{id}, traits == nil, traits)
	if err != nil {
		return store.Entity{}, err
	}
	if ents[0] == nil {
		return store.Entity{}, fmt.Errorf("index: get %s: %w", id, store.ErrNotFound)
	}
	return *ents[0], nil
}

// read starts a read transaction: one snapshot for the whole answer.
func (ix *Index) read(ctx context.Context) (*sql.Tx, error) {
	select {
	case <-ix.done:
		return nil, ErrClosed
	default:
	}
	tx, err := ix.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("index: read: %w", err)
	}
	return tx, nil
}

// fetch returns the entities of ids (nil for one without live traits),
// with the traits of the projection (all, or of the types in only).
func fetch(ctx context.Context, tx *sql.Tx, ids []store.EntityID, all bool, only []string) ([]*store.Entity, error) {
	out := make([]*store.Entity, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	at := make(map[store.EntityID]int, len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		at[id] = i
		args[i] = id[:]
	}
	q := `SELECT entity, trait, type, doc, created, modified FROM traits WHERE dead = 0 AND entity IN (?` +
		strings.Repeat(", ?", len(ids)-1) + `) ORDER BY entity, trait`
	rows, err := tx.QueryContext(ctx, q, args...)
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
	tx, err := ix.read(ctx)
	if err != nil {
		return store.Page{}, err
	}
	defer tx.Rollback()
	if p.refers != nil && len(p.refFields) == 0 {
		return store.Page{Hits: []store.Hit{}}, nil // no type has a reference field
	}
	q, args := p.sql()
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return store.Page{}, fmt.Errorf("index: query: %w", err)
	}
	type hit struct {
		id   store.EntityID
		key  any
		rank float64
	}
	var hits []hit
	for rows.Next() {
		var h hit
		var ent []byte
		var rank sql.NullFloat64
		if err := rows.Scan(&ent, &h.key, &rank); err != nil {
			rows.Close()
			return store.Page{}, fmt.Errorf("index: query: %w", err)
		}
		copy(h.id[:], ent)
		h.rank = rank.Float64
		hits = append(hits, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
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
	ents, err := fetch(ctx, tx, ids, p.all, p.traits)
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
	b.WriteString("SELECT t.entity AS e, " + key + " AS k, " + rank + " AS r FROM traits t")
	if p.match != "" {
		b.WriteString(" JOIN (SELECT rowid AS id, rank AS r FROM fts WHERE fts MATCH " + arg(p.match) + ") m ON m.id = t.id")
	}
	b.WriteString(" WHERE t.dead = 0")
	if p.typ != "" {
		b.WriteString(" AND t.type = " + arg(p.typ))
	}
	for _, pr := range p.preds {
		b.WriteString(" AND t.id IN (SELECT trait FROM terms WHERE field = " + arg(pr.field) + " AND v ")
		if pr.op == store.Prefix {
			b.WriteString(">= " + arg(pr.v) + " AND v < " + arg(pr.hi) + ")")
			continue
		}
		b.WriteString(string(pr.op) + " " + arg(pr.v) + ")")
	}
	if p.refers != nil {
		b.WriteString(" AND t.id IN (SELECT trait FROM terms WHERE field IN (")
		for i, f := range p.refFields {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(arg(f))
		}
		b.WriteString(") AND v = " + arg(p.refers) + ")")
	}
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
