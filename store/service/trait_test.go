package service_test

import (
	"errors"
	"testing"
	"time"

	"github.com/exopeer/exopeer/internal/nodetest"
	"github.com/exopeer/exopeer/store"
)

// TestTrait: Trait gives the trait Get gives, on a store member (its
// index's point read) and on a thin member (through a store member), and
// store.ErrNotFound for a trait or an entity that has none.
func TestTrait(t *testing.T) {
	ctx := t.Context()
	a, b := thinPair(t, 42)
	sa, sb := a.Store(), b.Store()
	w, err := sa.Put(ctx, store.EntityID{}, []store.Trait{note("kept")})
	if err != nil {
		t.Fatal(err)
	}
	ent, err := sa.Get(ctx, w.Entity, nil)
	if err != nil || len(ent.Traits) != 1 {
		t.Fatalf("Get = %+v, %v", ent, err)
	}
	want := string(mustJSON(t, ent.Traits[0]))
	check := func(who string, trait func(store.EntityID, store.TraitID) (store.Trait, error)) {
		nodetest.Eventually(t, 30*time.Second, who+" reading the note", func() bool {
			_, err := trait(w.Entity, "exo.note")
			return err == nil
		})
		got, err := trait(w.Entity, "exo.note")
		if err != nil || string(mustJSON(t, got)) != want {
			t.Errorf("%s: Trait = %s, %v; want %s", who, mustJSON(t, got), err, want)
		}
		if _, err := trait(w.Entity, "other"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: Trait of another trait: %v, want ErrNotFound", who, err)
		}
		if _, err := trait(store.EntityID{1}, "exo.note"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: Trait of an unknown entity: %v, want ErrNotFound", who, err)
		}
	}
	check("store member", func(e store.EntityID, id store.TraitID) (store.Trait, error) { return sa.Trait(ctx, e, id) })
	check("thin member", func(e store.EntityID, id store.TraitID) (store.Trait, error) { return sb.Trait(ctx, e, id) })
}
