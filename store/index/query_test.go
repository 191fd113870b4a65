package index

import (
	"errors"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/store"
	"github.com/google/go-cmp/cmp"
)

// fixture writes a small readable data set: five notes, three tasks (two
// on entities that are notes too), an unknown type, and a deleted note.
func fixture(t *testing.T) *Index {
	t.Helper()
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	f := &feeder{t: t, ix: ix}
	f.apply(store.PutTrait(eid(1), note("Groceries", "milk, eggs and bread", 1, "home", "shop")))
	f.apply(store.PutTrait(eid(2), note("Work plan", "finish the report; call Zoë", 2, "work")))
	f.apply(store.PutTrait(eid(3), note("Report draft", "the report needs figures", 3, "work", "draft")))
	f.apply(store.PutTrait(eid(4), note("Café list", "best coffee in town", 4, "home")))
	f.apply(store.PutTrait(eid(5), note("", "random thought", 5)))
	f.apply(store.PutTrait(eid(6), task("t", `{"title":"buy milk","status":"open","prio":2,"due":"2026-02-01T00:00:00Z","about":["`+eid(1).String()+`"]}`, 6)))
	f.apply(store.PutTrait(eid(2), task("t", `{"status":"done","prio":5,"due":"2026-01-15T12:00:00+01:00","about":["`+eid(3).String()+`","`+eid(1).String()+`"]}`, 7)))
	f.apply(store.PutTrait(eid(3), task("t", `{"status":"open","prio":1}`, 8)))
	f.apply(store.PutTrait(eid(7), store.Trait{Type: "x.unknown", ID: "u", Doc: []byte(`{"body":"milk"}`), Created: t0, Modified: t0}))
	f.apply(store.PutTrait(eid(8), note("Gone", "milk report", 9, "work")))
	f.apply(store.DeleteEntity(eid(8)))
	return ix
}

func ids(p store.Page) []int {
	var out []int
	for _, h := range p.Hits {
		out = append(out, int(h.Entity.ID[15]))
	}
	return out
}

func TestQueryFeatures(t *testing.T) {
	ix := fixture(t)
	ref := func(n int) *store.EntityID { id := eid(n); return &id }
	tests := []struct {
		name string
		q    store.Query
		want []int
	}{
		{"notes, newest first", store.Query{Type: "exo.note"}, []int{5, 4, 3, 2, 1}},
		{"notes, oldest first", store.Query{Type: "exo.note", Asc: true}, []int{1, 2, 3, 4, 5}},
		{"a type with no schema is listed", store.Query{Type: "x.unknown"}, []int{7}},
		{"a type never written", store.Query{Type: "x.never"}, nil},
		{"words are not looked for in a type with no schema", store.Query{Type: "x.unknown", Match: "milk"}, nil},
		{"everything, newest trait first", store.Query{}, []int{3, 2, 6, 5, 4, 1, 7}},
		{"match, by relevance", store.Query{Match: "report"}, []int{3, 2}},
		{"match, every word", store.Query{Match: "report figures"}, []int{3}},
		{"match folds diacritics", store.Query{Match: "zoe"}, []int{2}},
		{"match folds diacritics of the query", store.Query{Match: "CAFÉ"}, []int{4}},
		{"match of any registered type, shorter text first", store.Query{Match: "milk"}, []int{6, 1}},
		{"match within a type", store.Query{Type: "test.task", Match: "milk"}, []int{6}},
		{"match operators are words", store.Query{Match: "report OR milk"}, nil},
		{"match quotes are words", store.Query{Match: `"report" NEAR(milk)`}, nil},
		{"match by modified", store.Query{Match: "report", Order: store.OrderModified, Asc: true}, []int{2, 3}},
		{"keyword", store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "work"}}}, []int{3, 2}},
		{"keyword list, two predicates", store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "work"}, {Field: "tags", Op: store.Eq, Value: "draft"}}}, []int{3}},
		{"prefix", store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Prefix, Value: "sh"}}}, []int{1}},
		{"prefix of nothing matches all", store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Prefix, Value: ""}}}, []int{4, 3, 2, 1}},
		{"number range, by field", store.Query{Type: "test.task", Where: []store.Predicate{{Field: "prio", Op: store.Ge, Value: "2"}}, Order: "prio"}, []int{6, 2}},
		{"number equality", store.Query{Type: "test.task", Where: []store.Predicate{{Field: "prio", Op: store.Eq, Value: "5.0"}}}, []int{2}},
		{"by number desc", store.Query{Type: "test.task", Order: "prio", Desc: true}, []int{2, 6, 3}},
		{"by keyword, missing last", store.Query{Type: "test.task", Order: "status"}, []int{2, 3, 6}},
		{"time as instants", store.Query{Type: "test.task", Where: []store.Predicate{{Field: "due", Op: store.Lt, Value: "2026-01-15T11:30:00Z"}}}, []int{2}},
		{"by time, newest first, missing last", store.Query{Type: "test.task", Order: "due"}, []int{6, 2, 3}},
		{"by time asc", store.Query{Type: "test.task", Order: "due", Asc: true}, []int{2, 6, 3}},
		{"by created", store.Query{Type: "test.task", Order: store.OrderCreated}, []int{3, 2, 6}},
		{"refers to", store.Query{RefersTo: ref(1)}, []int{2, 6}},
		{"refers to, within a type", store.Query{Type: "test.task", RefersTo: ref(3)}, []int{2}},
		{"refers to nothing", store.Query{RefersTo: ref(9)}, nil},
		{"deleted entity is gone", store.Query{Match: "gone"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ix.Query(t.Context(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, ids(p)); diff != "" {
				t.Fatalf("hits (-want +got):\n%s", diff)
			}
			for _, h := range p.Hits {
				if (tt.q.Match != "") != (h.Rank != 0) {
					t.Fatalf("rank %v with match %q", h.Rank, tt.q.Match)
				}
			}
		})
	}
}

