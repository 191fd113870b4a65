package index

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/exopeer/exopeer/store"
	"github.com/google/go-cmp/cmp"
)

// TestTrait: Trait gives the live trait Get gives, and ErrNotFound for
// an entity or trait that has none: never written, deleted, or its
// entity deleted; an ended context gives its error.
func TestTrait(t *testing.T) {
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	ctx := t.Context()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	put := func(e int, id store.TraitID, doc string, s int) store.Op {
		return store.PutTrait(eid(e), store.Trait{Type: "exo.note", ID: id, Doc: []byte(doc), Created: at(s), Modified: at(s)})
	}
	var next uint64
	apply := func(ops ...store.Op) {
		p, err := store.Encode(store.Transaction{Ops: ops})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ix.Apply(ctx, []Arrival{{Index: next, CID: []byte{'c', byte(next)}, Pos: store.Pos{Clock: next + 1, Key: "k"}, Payload: p}}); err != nil {
			t.Fatal(err)
		}
		next++
	}
	apply(put(1, "a", `{"body":"one"}`, 1), put(1, "b", `{"body":"two"}`, 2), put(2, "a", `{"body":"three"}`, 3))
	apply(put(1, "a", `{"body":"one again"}`, 4), store.DeleteTrait(eid(1), "b"), store.DeleteEntity(eid(2)))
	ent, err := ix.Get(ctx, eid(1), nil)
	if err != nil || len(ent.Traits) != 1 {
		t.Fatalf("Get = %+v, %v", ent, err)
	}
	got, err := ix.Trait(ctx, eid(1), "a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ent.Traits[0], got); diff != "" {
		t.Errorf("Trait differs from Get's (-get +trait):\n%s", diff)
	}
	for _, c := range []struct {
		name string
		e    int
		id   store.TraitID
	}{{"never written", 3, "a"}, {"another trait", 1, "c"}, {"deleted", 1, "b"}, {"entity deleted", 2, "a"}} {
		if _, err := ix.Trait(ctx, eid(c.e), c.id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: Trait: %v, want ErrNotFound", c.name, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ix.Trait(cctx, eid(1), "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("Trait with a canceled context: %v, want context.Canceled", err)
	}
}
