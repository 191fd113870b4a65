package service_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/remote"
	"github.com/exopeer/exopeer/store/service"
)

// TestThinMemberEntityTooLarge: an entity too large for the protocol's
// frame (16 MiB) is an answer of the store member (too large: project
// fewer traits), not a member that cannot be reached: the thin member
// says so, and does not put the member last for the next reads.
func TestThinMemberEntityTooLarge(t *testing.T) {
	ctx := t.Context()
	a, b := thinPair(t, 27)
	// 280 traits of 60 KiB: some 22 MiB in base64.
	var e store.EntityID
	doc := `"` + strings.Repeat("x", 60<<10) + `"`
	for i := range 70 {
		var ts []store.Trait
		for j := range 4 {
			ts = append(ts, store.Trait{Type: "app.blob", ID: store.TraitID(fmt.Sprintf("t%d.%d", i, j)), Doc: []byte(doc)})
		}
		w, err := a.Store().Put(ctx, e, ts)
		if err != nil {
			t.Fatal(err)
		}
		e = w.Entity
	}
	_, err := b.Store().Get(ctx, e, nil)
	if !errors.Is(err, remote.ErrTooLarge) || errors.Is(err, service.ErrNoStoreMember) {
		t.Fatalf("thin Get of a 22 MiB entity: %v; want remote.ErrTooLarge", err)
	}
	if got, err := b.Store().Get(ctx, e, []string{"exo.note"}); err != nil || len(got.Traits) != 0 {
		t.Fatalf("thin Get projected: %+v, %v", got.ID, err)
	}
	if st, err := b.Store().Status(ctx); err != nil || st.Member != a.ID().String() {
		t.Fatalf("thin status %+v, %v; want reads through %s", st, err, a.ID())
	}
}
