package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type entry struct {
	pos Pos
	p   []byte
}

func pos(clock uint64) Pos { return Pos{Clock: clock, Key: "k"} }

func enc(t testing.TB, ops ...Op) []byte {
	t.Helper()
	p, err := Encode(Transaction{Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func apply(t *testing.T, s *State, es ...entry) {
	t.Helper()
	for _, e := range es {
		if err := s.Apply(e.pos, e.p); err != nil {
			t.Fatalf("Apply at %d: %v", e.pos.Clock, err)
		}
	}
}

// bodies returns entity id's live traits as "id=body" strings.
func bodies(s *State, id EntityID) []string {
	e, ok := s.Get(id)
	if !ok {
		return nil
	}
	var out []string
	for _, tr := range e.Traits {
		var doc struct{ Body string }
		_ = json.Unmarshal(tr.Doc, &doc)
		out = append(out, string(tr.ID)+"="+doc.Body)
	}
	return out
}

func TestStateRules(t *testing.T) {
	e := testID(1)
	put := func(clock uint64, tid TraitID, body string) entry {
		return entry{pos(clock), enc(t, PutTrait(e, noteTrait(tid, body)))}
	}
	del := func(clock uint64, tid TraitID) entry { return entry{pos(clock), enc(t, DeleteTrait(e, tid))} }
	delE := func(clock uint64) entry { return entry{pos(clock), enc(t, DeleteEntity(e))} }
	tests := []struct {
		name    string
		entries []entry // in arrival order
		want    []string
	}{
		{"later wins though it arrived first", []entry{put(2, "a", "two"), put(1, "a", "one")}, []string{"a=two"}},
		{"a put before a tombstone stays deleted", []entry{put(1, "a", "one"), del(3, "a"), put(2, "a", "late")}, nil},
		{"a put after a tombstone wins", []entry{del(3, "a"), put(4, "a", "four"), put(2, "a", "two")}, []string{"a=four"}},
		{"delete entity drops earlier traits only", []entry{put(3, "a", "a"), put(6, "b", "b"), delE(5), put(4, "c", "late"), put(7, "d", "d")}, []string{"b=b", "d=d"}},
		{"the latest delete entity counts", []entry{delE(5), put(4, "a", "a"), delE(2), put(6, "b", "b")}, []string{"b=b"}},
		{"a late early entry changes only what it should", []entry{
			put(5, "a", "a5"), put(5, "b", "b5"), put(3, "a", "a3"), put(3, "c", "c3"),
		}, []string{"a=a5", "b=b5", "c=c3"}},
		{"same clock: the key orders", []entry{
			{Pos{7, "y"}, enc(t, PutTrait(e, noteTrait("a", "y")))},
			{Pos{7, "x"}, enc(t, PutTrait(e, noteTrait("a", "x")))},
		}, []string{"a=y"}},
		{"within a transaction the later op wins", []entry{
			{pos(1), enc(t, PutTrait(e, noteTrait("a", "x")), DeleteTrait(e, "a"), PutTrait(e, noteTrait("b", "b")))},
		}, []string{"b=b"}},
		{"a transaction deletes then writes", []entry{
			put(1, "a", "a"), {pos(2), enc(t, DeleteEntity(e), PutTrait(e, noteTrait("b", "b")))},
		}, []string{"b=b"}},
		{"applying an entry twice is harmless", []entry{put(2, "a", "two"), put(1, "a", "one"), put(2, "a", "two")}, []string{"a=two"}},
		{"all traits deleted", []entry{put(1, "a", "a"), del(2, "a")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState(NewRegistry())
			apply(t, s, tt.entries...)
			if diff := cmp.Diff(tt.want, bodies(s, e)); diff != "" {
				t.Fatalf("traits (-want +got):\n%s", diff)
			}
			if _, ok := s.Get(e); ok != (len(tt.want) > 0) {
				t.Fatalf("Get ok = %v", ok)
			}
			if got := len(s.Entities()); got != min(len(tt.want), 1) {
				t.Fatalf("Entities has %d", got)
			}
		})
	}
}

func TestStateSkips(t *testing.T) {
	s := NewState(NewRegistry())
	e := testID(1)
	apply(t, s, entry{pos(1), enc(t, PutTrait(e, noteTrait("a", "kept")))})
	before := s.Canonical()
	bad := noteTrait("b", "")
	bad.Doc = json.RawMessage(`{"title":"no body"}`)
	// One document refused by its schema skips the whole transaction.
	err := s.Apply(pos(2), enc(t, PutTrait(e, noteTrait("c", "c")), DeleteTrait(e, "a"), PutTrait(e, bad)))
	var fe *FieldError
	if !errors.Is(err, ErrSkipped) || !errors.As(err, &fe) || fe.Path != "body" {
		t.Fatalf("Apply = %v, want ErrSkipped naming field body", err)
	}
	for i, p := range [][]byte{nil, {Magic}, {Magic, Version, 1, 9}, []byte("text on the chain")} {
		if err := s.Apply(pos(uint64(3+i)), p); !errors.Is(err, ErrSkipped) || !errors.Is(err, ErrMalformed) {
			t.Fatalf("Apply(%q) = %v, want ErrSkipped, ErrMalformed", p, err)
		}
	}
	if err := s.ApplyTransaction(pos(9), Transaction{}); !errors.Is(err, ErrSkipped) {
		t.Fatalf("ApplyTransaction(empty) = %v", err)
	}
	if !bytes.Equal(before, s.Canonical()) {
		t.Fatal("a skipped entry changed the state")
	}
	want := Stats{Applied: 1, Ops: 1, Skipped: map[string]int{SkipDecode: 5, SkipSchema: 1}}
	if diff := cmp.Diff(want, s.Stats()); diff != "" {
		t.Fatalf("Stats (-want +got):\n%s", diff)
	}
	// Unknown types are kept and returned.
	other := Trait{Type: "some.app", ID: "z", Doc: json.RawMessage(`[1]`)}
	apply(t, s, entry{pos(10), enc(t, PutTrait(e, other))})
	got, _ := s.Get(e)
	if len(got.Traits) != 2 || got.Traits[1].Type != "some.app" {
		t.Fatalf("Get = %+v", got)
	}
}

// genEntries makes n positioned entries over a few entities and traits, so
// that writes collide: distinct positions, clocks repeating, some
// malformed payloads and some documents their schema refuses.
func genEntries(t testing.TB, rng *rand.Rand, n int) []entry {
	ents := make([]EntityID, 5)
	for i := range ents {
		ents[i] = testID(byte(i + 1))
	}
	traits := []TraitID{"a", "b", "c", "d"}
	var es []entry
	for i := range n {
		p := Pos{Clock: 1 + rng.Uint64N(uint64(n/3+1)), Key: strconv.Itoa(i)}
		if rng.IntN(20) == 0 {
			es = append(es, entry{p, []byte{Magic, Version, byte(rng.IntN(4))}})
			continue
		}
		var ops []Op
		for range 1 + rng.IntN(3) {
			e, tid := ents[rng.IntN(len(ents))], traits[rng.IntN(len(traits))]
			switch k := rng.IntN(10); {
			case k < 6:
				tr := noteTrait(tid, fmt.Sprintf("%d.%d", i, len(ops)))
				// Created times that vary and repeat, some zero ("keep
				// the one held"): the trait's is the earliest since its
				// latest delete, whatever the arrival order.
				if k := rng.IntN(8); k == 0 {
					tr.Created = time.Time{}
				} else {
					tr.Created = tr.Created.Add(time.Duration(rng.IntN(6)) * time.Minute)
				}
				if rng.IntN(30) == 0 {
					tr.Doc = json.RawMessage(`{"body":1}`)
				}
				ops = append(ops, PutTrait(e, tr))
			case k < 9:
				ops = append(ops, DeleteTrait(e, tid))
			default:
				ops = append(ops, DeleteEntity(e))
			}
		}
		es = append(es, entry{p, enc(t, ops...)})
	}
	return es
}

// oracle computes, by brute force over the whole set, each entity's live
// traits (as traitStrings writes them): for each trait the last valid op
// in chain order after the entity's last delete, with the earliest
// non-zero Created of the trait's puts after its and its entity's latest
// delete.
func oracle(t *testing.T, reg *Registry, es []entry) map[EntityID][]string {
	sorted := slices.Clone(es)
	slices.SortFunc(sorted, func(a, b entry) int { return a.pos.Compare(b.pos) })
	type key struct {
		e   EntityID
		tid TraitID
	}
	last := map[key]*Op{}
	created := map[key]time.Time{}
	var txs []Transaction // each valid transaction, in chain order
	for _, en := range sorted {
		parts, err := Split(en.p)
		if err != nil {
			continue
		}
		for _, part := range parts {
			tx, err := Decode(part)
			if err != nil || slices.ContainsFunc(tx.Ops, func(o Op) bool {
				return o.Kind == OpPutTrait && reg.Validate(o.Trait.Type, o.Trait.Doc) != nil
			}) {
				continue
			}
			txs = append(txs, tx)
		}
	}
	for _, tx := range txs {
		for i := range tx.Ops {
			o := &tx.Ops[i]
			if o.Kind == OpDeleteEntity {
				for k := range last {
					if k.e == o.Entity {
						delete(last, k)
						delete(created, k)
					}
				}
				continue
			}
			k := key{o.Entity, o.Trait.ID}
			last[k] = o
			switch c, ok := created[k]; {
			case o.Kind == OpDeleteTrait:
				delete(created, k)
			case !o.Trait.Created.IsZero() && (!ok || o.Trait.Created.Before(c)):
				created[k] = o.Trait.Created
			}
		}
	}
	out := map[EntityID][]string{}
	for k, o := range last {
		if o.Kind == OpPutTrait {
			tr := o.Trait
			tr.Created = created[k]
			out[k.e] = append(out[k.e], traitString(tr))
		}
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// traitString writes a trait as "id=body@created".
func traitString(tr Trait) string {
	var doc struct{ Body string }
	_ = json.Unmarshal(tr.Doc, &doc)
	return fmt.Sprintf("%s=%s@%s", tr.ID, doc.Body, tr.Created.Format(time.RFC3339Nano))
}

// TestStateConverges applies one set of entries in many seeded random
// arrival orders (with repeats) and wants the same canonical state every
// time, equal to the brute-force oracle's.
func TestStateConverges(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 11))
		checkConverges(t, rng, seed, genEntries(t, rng, 300))
	}
}

// TestStateConvergesBatches: the same with entries that are batches of
// transactions (some of them malformed or refused by a schema, skipped
// alone).
func TestStateConvergesBatches(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 12))
		es := batched(t, rng, genEntries(t, rng, 400))
		checkConverges(t, rng, seed, es)
	}
}

