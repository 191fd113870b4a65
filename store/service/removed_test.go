package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
	"github.com/exopeer/exopeer/store"
)

// TestRemovedThinMemberWatch: a thin member removed from its cell while
// it watches through a store member gets nothing written after its
// removal, and its watch ends (the node left its cell), instead of being
// set up again forever.
func TestRemovedThinMemberWatch(t *testing.T) {
	ctx := t.Context()
	a := cellNode(t, 25)
	inv, _, err := a.Cell().Invite(cell.InviteOptions{Roles: cell.RoleChain})
	if err != nil {
		t.Fatal(err)
	}
	opts := nodetest.Options(t, 26, nodetest.AddrInfo(a))
	opts.Cell, opts.Store.Dir = nodetest.FastCell, t.TempDir()
	b := nodetest.Start(t, opts)
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := b.Cell().Join(jctx, inv.String(), "phone"); err != nil {
		t.Fatal(err)
	}
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
