package service_test

import (
	"errors"
	"testing"
	"time"

	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/service"
)

// TestValidatedOnlyOwn: the index trusts the validation of an entry
// (index.Arrival.Validated) only when this service's own Put appended
// it; any other entry, standing here for one from another device or from
// sync (appended to the chain without Put), is validated by the index,
// and a document its schema refuses is skipped.
func TestValidatedOnlyOwn(t *testing.T) {
	n := cellNode(t, 41)
	s, ch, ctx := n.Store(), n.Chain(), t.Context()
	var bad store.EntityID
	bad[15] = 7
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p, err := store.Encode(store.Transaction{Ops: []store.Op{
		store.PutTrait(bad, store.Trait{Type: "exo.message", ID: "exo.message", Doc: []byte(`{"text":1}`), Created: at, Modified: at}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Append(ctx, p); err != nil {
		t.Fatal(err)
	}
	w, err := s.Put(ctx, store.EntityID{}, []store.Trait{note("mine")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, w.Entity, nil); err != nil {
		t.Fatalf("the Put's entity: %v", err)
	}
	if _, err := s.Get(ctx, bad, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused document: %v, want ErrNotFound", err)
	}
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Next != 2 || st.Skipped[store.SkipSchema] != 1 || st.Entities != 1 {
		t.Errorf("Status: %+v, want 2 applied, 1 skipped for its schema, 1 entity", st)
	}
	es, err := ch.Arrivals(ctx, 0, 2)
	if err != nil || len(es) != 2 {
		t.Fatalf("Arrivals = %d, %v; want 2", len(es), err)
	}
	as := service.Arrivals(s, es)
	if as[0].Validated || !as[1].Validated {
		t.Errorf("Validated = %t, %t; want false for the entry appended without Put, true for the Put's", as[0].Validated, as[1].Validated)
	}
}