func TestRankOrder(t *testing.T) {
	ix := fixture(t)
	p, err := ix.Query(t.Context(), store.Query{Match: "report"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Hits) != 2 || !(p.Hits[0].Rank < p.Hits[1].Rank) || p.Hits[0].Rank >= 0 {
		t.Fatalf("ranks %v, want increasing negative bm25", p.Hits)
	}
}

func TestProjection(t *testing.T) {
	ix := fixture(t)
	ctx := t.Context()
	e, err := ix.Get(ctx, eid(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Traits) != 2 || e.Traits[0].ID != "exo.note" || e.Traits[1].ID != "t" {
		t.Fatalf("Get = %+v", e)
	}
	e, err = ix.Get(ctx, eid(2), []string{"test.task"})
	if err != nil || len(e.Traits) != 1 || e.Traits[0].Type != "test.task" {
		t.Fatalf("Get projected = %+v, %v", e, err)
	}
	e, err = ix.Get(ctx, eid(7), nil)
	if err != nil || len(e.Traits) != 1 || string(e.Traits[0].Doc) != `{"body":"milk"}` {
		t.Fatalf("unknown type: Get = %+v, %v", e, err)
	}
	for _, n := range []int{8, 99} {
		if _, err := ix.Get(ctx, eid(n), nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(%d) = %v, want ErrNotFound", n, err)
		}
	}
	p, err := ix.Query(ctx, store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "work"}}, Traits: []string{}})
	if err != nil || len(p.Hits) != 2 || p.Hits[0].Entity.Traits != nil {
		t.Fatalf("IDs only: %+v, %v", p, err)
	}
	p, err = ix.Query(ctx, store.Query{Type: "test.task", Traits: []string{"exo.note"}})
	if err != nil || len(p.Hits) != 3 || len(p.Hits[0].Entity.Traits) != 1 || p.Hits[0].Entity.Traits[0].Type != "exo.note" || p.Hits[2].Entity.Traits != nil {
		t.Fatalf("notes of tasks: %+v, %v", p, err)
	}
}

