package enginebench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrEmptyBatch is returned by Insert for a batch with no entities.
var ErrEmptyBatch = errors.New("enginebench: empty batch")

// Pragmas are applied on the (single) connection by Setup: WAL with NORMAL sync is what a
// store index that can be rebuilt from the chain needs.
var Pragmas = []string{
	"PRAGMA journal_mode=WAL",
	"PRAGMA synchronous=NORMAL",
	"PRAGMA foreign_keys=OFF",
}

// Schema is the store index's tables: one row per trait with its JSON document, one row
// per indexed field value (a value in kw, num or ts; the entity is repeated so that each
// index, by field name, value then entity, answers a predicate in entity order without
// touching the traits table), and a contentless FTS5 table whose rowid is the trait's id.
var Schema = []string{
	`CREATE TABLE IF NOT EXISTS traits(
		id INTEGER PRIMARY KEY,
		entity TEXT NOT NULL,
		trait TEXT NOT NULL,
		type TEXT NOT NULL,
		doc TEXT NOT NULL,
		created INTEGER NOT NULL,
		modified INTEGER NOT NULL,
		UNIQUE(entity, trait))`,
	`CREATE INDEX IF NOT EXISTS traits_type ON traits(type, modified)`,
	`CREATE TABLE IF NOT EXISTS fields(
		trait_id INTEGER NOT NULL,
		entity TEXT NOT NULL,
		name TEXT NOT NULL,
		kw TEXT,
		num REAL,
		ts INTEGER)`,
	`CREATE INDEX IF NOT EXISTS fields_kw ON fields(name, kw, entity) WHERE kw IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS fields_num ON fields(name, num, entity) WHERE num IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS fields_ts ON fields(name, ts, entity) WHERE ts IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS fields_trait ON fields(trait_id)`,
	`CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(body, content='', contentless_delete=1)`,
}

// Setup limits db to one connection (an index has one writer; it also keeps the
// connection pragmas in force), applies Pragmas and creates Schema.
func Setup(ctx context.Context, db *sql.DB) error {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	for _, q := range append(append([]string{}, Pragmas...), Schema...) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("enginebench: setup %.40q: %w", q, err)
		}
	}
	return nil
}

// Insert writes the entities in one transaction and returns the number of trait rows.
func Insert(ctx context.Context, db *sql.DB, batch []Entity) (int, error) {
	if len(batch) == 0 {
		return 0, ErrEmptyBatch
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("enginebench: begin: %w", err)
	}
	n, err := insertTx(ctx, tx, batch)
	if err != nil {
		return 0, errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("enginebench: commit: %w", err)
	}
	return n, nil
}

func insertTx(ctx context.Context, tx *sql.Tx, batch []Entity) (int, error) {
	insTrait, err := tx.PrepareContext(ctx, `INSERT INTO traits(entity, trait, type, doc, created, modified) VALUES(?,?,?,?,?,?)`)
	if err != nil {
		return 0, fmt.Errorf("enginebench: prepare trait insert: %w", err)
	}
	defer insTrait.Close()
	insField, err := tx.PrepareContext(ctx, `INSERT INTO fields(trait_id, entity, name, kw, num, ts) VALUES(?,?,?,?,?,?)`)
	if err != nil {
		return 0, fmt.Errorf("enginebench: prepare field insert: %w", err)
	}
	defer insField.Close()
	insText, err := tx.PrepareContext(ctx, `INSERT INTO fts(rowid, body) VALUES(?,?)`)
	if err != nil {
		return 0, fmt.Errorf("enginebench: prepare text insert: %w", err)
	}
	defer insText.Close()

	n := 0
	for _, e := range batch {
		for _, t := range e.Traits {
			res, err := insTrait.ExecContext(ctx, e.ID, t.ID, t.Type, t.Doc, t.Created, t.Modified)
			if err != nil {
				return 0, fmt.Errorf("enginebench: insert trait %s/%s: %w", e.ID, t.ID, err)
			}
			id, err := res.LastInsertId()
			if err != nil {
				return 0, fmt.Errorf("enginebench: trait id %s/%s: %w", e.ID, t.ID, err)
			}
			for _, f := range t.Fields {
				var kw, num, ts any
				switch f.Kind {
				case Keyword:
					kw = f.Keyword
				case Number:
					num = f.Number
				case Time:
					ts = f.Time
				}
				if _, err := insField.ExecContext(ctx, id, e.ID, f.Name, kw, num, ts); err != nil {
					return 0, fmt.Errorf("enginebench: insert field %s of %s/%s: %w", f.Name, e.ID, t.ID, err)
				}
			}
			if t.Text != "" {
				if _, err := insText.ExecContext(ctx, id, t.Text); err != nil {
					return 0, fmt.Errorf("enginebench: insert text of %s/%s: %w", e.ID, t.ID, err)
				}
			}
			n++
		}
	}
	return n, nil
}

// Populate fills db (after Setup) with entities 0..n-1 of g, batch entities per
// transaction, and returns the number of trait rows written.
func Populate(ctx context.Context, db *sql.DB, g *Generator, n, batch int) (int, error) {
	total := 0
	buf := make([]Entity, 0, batch)
	for i := range n {
		buf = append(buf, g.Entity(i))
		if len(buf) == batch || i == n-1 {
			k, err := Insert(ctx, db, buf)
			if err != nil {
				return total, err
			}
			total += k
			buf = buf[:0]
		}
	}
	return total, nil
}

// KeywordEq returns at most limit entity IDs whose keyword field name equals value, in
// entity order.
func KeywordEq(ctx context.Context, db *sql.DB, name, value string, limit int) ([]string, error) {
	return queryStrings(ctx, db, `SELECT entity FROM fields
		WHERE name = ? AND kw = ? ORDER BY entity LIMIT ?`, name, value, limit)
}

// NumberRange returns at most limit entity IDs whose number field name is in [lo, hi),
// ordered by that number then entity.
func NumberRange(ctx context.Context, db *sql.DB, name string, lo, hi float64, limit int) ([]string, error) {
	return queryStrings(ctx, db, `SELECT entity FROM fields
		WHERE name = ? AND num >= ? AND num < ? ORDER BY num, entity LIMIT ?`, name, lo, hi, limit)
}

// Match returns at most limit entity IDs whose text matches the FTS5 query, best bm25
// rank first (ties by entity).
func Match(ctx context.Context, db *sql.DB, query string, limit int) ([]string, error) {
	return queryStrings(ctx, db, `SELECT t.entity FROM fts JOIN traits t ON t.id = fts.rowid
		WHERE fts MATCH ? ORDER BY bm25(fts), t.entity LIMIT ?`, query, limit)
}

// Count returns the number of rows of the single-column integer query q.
func Count(ctx context.Context, db *sql.DB, q string, args ...any) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("enginebench: count: %w", err)
	}
	return n, nil
}

func queryStrings(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("enginebench: query: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("enginebench: scan: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("enginebench: rows: %w", err)
	}
	return out, nil
}

// FirstQuery is the first read of a start-up: it loads the schema and touches the fields
// index, as a store's first query would, without scanning a table.
const FirstQuery = `SELECT count(*) FROM (SELECT 1 FROM fields WHERE name = 'status' AND kw = 'open' LIMIT 1)`
