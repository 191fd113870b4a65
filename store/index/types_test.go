package index

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/exopeer/exopeer/store"
)

// TestTypesVersion: each commit moves the version of the types it
// touched (a put's type, the type of a live trait replaced or deleted,
// the types of an entity deleted) and of no other; Reset moves every
// type's; an index opened again starts at versions it never gave.
func TestTypesVersion(t *testing.T) {
	dir := t.TempDir()
	ix := openIndex(t, dir, testRegistry(t))
	f := &feeder{t: t, ix: ix}
	types := []string{"exo.note", "test.task", "x.a", "x.b"}
	vs := func() map[string]uint64 {
		m := map[string]uint64{"": ix.TypesVersion()}
		for _, typ := range types {
			m[typ] = ix.TypesVersion(typ)
		}
		return m
	}
	seen := map[uint64]bool{}
	for _, v := range vs() {
		seen[v] = true
	}
	moved := func(step string, before map[string]uint64, want ...string) {
		t.Helper()
		after := vs()
		var got []string
		for _, typ := range append([]string{""}, types...) {
			if after[typ] != before[typ] {
				got = append(got, typ)
			}
		}
		if len(want) > 0 {
			want = append([]string{""}, want...) // any type's moves too
		}
		if !cmp.Equal(got, want) {
			t.Errorf("%s: versions of %q moved, want %q", step, got, want)
		}
		if both := ix.TypesVersion("exo.note", "test.task"); both != max(after["exo.note"], after["test.task"]) {
			t.Errorf("%s: version of two types %d, want the larger of theirs", step, both)
		}
	}
	steps := []struct {
		name string
		ops  []store.Op
		want []string
	}{
		{"a note", []store.Op{store.PutTrait(eid(1), note("a", "a", 1))}, []string{"exo.note"}},
		{"a task beside it", []store.Op{store.PutTrait(eid(1), task("t", `{"status":"open"}`, 2))}, []string{"test.task"}},
		{"a type without a schema", []store.Op{store.PutTrait(eid(2), store.Trait{Type: "x.a", ID: "u", Doc: []byte(`{}`), Created: t0, Modified: t0})}, []string{"x.a"}},
		{"another one", []store.Op{store.PutTrait(eid(2), store.Trait{Type: "x.b", ID: "v", Doc: []byte(`{}`), Created: t0, Modified: t0})}, []string{"x.b"}},
		{"a trait deleted", []store.Op{store.DeleteTrait(eid(1), "exo.note")}, []string{"exo.note"}},
		{"a trait never written deleted", []store.Op{store.DeleteTrait(eid(3), "exo.note")}, nil},
		{"a trait's type replaced", []store.Op{store.PutTrait(eid(2), store.Trait{Type: "exo.note", ID: "u", Doc: []byte(`{"body":"b"}`), Created: t0, Modified: t0})}, []string{"exo.note", "x.a"}},
		{"an entity deleted", []store.Op{store.DeleteEntity(eid(2))}, []string{"exo.note", "x.b"}},
		{"an entity deleted again", []store.Op{store.DeleteEntity(eid(2))}, nil},
	}
	for _, s := range steps {
		before := vs()
		f.apply(s.ops...)
		moved(s.name, before, s.want...)
		for _, v := range vs() {
			seen[v] = true
		}
	}
	before := vs()
	f.raw(store.Pos{Clock: 99, Key: "k"}, []byte("not a mutation"))
	moved("not a mutation", before)

	before = vs()
	if err := ix.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	moved("reset", before, types...)
	for _, v := range vs() {
		seen[v] = true
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	again := openIndex(t, dir, testRegistry(t))
	for _, typ := range append([]string{""}, types...) {
		if v := again.TypesVersion(typ); seen[v] {
			t.Errorf("reopened: version %d of %q was given before", v, typ)
		}
	}
}

// TestTypesVersionBounded: the types without a schema past
// maxExtraTypes share one version, and the slots stay as many.
func TestTypesVersionBounded(t *testing.T) {
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	f := &feeder{t: t, ix: ix}
	n := len(ix.types.slots)
	for i := range maxExtraTypes + 3 {
		f.apply(store.PutTrait(eid(1), store.Trait{Type: fmt.Sprintf("x.t%d", i), ID: store.TraitID(fmt.Sprint("t", i)), Doc: []byte(`{}`), Created: t0, Modified: t0}))
	}
	if len(ix.types.slots) != n || len(*ix.types.extra.Load()) != maxExtraTypes {
		t.Fatalf("%d slots (%d extra types), want %d (%d)", len(ix.types.slots), len(*ix.types.extra.Load()), n, maxExtraTypes)
	}
	late1, late2 := fmt.Sprintf("x.t%d", maxExtraTypes), fmt.Sprintf("x.t%d", maxExtraTypes+1)
	if ix.TypesVersion(late1) != ix.TypesVersion(late2) {
		t.Errorf("two types past the bound have versions %d and %d, want one shared", ix.TypesVersion(late1), ix.TypesVersion(late2))
	}
	before := ix.TypesVersion("x.t0")
	f.apply(store.PutTrait(eid(1), store.Trait{Type: late1, ID: "t99", Doc: []byte(`{}`), Created: t0, Modified: t0}))
	if ix.TypesVersion("x.t0") != before {
		t.Errorf("a type with a slot of its own moved with a type past the bound")
	}
}

// TestWatchWakesForItsTypes: a watch is not run again for a commit that
// touches none of its query's types, and still gets every change of
// its type, of the other types it returns, and of entity deletes.
func TestWatchWakesForItsTypes(t *testing.T) {
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	f := &feeder{t: t, ix: ix}
	f.apply(store.PutTrait(eid(1), task("t", `{"status":"open"}`, 1)))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := ix.Watch(ctx, store.Query{Type: "test.task", Traits: []string{"test.task", "exo.note"}})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Page == nil || !cmp.Equal(ids(*ev.Page), []int{1}) {
		t.Fatalf("first event %+v", ev)
	}
	// Commits of other types only: a refresh round (run here, so that
	// it has run when the count is read; the refresher's own rounds
	// skip it too) does not run the watch's query.
	runs := ix.watchRuns.Load()
	f.apply(store.PutTrait(eid(2), store.Trait{Type: "x.other", ID: "o", Doc: []byte(`{}`), Created: t0, Modified: t0}))
	f.apply(store.PutTrait(eid(1), store.Trait{Type: "x.more", ID: "m", Doc: []byte(`{}`), Created: t0, Modified: t0}))
	f.apply(store.DeleteEntity(eid(2)))
	ix.refresh(t.Context())
	if n := ix.watchRuns.Load() - runs; n != 0 {
		t.Fatalf("the watch's query ran %d times for commits of other types", n)
	}
	kinds := func(ev store.WatchEvent) []string {
		var out []string
		for _, c := range ev.Changes {
			out = append(out, fmt.Sprintf("%s %d %d", c.Kind, c.Hit.Entity.ID[15], len(c.Hit.Entity.Traits)))
		}
		return out
	}
	steps := []struct {
		name string
		op   store.Op
		want []string
	}{
		{"a task added", store.PutTrait(eid(2), task("t", `{"status":"open"}`, 3)), []string{"added 2 1"}},
		{"a task changed", store.PutTrait(eid(1), task("t", `{"status":"done"}`, 4)), []string{"changed 1 1"}},
		{"a returned trait of another type", store.PutTrait(eid(1), note("m", "m", 5)), []string{"changed 1 2"}},
		{"it deleted", store.DeleteTrait(eid(1), "exo.note"), []string{"changed 1 1"}},
		{"an entity deleted", store.DeleteEntity(eid(2)), []string{"removed 2 0"}},
	}
	for _, s := range steps {
		f.apply(s.op)
		if got := kinds(<-ch); !cmp.Equal(got, s.want) {
			t.Fatalf("%s: changes %v, want %v", s.name, got, s.want)
		}
	}
}

// TestWatchOfEveryTraitWakes: a watch that returns every trait (nil
// Traits) may change with a trait of any type: it is run again for it.
func TestWatchOfEveryTraitWakes(t *testing.T) {
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	f := &feeder{t: t, ix: ix}
	f.apply(store.PutTrait(eid(1), task("t", `{"status":"open"}`, 1)))
	ch, err := ix.Watch(t.Context(), store.Query{Type: "test.task"})
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	f.apply(store.PutTrait(eid(1), store.Trait{Type: "x.other", ID: "o", Doc: []byte(`{}`), Created: t0, Modified: t0}))
	if ev := <-ch; len(ev.Changes) != 1 || ev.Changes[0].Kind != store.Changed || len(ev.Changes[0].Hit.Entity.Traits) != 2 {
		t.Fatalf("after a trait of another type: %+v", ev)
	}
}

// BenchmarkTypesVersion is a reader's look at two types' version (a
// cache's check), registered or not.
func BenchmarkTypesVersion(b *testing.B) {
	ix := openIndex(b, b.TempDir(), testRegistry(b))
	f := &feeder{t: b, ix: ix}
	f.apply(store.PutTrait(eid(1), store.Trait{Type: "x.other", ID: "o", Doc: []byte(`{}`), Created: t0, Modified: t0}))
	b.ReportAllocs()
	for b.Loop() {
		ix.TypesVersion("exo.note", "x.other")
	}
}

// TestWatchOfANewTypeWakes: a watch of a type without a schema that no
// commit touched yet (so it had no slot of its own when the watch began)
// is run again when a commit gives the type its slot: its deps are
// looked up by type at each refresh, not frozen at the shared slot.
func TestWatchOfANewTypeWakes(t *testing.T) {
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	f := &feeder{t: t, ix: ix}
	ch, err := ix.Watch(t.Context(), store.Query{Type: "x.late", Traits: []string{"x.late"}})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Page == nil || len(ev.Page.Hits) != 0 {
		t.Fatalf("first event %+v, want an empty page", ev)
	}
	runs := ix.watchRuns.Load()
	f.apply(store.PutTrait(eid(1), store.Trait{Type: "x.late", ID: "l", Doc: []byte(`{}`), Created: t0, Modified: t0}))
	ix.refresh(t.Context())
	if n := ix.watchRuns.Load() - runs; n == 0 {
		t.Fatalf("the watch of x.late was not run again after a commit of its first trait")
	}
	if ev := <-ch; len(ev.Changes) != 1 || ev.Changes[0].Kind != store.Added {
		t.Fatalf("after the first x.late trait: %+v, want it added", ev)
	}
}