func TestPaging(t *testing.T) {
	ix := fixture(t)
	ctx := t.Context()
	q := store.Query{Type: "exo.note", Limit: 2}
	var got [][]int
	for {
		p, err := ix.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(p))
		if p.Next == "" {
			break
		}
		if len(got) == 1 {
			// A change between pages: a newer note, and note 5 (seen)
			// edited; neither shows up on later pages.
			f := &feeder{t: t, ix: ix, next: 11, clock: 11}
			f.apply(store.PutTrait(eid(9), note("New", "new one", 10)))
			f.apply(store.PutTrait(eid(3), note("Report draft", "edited", 0, "work")))
		}
		q.After = p.Next
	}
	// 3 was edited to an older time: it moves after 1.
	if diff := cmp.Diff([][]int{{5, 4}, {2, 1}, {3}}, got); diff != "" {
		t.Fatalf("pages (-want +got):\n%s", diff)
	}
	// Paging by a field, with ties and missing values.
	q = store.Query{Type: "test.task", Order: "status", Limit: 1}
	got = nil
	for {
		p, err := ix.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(p))
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	if diff := cmp.Diff([][]int{{2}, {3}, {6}}, got); diff != "" {
		t.Fatalf("pages by status (-want +got):\n%s", diff)
	}
}

func mustFP(t *testing.T, ix *Index, q store.Query) [8]byte {
	t.Helper()
	p, err := ix.compile(q)
	if err != nil {
		t.Fatal(err)
	}
	return p.fp
}

func TestQueryErrors(t *testing.T) {
	ix := fixture(t)
	ctx := t.Context()
	p, err := ix.Query(ctx, store.Query{Type: "exo.note", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	other := p.Next
	tests := []struct {
		name string
		q    store.Query
		part string
	}{
		{"a field of an unknown type", store.Query{Type: "x.unknown", Where: []store.Predicate{{Field: "body", Op: store.Eq, Value: "milk"}}}, "field"},
		{"a type name too long", store.Query{Type: strings.Repeat("x", store.MaxType+1)}, "type"},
		{"unknown field", store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "color", Op: store.Eq, Value: "x"}}}, `field "color"`},
		{"predicate without type", store.Query{Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "x"}}}, "needs a type"},
		{"text field predicate", store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "body", Op: store.Eq, Value: "x"}}}, "body (text)"},
		{"range on keyword", store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Lt, Value: "x"}}}, "tags (keyword)"},
		{"prefix on number", store.Query{Type: "test.task", Where: []store.Predicate{{Field: "prio", Op: store.Prefix, Value: "1"}}}, "prio (number)"},
		{"unknown op", store.Query{Type: "test.task", Where: []store.Predicate{{Field: "prio", Op: "~", Value: "1"}}}, `"~"`},
		{"bad number", store.Query{Type: "test.task", Where: []store.Predicate{{Field: "prio", Op: store.Eq, Value: "NaN"}}}, "prio"},
		{"bad time", store.Query{Type: "test.task", Where: []store.Predicate{{Field: "due", Op: store.Ge, Value: "tomorrow"}}}, "due"},
		{"bad reference", store.Query{Type: "test.task", Where: []store.Predicate{{Field: "about", Op: store.Eq, Value: "xyz"}}}, "about"},
		{"too many predicates", store.Query{Type: "exo.note", Where: make([]store.Predicate, store.MaxPredicates+1)}, "where"},
		{"long match", store.Query{Match: strings.Repeat("a", store.MaxMatch+1)}, "match"},
		{"blank match", store.Query{Match: "  "}, "match"},
		{"relevance without match", store.Query{Order: store.OrderRelevance}, "relevance"},
		{"relevance asc", store.Query{Match: "x", Asc: true}, "relevance"},
		{"asc and desc", store.Query{Type: "test.task", Order: "prio", Asc: true, Desc: true}, "both"},
		{"order by unknown field", store.Query{Type: "test.task", Order: "size"}, "size"},
		{"order by text field", store.Query{Type: "test.task", Order: "title"}, "title"},
		{"order by field without type", store.Query{Order: "prio"}, "needs a type"},
		{"negative limit", store.Query{Limit: -1}, "limit"},
		{"big limit", store.Query{Limit: store.MaxLimit + 1}, "limit"},
		{"garbage cursor", store.Query{Type: "exo.note", After: "!!"}, "after"},
		{"cursor of another query", store.Query{Type: "test.task", After: other}, "another query"},
		{"zero reference", store.Query{RefersTo: &store.EntityID{}}, "refers_to"},
		{"refers within a type without references", store.Query{Type: "exo.note", RefersTo: func() *store.EntityID { id := eid(1); return &id }()}, "refers_to"},
		{"empty projection type", store.Query{Traits: []string{""}}, "traits[0]"},
		{"long projection", store.Query{Traits: make([]string, MaxProjection+1)}, "traits"},
		{"long cursor", store.Query{Type: "exo.note", After: strings.Repeat("A", maxCursor+1)}, "after"},
		{"cursor with another key type", store.Query{Type: "test.task", Order: "prio", After: cursor{fp: mustFP(t, ix, store.Query{Type: "test.task", Order: "prio"}), key: "text"}.encode()}, "order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ix.Query(ctx, tt.q)
			if !errors.Is(err, store.ErrQuery) || !strings.Contains(err.Error(), tt.part) {
				t.Fatalf("Query = %v, want ErrQuery naming %q", err, tt.part)
			}
			if _, err := ix.Watch(ctx, tt.q); !errors.Is(err, store.ErrQuery) {
				t.Fatalf("Watch = %v, want ErrQuery", err)
			}
		})
	}
}

