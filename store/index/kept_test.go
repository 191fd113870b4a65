package index

import (
	"errors"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/store"
)

// keptSchema has a kept field of each kind that gives terms or text.
var keptSchema = store.Schema{
	Type: "test.kept",
	Fields: []store.Field{
		{Name: "k", Kind: store.Keyword},
		{Name: "hidden", Kind: store.Keyword, Kept: true},
		{Name: "words", Kind: store.Text, Kept: true},
		{Name: "when", Kind: store.Time, Kept: true},
		{Name: "ref", Kind: store.Reference, Kept: true},
	},
}

// TestKeptFields: a kept field is checked as the others but gives no term
// and no text, and a query may neither filter nor order by it.
func TestKeptFields(t *testing.T) {
	reg := store.NewRegistry()
	if err := reg.Register(keptSchema); err != nil {
		t.Fatal(err)
	}
	if err := reg.Validate("test.kept", []byte(`{"k":"a","hidden":1}`)); err == nil {
		t.Fatal("a kept keyword field holding a number was not refused")
	}
	ix := openIndex(t, t.TempDir(), reg)
	f := &feeder{t: t, ix: ix}
	doc := `{"k":"a","hidden":"secret","words":"zebra crossing","when":"2026-01-01T00:00:00Z","ref":"` + eid(9).String() + `"}`
	f.apply(store.PutTrait(eid(1), store.Trait{Type: "test.kept", ID: "t", Doc: []byte(doc), Created: t0, Modified: t0}))

	var terms int
	if err := ix.wc.QueryRowContext(t.Context(), `SELECT count(*) FROM terms`).Scan(&terms); err != nil {
		t.Fatal(err)
	}
	if terms != 1 {
		t.Fatalf("%d term rows, want 1 (k only)", terms)
	}
	if p, err := ix.Query(t.Context(), store.Query{Match: "zebra"}); err != nil || len(p.Hits) != 0 {
		t.Fatalf("match on a kept text field: %d hits, %v; want none", len(p.Hits), err)
	}
	if p, err := ix.Query(t.Context(), store.Query{RefersTo: &[]store.EntityID{eid(9)}[0]}); err != nil || len(p.Hits) != 0 {
		t.Fatalf("refers_to through a kept reference: %d hits, %v; want none", len(p.Hits), err)
	}
	if p, err := ix.Query(t.Context(), store.Query{Type: "test.kept", Where: []store.Predicate{{Field: "k", Op: store.Eq, Value: "a"}}}); err != nil || len(p.Hits) != 1 {
		t.Fatalf("query on the indexed field: %d hits, %v; want 1", len(p.Hits), err)
	}
	for _, q := range []store.Query{
		{Type: "test.kept", Where: []store.Predicate{{Field: "hidden", Op: store.Eq, Value: "secret"}}},
		{Type: "test.kept", Order: "when"},
	} {
		_, err := ix.Query(t.Context(), q)
		if !errors.Is(err, store.ErrQuery) || !strings.Contains(err.Error(), "kept, not indexed") {
			t.Errorf("query %+v: %v, want an ErrQuery saying the field is kept", q, err)
		}
	}
	if g, err := ix.Get(t.Context(), eid(1), nil); err != nil || len(g.Traits) != 1 || string(g.Traits[0].Doc) != doc {
		t.Fatalf("the document is not kept whole: %+v, %v", g, err)
	}
}

// TestKeptChangesFingerprint: marking a field kept is a change of schema,
// so an index made before is rebuilt.
func TestKeptChangesFingerprint(t *testing.T) {
	a, b := store.NewRegistry(), store.NewRegistry()
	s := keptSchema
	s.Fields = []store.Field{{Name: "k", Kind: store.Keyword}}
	if err := a.Register(s); err != nil {
		t.Fatal(err)
	}
	s.Fields = []store.Field{{Name: "k", Kind: store.Keyword, Kept: true}}
	if err := b.Register(s); err != nil {
		t.Fatal(err)
	}
	if fingerprint(a, "e") == fingerprint(b, "e") {
		t.Fatal("a kept field does not change the fingerprint")
	}
}
