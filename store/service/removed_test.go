package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/exopeer/exopeer/store"
)

// TestRemovedThinMemberWatch: a thin member removed from its cell while
// it watches through a store member gets nothing written after its
// removal, and its watch ends (the node left its cell), instead of being
// set up again forever.
func TestRemovedThinMemberWatch(t *testing.T) {
	ctx := t.Context()
	a, b := thinPair(t, 25)
	if _, err := a.Store().Put(ctx, store.EntityID{}, []store.Trait{note("before")}); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	ch, err := b.Store().Watch(wctx, store.Query{Type: "exo.note"})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.Page == nil || len(ev.Page.Hits) != 1 {
		t.Fatalf("first event %+v", ev)
	}
	if _, err := a.Cell().Remove(ctx, b.ID(), true); err != nil {
		t.Fatal(err)
	}
	after, err := a.Store().Put(ctx, store.EntityID{}, []store.Trait{note("after the removal")})
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return // ended
			}
			for _, c := range ev.Changes {
				if c.Hit.Entity.ID == after.Entity {
					t.Fatal("a removed member was sent what was written after its removal")
				}
			}
		case <-timeout:
			t.Fatal("the removed member's watch goes on 30 s after its removal")
		}
	}
}