// batched merges runs of 2 to 4 of es into batch entries at the first's
// position (a malformed payload among them stays a malformed transaction
// of the batch).
func batched(t testing.TB, rng *rand.Rand, es []entry) []entry {
	var out []entry
	for len(es) > 0 {
		n := min(len(es), 1+rng.IntN(4))
		if n == 1 {
			out, es = append(out, es[0]), es[1:]
			continue
		}
		var txs [][]byte
		for _, e := range es[:n] {
			p := e.p
			if p[1] != Version || len(p) < 3 { // EncodeBatch takes version 1 encodings only
				p = []byte{Magic, Version, 0}
			}
			txs = append(txs, p)
		}
		p, err := EncodeBatch(txs)
		if err != nil {
			t.Fatal(err)
		}
		out, es = append(out, entry{es[0].pos, p}), es[n:]
	}
	return out
}

func checkConverges(t *testing.T, rng *rand.Rand, seed uint64, es []entry) {
	t.Helper()
	reg := NewRegistry()
	want := oracle(t, reg, es)
	var ref []byte
	var refStats Stats
	for round := range 10 {
		order := slices.Clone(es)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		if round%2 == 1 {
			order = append(order, order[:len(order)/4]...) // entries seen twice
		}
		s := NewState(reg)
		for _, e := range order {
			_ = s.Apply(e.pos, e.p)
		}
		got := map[EntityID][]string{}
		for _, id := range s.Entities() {
			e, _ := s.Get(id)
			for _, tr := range e.Traits {
				got[id] = append(got[id], traitString(tr))
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("seed %d round %d: state differs from the oracle (-want +got):\n%s", seed, round, diff)
		}
		c := s.Canonical()
		st := s.Stats()
		if round%2 == 1 {
			continue // repeats count twice
		}
		if ref == nil {
			ref, refStats = c, st
			if st.Skipped[SkipDecode] == 0 || st.Skipped[SkipSchema] == 0 || len(got) == 0 {
				t.Fatalf("seed %d: the generator made no skips or no state: %+v", seed, st)
			}
			continue
		}
		if !bytes.Equal(ref, c) {
			t.Fatalf("seed %d round %d: canonical state differs from round 0", seed, round)
		}
		if diff := cmp.Diff(refStats, st); diff != "" {
			t.Fatalf("seed %d round %d: stats differ:\n%s", seed, round, diff)
		}
	}
}

// TestApplyGarbage: random bytes and mutated payloads never panic and are
// either applied or skipped with a reason.
func TestApplyGarbage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	es := genEntries(t, rng, 200)
	s := NewState(NewRegistry())
	for i, e := range es {
		p := bytes.Clone(e.p)
		for range 1 + rng.IntN(3) {
			p[rng.IntN(len(p))] = byte(rng.Uint32())
		}
		if err := s.Apply(Pos{Clock: uint64(i)}, p); err != nil && !errors.Is(err, ErrSkipped) {
			t.Fatalf("Apply = %v, want nil or ErrSkipped", err)
		}
	}
	st := s.Stats()
	if st.Applied+st.Skipped[SkipDecode]+st.Skipped[SkipSchema] != len(es) || st.Skipped[SkipDecode] == 0 {
		t.Fatalf("stats %+v do not account for %d entries", st, len(es))
	}
}

