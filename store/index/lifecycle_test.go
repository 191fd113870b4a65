package index

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/exopeer/exopeer/store"
)

// TestRestartAndReset: an index closed halfway resumes from its
// checkpoint; Reset then re-applying gives the same answers.
func TestRestartAndReset(t *testing.T) {
	const entities = 12
	const seed = 7
	r := rand.New(rand.NewPCG(seed, 1))
	es := workload(t, r, 200, entities)
	reg := testRegistry(t)

	whole := openIndex(t, t.TempDir(), reg)
	applyAll(t, whole, r, 0, es, 10)
	want := answers(t, whole, entities)

	dir := t.TempDir()
	ix, err := Open(dir, reg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, ix, r, 0, es[:90], 7)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = openIndex(t, dir, reg)
	if ix.Emptied() {
		t.Fatal("reopened with the same schemas: emptied")
	}
	cp, err := ix.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cp.Next != 90 || !bytes.Equal(cp.Last, []byte(es[89].pos.Key)) {
		t.Fatalf("checkpoint after restart = %d %q, want 90 %q", cp.Next, cp.Last, es[89].pos.Key)
	}
	// Out of order: refused, nothing applied.
	for _, from := range []uint64{89, 91} {
		_, err := ix.Apply(t.Context(), []Arrival{{Index: from, Pos: es[0].pos, Payload: es[0].p}})
		if !errors.Is(err, ErrOrder) {
			t.Fatalf("Apply from %d = %v, want ErrOrder", from, err)
		}
	}
	if _, err := ix.Apply(t.Context(), []Arrival{{Index: 90, Pos: es[90].pos, Payload: es[90].p}, {Index: 92}}); !errors.Is(err, ErrOrder) {
		t.Fatalf("Apply with a gap = %v, want ErrOrder", err)
	}
	applyAll(t, ix, r, 90, es[90:], 13)
	if got := answers(t, ix, entities); !bytes.Equal(got, want) {
		t.Fatalf("after restart:\n%s\nwant\n%s", got, want)
	}

	if err := ix.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, err := ix.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Next != 0 || st.Entities != 0 || st.Traits != 0 || len(st.Skipped) != 0 {
		t.Fatalf("stats after Reset: %+v", st)
	}
	if cp, _ := ix.Checkpoint(t.Context()); cp.Next != 0 || cp.Last != nil {
		t.Fatalf("checkpoint after Reset: %+v", cp)
	}
	applyAll(t, ix, r, 0, es, 50)
	if got := answers(t, ix, entities); !bytes.Equal(got, want) {
		t.Fatalf("after Reset and re-apply:\n%s\nwant\n%s", got, want)
	}
}

