package index

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/exopeer/exopeer/store"
	gocmp "github.com/google/go-cmp/cmp"
)

// entry is one chain entry of a workload: its position and payload.
type entry struct {
	pos store.Pos
	p   []byte
}

var words = []string{"alpha", "beta", "gamma", "delta", "Épée", "epee", "report", "milk"}

// workload returns n entries of random mutations on a few entities, with
// distinct positions (random clocks, so arrival order and chain order
// differ), malformed payloads, schema refusals, unknown types, text that
// is not a mutation, and batches of transactions (store.EncodeBatch) some
// of which are malformed or refused.
func workload(t testing.TB, r *rand.Rand, n, entities int) []entry {
	t.Helper()
	phrase := func() string {
		s := words[r.IntN(len(words))]
		for range r.IntN(4) {
			s += " " + words[r.IntN(len(words))]
		}
		return s
	}
	tm := func() time.Time { return t0.Add(time.Duration(r.IntN(50)) * time.Minute) }
	put := func(e store.EntityID) store.Op {
		tr := store.Trait{Created: tm(), Modified: tm()}
		switch k := r.IntN(10); {
		case k < 5:
			tr.Type, tr.ID = "exo.note", store.TraitID([]string{"exo.note", "n2"}[r.IntN(2)])
			doc := map[string]any{"body": phrase()}
			if r.IntN(2) == 0 {
				doc["title"] = phrase()
			}
			if r.IntN(2) == 0 {
				doc["tags"] = []string{[]string{"red", "green", "blue"}[r.IntN(3)], "x"}
			}
			tr.Doc, _ = json.Marshal(doc)
		case k < 8:
			tr.Type, tr.ID = "test.task", store.TraitID([]string{"t", "t2"}[r.IntN(2)])
			doc := map[string]any{"status": []string{"open", "done"}[r.IntN(2)], "prio": r.IntN(5),
				"title": phrase(), "about": []string{eid(r.IntN(entities)).String()}}
			if r.IntN(3) > 0 {
				doc["due"] = tm().Format(time.RFC3339)
			}
			tr.Doc, _ = json.Marshal(doc)
		default:
			tr.Type, tr.ID = "x.unknown", "u"
			tr.Doc = json.RawMessage(fmt.Sprintf(`{"body":%q}`, phrase()))
		}
		return store.PutTrait(e, tr)
	}
	ops := func() []store.Op {
		var ops []store.Op
		for range 1 + r.IntN(3) {
			e := eid(r.IntN(entities))
			switch k := r.IntN(10); {
			case k < 7:
				ops = append(ops, put(e))
			case k < 9:
				ops = append(ops, store.DeleteTrait(e, store.TraitID([]string{"exo.note", "n2", "t", "t2", "u"}[r.IntN(5)])))
			default:
				ops = append(ops, store.DeleteEntity(e))
			}
		}
		return ops
	}
	bad := store.Trait{Type: "exo.note", ID: "exo.note", Doc: json.RawMessage(`{"title":"x"}`), Created: t0, Modified: t0}
	var out []entry
	for i := range n {
		pos := store.Pos{Clock: uint64(1 + r.IntN(n/2)), Key: fmt.Sprintf("key%04d", i)}
		var p []byte
		switch k := r.IntN(40); {
		case k == 0:
			p = []byte("plain text on the chain")
		case k == 1:
			p = []byte{store.Magic, store.Version, 1, 9} // malformed
		case k == 2: // refused by the note schema: no body
			p = mustEncode(t, put(eid(r.IntN(entities))), store.PutTrait(eid(r.IntN(entities)), bad))
		case k < 12: // a batch, whose transactions apply or are skipped alone
			txs := make([][]byte, 2+r.IntN(3))
			for j := range txs {
				switch r.IntN(8) {
				case 0:
					txs[j] = []byte{store.Magic, store.Version, 1, 9}
				case 1:
					txs[j] = mustEncode(t, put(eid(r.IntN(entities))), store.PutTrait(eid(r.IntN(entities)), bad))
				default:
					txs[j] = mustEncode(t, ops()...)
				}
			}
			var err error
			if p, err = store.EncodeBatch(txs); err != nil {
				t.Fatal(err)
			}
		default:
			p = mustEncode(t, ops()...)
		}
		out = append(out, entry{pos, p})
	}
	return out
}

