package index

import (
	"fmt"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/exopeer/exopeer/store"
)

// TestRewriteEqualsFreshWrite: a live trait written again (rewrite: only
// the terms and text that changed) leaves the terms and the full-text
// index as a fresh write of the last version does, whatever changed.
func TestRewriteEqualsFreshWrite(t *testing.T) {
	ref := eid(7).String()
	versions := []string{
		`{"title": "first words", "status": "open", "prio": 2, "about": ["` + ref + `"]}`,
		`{"title": "first words", "status": "done", "prio": 2, "about": ["` + ref + `", "` + ref + `"]}`, // a term changes, the text stays
		`{"title": "other words", "status": "done", "prio": 3}`,                                          // the text changes, a term goes
		`{"status": "done", "prio": 3}`,                                                                  // the text goes
		`{"title": "back again", "status": "done", "prio": 3, "due": "2026-02-01T00:00:00Z"}`,            // the text comes back
		`{"title": "back again", "status": "done", "prio": 3, "due": "2026-02-01T00:00:00Z"}`,            // nothing but the time changes
	}
	rewritten := openIndex(t, t.TempDir(), testRegistry(t))
	f := &feeder{t: t, ix: rewritten}
	for i, doc := range versions {
		f.apply(store.PutTrait(eid(1), task("test.task", doc, i+1)))
		fresh := openIndex(t, t.TempDir(), testRegistry(t))
		(&feeder{t: t, ix: fresh}).apply(store.PutTrait(eid(1), task("test.task", doc, i+1)))
		if diff := gocmp.Diff(indexed(t, fresh), indexed(t, rewritten)); diff != "" {
			t.Fatalf("version %d (-fresh +rewritten):\n%s", i, diff)
		}
	}
}

// indexed is what ix's terms and full-text index hold: every term row,
// and the trait IDs each of a few words matches.
func indexed(t *testing.T, ix *Index) []string {
	t.Helper()
	r, err := ix.read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Rollback()
	var out []string
	rows, err := r.query(t.Context(), `SELECT t.entity, t.trait, x.field, quote(x.v), hex(x.mod) FROM terms x JOIN traits t ON t.id = x.trait ORDER BY 1, 2, 3, 4`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var ent []byte
		var trait, v, mod string
		var field int64
		if err := rows.Scan(&ent, &trait, &field, &v, &mod); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("term %x %s %d %s %s", ent, trait, field, v, mod))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for _, w := range []string{"first", "words", "other", "back", "again"} {
		rows, err := r.query(t.Context(), `SELECT t.trait FROM fts JOIN traits t ON t.id = fts.rowid WHERE fts MATCH ? ORDER BY 1`, w)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var trait string
			if err := rows.Scan(&trait); err != nil {
				t.Fatal(err)
			}
			out = append(out, "match "+w+" "+trait)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}