// TestSchemaChange: a registry with other schemas empties the index at
// Open; the same schemas keep it.
func TestSchemaChange(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, store.NewRegistry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ix.Emptied() {
		t.Fatal("a new index counts as emptied")
	}
	f := &feeder{t: t, ix: ix}
	f.apply(store.PutTrait(eid(1), note("a", "b", 1)))
	ix.Close()

	ix, err = Open(dir, store.NewRegistry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Get(t.Context(), eid(1), nil); ix.Emptied() || err != nil {
		t.Fatalf("same schemas: emptied %v, Get %v", ix.Emptied(), err)
	}
	ix.Close()

	ix = openIndex(t, dir, testRegistry(t)) // one more type
	if !ix.Emptied() {
		t.Fatal("other schemas: not emptied")
	}
	if cp, err := ix.Checkpoint(t.Context()); err != nil || cp.Next != 0 {
		t.Fatalf("checkpoint %+v, %v", cp, err)
	}
	if _, err := ix.Get(t.Context(), eid(1), nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after emptying = %v", err)
	}
}

// TestEngineInFingerprint: an index made by another SQLite (which may
// tokenise or rank otherwise) is emptied as one made for other schemas.
func TestEngineInFingerprint(t *testing.T) {
	dir := t.TempDir()
	ix := openIndex(t, dir, store.NewRegistry())
	f := &feeder{t: t, ix: ix}
	f.apply(store.PutTrait(eid(1), note("a", "b", 1)))
	if _, err := ix.wc.ExecContext(t.Context(), `UPDATE meta SET v = ? WHERE k = 'fingerprint'`, fingerprint(ix.reg, "3.0.0")); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	ix = openIndex(t, dir, store.NewRegistry())
	if !ix.Emptied() {
		t.Fatal("an index of another SQLite: not emptied")
	}
}

// TestSkips: malformed and refused mutations are skipped, counted and
// returned; text payloads are ignored; all advance the checkpoint.
func TestSkips(t *testing.T) {
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	f := &feeder{t: t, ix: ix}
	bad := store.Trait{Type: "test.task", ID: "t", Doc: []byte(`{"prio":"high"}`), Created: t0, Modified: t0}
	p := f.payload(store.PutTrait(eid(1), note("kept?", "no", 1)), store.PutTrait(eid(1), bad))
	skips := f.raw(store.Pos{Clock: 1, Key: "a"}, p)
	var fe *store.FieldError
	if len(skips) != 1 || skips[0].Reason != store.SkipSchema || skips[0].Index != 0 || !errors.As(skips[0].Err, &fe) || fe.Path != "prio" {
		t.Fatalf("schema skip = %+v", skips)
	}
	skips = f.raw(store.Pos{Clock: 2, Key: "b"}, []byte{store.Magic, store.Version, 0})
	if len(skips) != 1 || skips[0].Reason != store.SkipDecode || !errors.Is(skips[0].Err, store.ErrMalformed) {
		t.Fatalf("decode skip = %+v", skips)
	}
	if skips := f.raw(store.Pos{Clock: 3, Key: "c"}, []byte("hello")); len(skips) != 0 {
		t.Fatalf("text payload: %+v", skips)
	}
	st, err := ix.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Next != 3 || st.Entities != 0 || st.Skipped[store.SkipSchema] != 1 || st.Skipped[store.SkipDecode] != 1 || st.Bytes == 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := ix.Get(t.Context(), eid(1), nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a skipped transaction applied: %v", err)
	}
}

func TestClosed(t *testing.T) {
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := t.Context()
	if _, err := ix.Apply(ctx, []Arrival{{}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply = %v", err)
	}
	if _, err := ix.Query(ctx, store.Query{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Query = %v", err)
	}
	if _, err := ix.Watch(ctx, store.Query{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Watch = %v", err)
	}
	if _, err := ix.Checkpoint(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Checkpoint = %v", err)
	}
}

// TestGetProjectionBound: Get's projection is bounded as Query's.
func TestGetProjectionBound(t *testing.T) {
	ix := fixture(t)
	if _, err := ix.Get(t.Context(), eid(1), make([]string, MaxProjection+1)); !errors.Is(err, store.ErrQuery) {
		t.Fatalf("Get with %d projected types = %v, want ErrQuery", MaxProjection+1, err)
	}
}

// TestResetCanceled: a Reset whose context is canceled (a reindex whose
// caller went away) leaves an index that works: it is emptied or not, and
// the next Apply, Checkpoint and Query answer (they used to find the
// writer's statements closed, and panic).
func TestResetCanceled(t *testing.T) {
	ix := fixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := ix.Reset(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Reset = %v", err)
	}
	cp, err := ix.Checkpoint(t.Context())
	if err != nil {
		t.Fatalf("Checkpoint after a canceled Reset: %v", err)
	}
	f := &feeder{t: t, ix: ix, next: cp.Next, clock: 100}
	f.apply(store.PutTrait(eid(20), note("after", "written after the reset", 20)))
	if _, err := ix.Get(t.Context(), eid(20), nil); err != nil {
		t.Fatalf("Get after a canceled Reset: %v", err)
	}
}

// TestOpenDamaged: an index file that is not a database (a damaged disk,
// a file written over) is rebuilt: Open starts it empty and reports it
// emptied, so that the node applies its chain again, instead of failing
// at every start (the index is derived from the chain: nothing is lost).
func TestOpenDamaged(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, store.NewRegistry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &feeder{t: t, ix: ix}
	f.apply(store.PutTrait(eid(1), note("a", "b", 1)))
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte("not a database "), 1000)
	if err := os.WriteFile(filepath.Join(dir, "index.db"), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	ix, err = Open(dir, store.NewRegistry(), Options{})
	if err != nil {
		t.Fatalf("Open of a damaged index: %v", err)
	}
	defer ix.Close()
	if !ix.Emptied() {
		t.Error("a damaged index rebuilt: not reported emptied")
	}
	if cp, err := ix.Checkpoint(t.Context()); err != nil || cp.Next != 0 {
		t.Fatalf("checkpoint %+v, %v", cp, err)
	}
	f = &feeder{t: t, ix: ix}
	f.apply(store.PutTrait(eid(1), note("a", "b", 1)))
	if _, err := ix.Get(t.Context(), eid(1), nil); err != nil {
		t.Fatal(err)
	}
}