func mustEncode(t testing.TB, ops ...store.Op) []byte {
	t.Helper()
	p, err := store.Encode(store.Transaction{Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// applyAll applies es as arrivals from, in batches of 1 to maxBatch.
func applyAll(t testing.TB, ix *Index, r *rand.Rand, from uint64, es []entry, maxBatch int) {
	t.Helper()
	for len(es) > 0 {
		n := min(len(es), 1+r.IntN(maxBatch))
		as := make([]Arrival, n)
		for i, e := range es[:n] {
			as[i] = Arrival{Index: from + uint64(i), CID: []byte(e.pos.Key), Pos: e.pos, Payload: e.p}
		}
		if _, err := ix.Apply(t.Context(), as); err != nil {
			t.Fatal(err)
		}
		from += uint64(n)
		es = es[n:]
	}
}

var convergenceQueries = []store.Query{
	{Limit: store.MaxLimit},
	{Type: "exo.note", Limit: 7},
	{Type: "exo.note", Asc: true, Traits: []string{"exo.note"}},
	{Match: "alpha"},
	{Match: "epee beta", Limit: 3},
	{Type: "exo.note", Match: "report", Order: store.OrderCreated},
	{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "red"}}},
	{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Prefix, Value: "g"}}, Order: "tags", Desc: true},
	{Type: "test.task", Order: "prio", Limit: 4},
	{Type: "test.task", Where: []store.Predicate{{Field: "prio", Op: store.Ge, Value: "2"}}, Order: "due", Asc: true},
	{Type: "test.task", Order: "status", Desc: true, Traits: []string{}},
	{RefersTo: func() *store.EntityID { id := eid(1); return &id }()},
}

