package index

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// stmts are the writer's statements, prepared once on its connection
// (the readers' are in their stmtCache).
type stmts struct {
	getCheckpoint, setMeta, addSkip, addMeta      *sql.Stmt
	getEntity, setTomb                            *sql.Stmt
	getTrait, entityTraits, insTrait, updTrait    *sql.Stmt
	setFirsts                                     *sql.Stmt
	delTrait, delTerms, insTerm, delText, insText *sql.Stmt
	delTerm, setTermsMod, getLive                 *sql.Stmt
	// terms[n-1] inserts n term rows (prepared when first needed).
	terms [maxTermRows]*sql.Stmt
}

// maxTermRows is the most term rows one statement inserts.
const maxTermRows = 16

// termStmt returns the statement that inserts n term rows (1 to
// maxTermRows), preparing it on the writer's connection the first time.
// The caller holds ix.mu.
func (ix *Index) termStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	if st := ix.st.terms[n-1]; st != nil {
		return st, nil
	}
	q := "INSERT OR IGNORE INTO terms(trait, field, v, entity, mod) VALUES(?, ?, ?, ?, ?)" + strings.Repeat(", (?, ?, ?, ?, ?)", n-1)
	st, err := ix.wc.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("index: prepare term insert: %w", err)
	}
	ix.st.terms[n-1] = st
	return st, nil
}

func prepare(ctx context.Context, c *sql.Conn) (stmts, error) {
	var s stmts
	for _, p := range []struct {
		to **sql.Stmt
		q  string
	}{
		{&s.getCheckpoint, `SELECT (SELECT v FROM meta WHERE k = 'next'), (SELECT v FROM meta WHERE k = 'last')`},
		{&s.setMeta, `INSERT INTO meta(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`},
		{&s.addSkip, `INSERT INTO meta(k, v) VALUES(?, 1) ON CONFLICT(k) DO UPDATE SET v = v + 1`},
		{&s.addMeta, `INSERT INTO meta(k, v) VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE SET v = v + ?2`},
		{&s.getEntity, `SELECT t.clock, t.key, ifnull(t.op, 0), (SELECT count(*) FROM traits WHERE entity = ?1 AND dead = 0)
			FROM (SELECT 1) LEFT JOIN tombs t ON t.entity = ?1`},
		{&s.setTomb, `INSERT OR REPLACE INTO tombs(entity, clock, key, op) VALUES(?, ?, ?, ?)`},
		{&s.getTrait, `SELECT id, clock, key, op, dead, text, firsts, type, doc, modified FROM traits WHERE entity = ? AND trait = ?`},
		{&s.entityTraits, `SELECT id, clock, key, op, dead, text, firsts FROM traits WHERE entity = ?`},
		{&s.insTrait, `INSERT INTO traits(entity, trait, type, doc, created, modified, clock, key, op, dead, text, firsts) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(entity, trait) DO NOTHING`},
		{&s.updTrait, `UPDATE traits SET type = ?, doc = ?, created = ?, modified = ?, clock = ?, key = ?, op = ?, dead = ?, text = ?, firsts = ? WHERE id = ?`},
		{&s.setFirsts, `UPDATE traits SET created = ?, firsts = ? WHERE id = ?`},
		{&s.delTrait, `DELETE FROM traits WHERE id = ?`},
		{&s.delTerms, `DELETE FROM terms WHERE trait = ?`},
		{&s.delTerm, `DELETE FROM terms WHERE trait = ? AND field = ? AND v = ?`},
		{&s.setTermsMod, `UPDATE terms SET mod = ? WHERE trait = ?`},
		{&s.insTerm, `INSERT OR IGNORE INTO terms(trait, field, v, entity, mod) VALUES(?, ?, ?, ?, ?)`},
		{&s.delText, `DELETE FROM fts WHERE rowid = ?`},
		{&s.insText, `INSERT INTO fts(rowid, text) VALUES(?, ?)`},
		{&s.getLive, `SELECT type, doc, created, modified FROM traits WHERE entity = ? AND trait = ? AND dead = 0`},
	} {
		st, err := c.PrepareContext(ctx, p.q)
		if err != nil {
			s.close()
			return stmts{}, fmt.Errorf("index: prepare %.40q: %w", p.q, err)
		}
		*p.to = st
	}
	return s, nil
}

func (s *stmts) close() {
	for _, st := range []*sql.Stmt{s.getCheckpoint, s.setMeta, s.addSkip, s.addMeta, s.getEntity, s.setTomb, s.getTrait, s.entityTraits,
		s.insTrait, s.updTrait, s.setFirsts, s.delTrait, s.delTerms, s.insTerm, s.delText, s.insText, s.delTerm, s.setTermsMod, s.getLive} {
		if st != nil {
			st.Close()
		}
	}
	for _, st := range s.terms {
		if st != nil {
			st.Close()
		}
	}
	*s = stmts{}
}