// BenchmarkApply: transactions of one put applied in a shuffled order over
// 10,000 entities with 3 traits each; reports mutations/s.
func BenchmarkApply(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 30000
	es := make([]entry, n)
	for i := range es {
		var e EntityID
		binary.BigEndian.PutUint64(e[:8], uint64(i/3)+1)
		tr := noteTrait(TraitID("t"+strconv.Itoa(i%3)), "body "+strconv.Itoa(i))
		es[i] = entry{Pos{Clock: uint64(1 + rng.IntN(n)), Key: strconv.Itoa(i)}, enc(b, PutTrait(e, tr))}
	}
	reg := NewRegistry()
	b.ResetTimer()
	applied := 0
	for b.Loop() {
		s := NewState(reg)
		for _, e := range es {
			if err := s.Apply(e.pos, e.p); err != nil {
				b.Fatal(err)
			}
		}
		applied += n
	}
	b.ReportMetric(float64(applied)/b.Elapsed().Seconds(), "mutations/s")
}

// TestStateCreatedEarliest: a trait's Created is the earliest of its
// puts' since its latest delete (a put with no Created counts for none),
// its document the last put's, in every arrival order.
func TestStateCreatedEarliest(t *testing.T) {
	e := testID(1)
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	put := func(clock uint64, body string, created time.Time) entry {
		tr := noteTrait("n", body)
		tr.Created = created
		return entry{pos(clock), enc(t, PutTrait(e, tr))}
	}
	del := entry{pos(3), enc(t, DeleteTrait(e, "n"))}
	delEntity := entry{pos(3), enc(t, DeleteEntity(e))}
	for _, c := range []struct {
		name string
		es   []entry
		want string
	}{
		{"earlier first", []entry{put(1, "a", t0), put(2, "b", t0.Add(5*time.Minute))}, "n=b@2026-11-26T09:00:00Z"},
		{"earlier last", []entry{put(1, "a", t0.Add(5*time.Minute)), put(2, "b", t0)}, "n=b@2026-11-26T09:00:00Z"},
		{"zero keeps", []entry{put(1, "a", t0), put(2, "b", time.Time{})}, "n=b@2026-11-26T09:00:00Z"},
		{"zero alone", []entry{put(2, "b", time.Time{})}, "n=b@0001-01-01T00:00:00Z"},
		{"delete cuts", []entry{put(1, "a", t0), put(2, "b", t0.Add(time.Minute)), del,
			put(4, "c", t0.Add(7*time.Minute)), put(5, "d", t0.Add(9*time.Minute))}, "n=d@2026-11-26T09:07:00Z"},
		{"delete, then zero", []entry{put(1, "a", t0), del, put(4, "c", time.Time{})}, "n=c@0001-01-01T00:00:00Z"},
		{"entity delete cuts", []entry{put(1, "a", t0), delEntity,
			put(4, "c", t0.Add(7*time.Minute)), put(5, "d", t0.Add(9*time.Minute))}, "n=d@2026-11-26T09:07:00Z"},
	} {
		var ref []byte
		for _, order := range permutations(len(c.es)) {
			s := NewState(NewRegistry())
			for _, i := range order {
				apply(t, s, c.es[i])
			}
			ent, _ := s.Get(e)
			var got []string
			for _, tr := range ent.Traits {
				got = append(got, traitString(tr))
			}
			if diff := cmp.Diff([]string{c.want}, got); diff != "" {
				t.Errorf("%s, order %v (-want +got):\n%s", c.name, order, diff)
			}
			if ref == nil {
				ref = s.Canonical()
			} else if !bytes.Equal(ref, s.Canonical()) {
				t.Errorf("%s, order %v: canonical state differs from the first order's", c.name, order)
			}
		}
	}
}

// permutations returns every order of 0 to n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := range n {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}