// answers returns the JSON of every convergence query's pages (each
// followed to its end) and of Get of every entity.
func answers(t testing.TB, ix *Index, entities int) []byte {
	t.Helper()
	var out []any
	for _, q := range convergenceQueries {
		var pages []store.Page
		for {
			p, err := ix.Query(t.Context(), q)
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			pages = append(pages, p)
			if p.Next == "" {
				break
			}
			q.After = p.Next
		}
		out = append(out, pages)
	}
	for n := range entities {
		e, err := ix.Get(t.Context(), eid(n), nil)
		if errors.Is(err, store.ErrNotFound) {
			out = append(out, nil)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkState compares the index with store.State: Get of every entity,
// and the set of entities.
func checkState(t testing.TB, ix *Index, s *store.State, entities int) {
	t.Helper()
	for n := range entities {
		want, ok := s.Get(eid(n))
		got, err := ix.Get(t.Context(), eid(n), nil)
		if !ok {
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("entity %d: Get = %+v, %v; State has none", n, got, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("entity %d: %v", n, err)
		}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Fatalf("entity %d (-State +index):\n%s", n, diff)
		}
	}
	p, err := ix.Query(t.Context(), store.Query{Limit: store.MaxLimit, Traits: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	var got []store.EntityID
	for _, h := range p.Hits {
		got = append(got, h.Entity.ID)
	}
	slices.SortFunc(got, func(a, b store.EntityID) int { return slices.Compare(a[:], b[:]) })
	if diff := gocmp.Diff(s.Entities(), got); diff != "" {
		t.Fatalf("entities (-State +index):\n%s", diff)
	}
	var traits int64
	for _, id := range s.Entities() {
		e, _ := s.Get(id)
		traits += int64(len(e.Traits))
	}
	st, err := ix.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Entities != int64(len(s.Entities())) || st.Traits != traits {
		t.Fatalf("Stats counts %d entities, %d traits; State %d, %d", st.Entities, st.Traits, len(s.Entities()), traits)
	}
}

func TestConvergence(t *testing.T) {
	const entities = 12
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 11))
			es := workload(t, r, 160, entities)
			reg := testRegistry(t)
			s := store.NewState(reg)
			skipped := map[string]int64{}
			for _, e := range es {
				if !store.IsMutation(e.p) {
					continue
				}
				if err := s.Apply(e.pos, e.p); err != nil {
					if !errors.Is(err, store.ErrSkipped) {
						t.Fatal(err)
					}
				}
			}
			for k, v := range s.Stats().Skipped {
				skipped[k] = int64(v)
			}
			var want []byte
			for order := range 4 {
				r := rand.New(rand.NewPCG(seed, uint64(order)))
				shuffled := slices.Clone(es)
				if order > 0 {
					r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				}
				ix := openIndex(t, t.TempDir(), reg)
				applyAll(t, ix, r, 0, shuffled, []int{1, 5, 40, 200}[order])
				checkState(t, ix, s, entities)
				got := answers(t, ix, entities)
				if want == nil {
					want = got
				} else if string(got) != string(want) {
					t.Fatalf("seed %d order %d: answers differ from order 0:\n%s\n%s", seed, order, got, want)
				}
				st, err := ix.Stats(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if st.Next != uint64(len(es)) || !maps.Equal(st.Skipped, skipped) {
					t.Fatalf("seed %d: stats %+v, want next %d skipped %v", seed, st, len(es), skipped)
				}
				ix.Close()
			}
		})
	}
}

// modelList is what {Type: typ, Asc: asc} pages through, computed from
// State: the entities with a live trait of typ, by their best trait's
// modified time (newest first unless asc), ties by ID.
func modelList(s *store.State, typ string, asc bool, keep func(store.Trait) bool, key func(store.Trait) float64) []store.EntityID {
	type hit struct {
		id  store.EntityID
		key float64
	}
	var hits []hit
	for _, id := range s.Entities() {
		e, _ := s.Get(id)
		var h *hit
		for _, tr := range e.Traits {
			if tr.Type != typ || !keep(tr) {
				continue
			}
			if k := key(tr); h == nil || (asc && k < h.key) || (!asc && k > h.key) {
				h = &hit{id, k}
			}
		}
		if h != nil {
			hits = append(hits, *h)
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		c := cmp.Compare(a.key, b.key)
		if !asc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return slices.Compare(a.id[:], b.id[:])
	})
	var out []store.EntityID
	for _, h := range hits {
		out = append(out, h.id)
	}
	return out
}

func TestListAgainstModel(t *testing.T) {
	const entities = 30
	for seed := range uint64(3) {
		r := rand.New(rand.NewPCG(seed, 5))
		es := workload(t, r, 300, entities)
		reg := testRegistry(t)
		s := store.NewState(reg)
		for _, e := range es {
			if store.IsMutation(e.p) {
				_ = s.Apply(e.pos, e.p)
			}
		}
		ix := openIndex(t, t.TempDir(), reg)
		applyAll(t, ix, r, 0, es, 20)
		red := func(tr store.Trait) bool {
			var d struct{ Tags []string }
			_ = json.Unmarshal(tr.Doc, &d)
			return slices.Contains(d.Tags, "red")
		}
		all := func(store.Trait) bool { return true }
		prio := func(tr store.Trait) float64 {
			var d struct{ Prio float64 }
			_ = json.Unmarshal(tr.Doc, &d)
			return d.Prio
		}
		prio1 := func(tr store.Trait) bool { return prio(tr) >= 1 && prio(tr) < 4 }
		modified := func(tr store.Trait) float64 { return float64(tr.Modified.UnixNano()) }
		for _, c := range []struct {
			typ   string
			where []store.Predicate
			keep  func(store.Trait) bool
			order string
			key   func(store.Trait) float64
		}{
			{"exo.note", nil, all, "", modified},
			{"test.task", nil, all, "", modified},
			{"exo.note", []store.Predicate{{Field: "tags", Op: store.Eq, Value: "red"}}, red, "", modified},
			{"exo.note", []store.Predicate{{Field: "tags", Op: store.Prefix, Value: "r"}}, red, "", modified},
			{"test.task", []store.Predicate{{Field: "prio", Op: store.Lt, Value: "4"}, {Field: "prio", Op: store.Ge, Value: "1"}}, prio1, "prio", prio},
			{"test.task", []store.Predicate{{Field: "prio", Op: store.Ge, Value: "1"}, {Field: "prio", Op: store.Lt, Value: "4"}}, prio1, "", modified},
		} {
			typ := c.typ
			for _, asc := range []bool{false, true} {
				if c.order != "" {
					asc = !asc // fields: ascending unless Desc
				}
				// Pages of 2, streamed (type, equality) or grouped
				// (prefix), against the model.
				var got []store.EntityID
				q := store.Query{Type: typ, Where: c.where, Order: c.order, Limit: 2, Traits: []string{}}
				if c.order == "" {
					q.Asc = asc
				} else {
					q.Desc = !asc
				}
				for {
					p, err := ix.Query(t.Context(), q)
					if err != nil {
						t.Fatal(err)
					}
					for _, h := range p.Hits {
						got = append(got, h.Entity.ID)
					}
					if p.Next == "" {
						break
					}
					q.After = p.Next
				}
				if diff := gocmp.Diff(modelList(s, typ, asc, c.keep, c.key), got); diff != "" {
					t.Fatalf("seed %d %s asc %v (-model +index):\n%s", seed, typ, asc, diff)
				}
			}
		}
	}
}

// TestRankedAgainstGrouped: a match by relevance, read in FTS5's rank
// order (rankedHits), gives the same pages as the grouped statement.
func TestRankedAgainstGrouped(t *testing.T) {
	const entities = 30
	for seed := range uint64(3) {
		r := rand.New(rand.NewPCG(seed, 9))
		es := workload(t, r, 300, entities)
		ix := openIndex(t, t.TempDir(), testRegistry(t))
		applyAll(t, ix, r, 0, es, 20)
		for _, q := range []store.Query{
			{Match: "alpha", Limit: 2},
			{Match: "epee", Limit: 3},
			{Match: "beta gamma", Limit: 1},
			{Type: "exo.note", Match: "report", Limit: 2},
			{Type: "test.task", Match: "milk", Limit: 4},
		} {
			var pages int
			for {
				p, err := ix.compile(q)
				if err != nil {
					t.Fatal(err)
				}
				if !p.ranks() {
					t.Fatalf("%+v is not ranked", q)
				}
				tx, err := ix.read(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				ranked, err := p.rankedHits(t.Context(), tx)
				if err != nil {
					t.Fatal(err)
				}
				grouped, err := p.hits(t.Context(), tx)
				if err != nil {
					t.Fatal(err)
				}
				tx.Rollback()
				if diff := gocmp.Diff(grouped, ranked, gocmp.AllowUnexported(hit{})); diff != "" {
					t.Fatalf("seed %d %+v page %d (-grouped +ranked):\n%s", seed, q, pages, diff)
				}
				page, err := ix.run(t.Context(), p)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if page.Next == "" {
					break
				}
				q.After = page.Next
			}
			if pages < 2 {
				t.Fatalf("seed %d %+v: one page: the test pages nothing", seed, q)
			}
		}
	}
}

// TestConvergenceDenseTransactions: transactions of up to six operations
// on three entities and two trait IDs (a put, a trait delete and an
// entity delete of the same entity in one transaction, in every order),
// entries sharing clocks (their keys decide), applied in shuffled orders:
// the index holds store.State's state and answers alike.
func TestConvergenceDenseTransactions(t *testing.T) {
	const entities = 3
	for seed := range uint64(10) {
		r := rand.New(rand.NewPCG(seed, 77))
		var es []entry
		for i := range 60 {
			var ops []store.Op
			for range 1 + r.IntN(6) {
				e := eid(r.IntN(entities))
				tid := store.TraitID([]string{"a", "b"}[r.IntN(2)])
				switch k := r.IntN(6); {
				case k < 3:
					doc, _ := json.Marshal(map[string]any{"body": fmt.Sprint("w", r.IntN(5)), "tags": []string{fmt.Sprint("t", r.IntN(3))}})
					ops = append(ops, store.PutTrait(e, store.Trait{Type: "exo.note", ID: tid, Doc: doc, Created: t0, Modified: t0.Add(time.Duration(r.IntN(5)) * time.Minute)}))
				case k < 5:
					ops = append(ops, store.DeleteTrait(e, tid))
				default:
					ops = append(ops, store.DeleteEntity(e))
				}
			}
			es = append(es, entry{store.Pos{Clock: uint64(1 + r.IntN(10)), Key: fmt.Sprintf("k%03d", i)}, mustEncode(t, ops...)})
		}
		reg := testRegistry(t)
		s := store.NewState(reg)
		for _, e := range es {
			if err := s.Apply(e.pos, e.p); err != nil {
				t.Fatal(err)
			}
		}
		var want []byte
		for order := range 3 {
			sh := slices.Clone(es)
			rr := rand.New(rand.NewPCG(seed, uint64(order)))
			rr.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
			ix := openIndex(t, t.TempDir(), reg)
			applyAll(t, ix, rr, 0, sh, 7)
			checkState(t, ix, s, entities)
			got := answers(t, ix, entities)
			if want == nil {
				want = got
			} else if string(got) != string(want) {
				t.Fatalf("seed %d order %d: answers differ from order 0:\n%s\n%s", seed, order, got, want)
			}
			ix.Close()
		}
	}
}

// TestRankAfterHistory: full-text ranks depend on the live texts only: an
// index that held texts since replaced or deleted (FTS5's contentless
// deletes) ranks as one that only ever held the live ones.
func TestRankAfterHistory(t *testing.T) {
	reg := testRegistry(t)
	a := openIndex(t, t.TempDir(), reg)
	b := openIndex(t, t.TempDir(), reg)
	fa := &feeder{t: t, ix: a}
	fb := &feeder{t: t, ix: b}
	fa.apply(store.PutTrait(eid(1), note("x", "alpha beta gamma delta epsilon alpha alpha", 1)))
	fa.apply(store.PutTrait(eid(2), note("y", "alpha one two three four five six seven eight nine ten", 1)))
	fa.apply(store.PutTrait(eid(3), note("z", "alpha", 1)))
	fa.apply(store.PutTrait(eid(4), note("w", "omega omega omega", 1)))
	fa.apply(store.PutTrait(eid(1), note("x", "alpha beta", 2)))
	fa.apply(store.DeleteEntity(eid(2)))
	fa.apply(store.DeleteTrait(eid(4), "exo.note"))
	fb.raw(store.Pos{Clock: 3, Key: "k"}, fb.payload(store.PutTrait(eid(3), note("z", "alpha", 1))))
	fb.raw(store.Pos{Clock: 5, Key: "k"}, fb.payload(store.PutTrait(eid(1), note("x", "alpha beta", 2))))
	for _, q := range []store.Query{{Match: "alpha"}, {Match: "beta"}, {Match: "alpha", Order: store.OrderModified}} {
		pa, err := a.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := b.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		ja, _ := json.Marshal(pa)
		jb, _ := json.Marshal(pb)
		if len(pa.Hits) == 0 || string(ja) != string(jb) {
			t.Errorf("%+v:\nwith a history %s\nwithout       %s", q, ja, jb)
		}
	}
}