// FuzzQuery: any query either answers or is refused with store.ErrQuery
// (never another error, never a panic); an answer is at most Limit hits,
// each with a live trait.
func FuzzQuery(f *testing.F) {
	f.Add("exo.note", "report", "tags", "=", "work", "", false, 2)
	f.Add("test.task", "", "prio", ">=", "1e400", "prio", true, 0)
	f.Add("test.task", "", "due", "<", "2026-01-15T11:30:00+01:00", "due", false, 1)
	f.Add("", "milk \"* NEAR(", "about", "=", "e0000000000000000000000000000001", "relevance", false, 3)
	f.Add("exo.note", "\x00", "tags", "^=", "\xff", "tags", true, -1)
	ix := openIndex(f, f.TempDir(), testRegistry(f))
	fx := &feeder{t: f, ix: ix}
	fx.apply(store.PutTrait(eid(1), note("Report", "milk report", 1, "work")))
	fx.apply(store.PutTrait(eid(2), task("t", `{"status":"open","prio":2,"due":"2026-02-01T00:00:00Z","about":["`+eid(1).String()+`"]}`, 2)))
	f.Fuzz(func(t *testing.T, typ, match, field, op, value, order string, desc bool, limit int) {
		q := store.Query{Type: typ, Match: match, Order: order, Desc: desc, Limit: limit}
		if field != "" {
			q.Where = []store.Predicate{{Field: field, Op: store.Cmp(op), Value: value}}
		}
		p, err := ix.Query(t.Context(), q)
		if err != nil {
			if !errors.Is(err, store.ErrQuery) {
				t.Fatalf("%+v: %v, not ErrQuery", q, err)
			}
			return
		}
		if len(p.Hits) > max(limit, store.DefaultLimit) {
			t.Fatalf("%+v: %d hits", q, len(p.Hits))
		}
		for _, h := range p.Hits {
			if len(h.Entity.Traits) == 0 {
				t.Fatalf("%+v: a hit without traits", q)
			}
		}
	})
}

// TestManyTerms: a trait with more values than one insert statement
// takes is indexed whole, and a replace removes them all.
func TestManyTerms(t *testing.T) {
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	f := &feeder{t: t, ix: ix}
	var refs []string
	for n := range 2*maxTermRows + 3 {
		refs = append(refs, `"`+eid(100+n).String()+`"`)
	}
	f.apply(store.PutTrait(eid(1), task("t", `{"about":[`+strings.Join(refs, ",")+`]}`, 1)))
	for _, n := range []int{100, 100 + maxTermRows, 100 + 2*maxTermRows + 2} {
		id := eid(n)
		p, err := ix.Query(t.Context(), store.Query{RefersTo: &id})
		if err != nil || len(ids(p)) != 1 {
			t.Fatalf("refers to %d: %v, %v", n, ids(p), err)
		}
	}
	f.apply(store.PutTrait(eid(1), task("t", `{"about":[]}`, 2)))
	id := eid(100 + maxTermRows)
	if p, err := ix.Query(t.Context(), store.Query{RefersTo: &id}); err != nil || len(p.Hits) != 0 {
		t.Fatalf("after the replace: %v, %v", ids(p), err)
	}
}
