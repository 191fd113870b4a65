package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/remote"
	"github.com/exopeer/exopeer/store/service"
)

// TestThinMember: a member without the store role reads through a store
// member of its cell, with the same answers and the same errors, and has
// no index of its own.
func TestThinMember(t *testing.T) {
	ctx := t.Context()
	a, b := thinPair(t, 20)
	sa, sb := a.Store(), b.Store()

	// The thin member writes; the store member indexes it once synced.
	w, err := sb.Put(ctx, store.EntityID{}, []store.Trait{note("from the phone", "mobile")})
	if err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 30*time.Second, "the store member indexing the phone's note", func() bool {
		_, err := sa.Get(ctx, w.Entity, nil)
		return err == nil
	})
	local, err := sa.Get(ctx, w.Entity, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sb.Get(ctx, w.Entity, nil)
	if err != nil {
		t.Fatalf("thin Get: %v", err)
	}
	if string(mustJSON(t, got)) != string(mustJSON(t, local)) {
		t.Errorf("thin Get %s, store member's %s", mustJSON(t, got), mustJSON(t, local))
	}
	q := store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "mobile"}}}
	pa, err := sa.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := sb.Query(ctx, q)
	if err != nil {
		t.Fatalf("thin Query: %v", err)
	}
	if string(mustJSON(t, pa)) != string(mustJSON(t, pb)) || len(pb.Hits) != 1 {
		t.Errorf("thin Query %s, store member's %s", mustJSON(t, pb), mustJSON(t, pa))
	}
	if _, err := sb.Get(ctx, store.EntityID{1}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("thin Get of nothing: %v, want store.ErrNotFound", err)
	}
	if _, err := sb.Query(ctx, store.Query{Type: "exo.note", Order: "nope"}); !errors.Is(err, store.ErrQuery) {
		t.Errorf("thin bad query: %v, want store.ErrQuery", err)
	}
	if _, err := sb.Reindex(ctx); !errors.Is(err, service.ErrNotStore) {
		t.Errorf("thin Reindex: %v, want ErrNotStore", err)
	}
	st, err := sb.Status(ctx)
	if err != nil || st.Role != service.RoleRemote || st.Member != a.ID().String() {
		t.Errorf("thin Status %+v, %v; want remote through %s", st, err, a.ID())
	}
	// A put on a live trait keeps its created time, read through the
	// store member.
	if _, err := sb.Put(ctx, w.Entity, []store.Trait{note("from the phone, again", "mobile")}); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 30*time.Second, "the store member indexing the phone's second put", func() bool {
		e, err := sa.Get(ctx, w.Entity, nil)
		return err == nil && strings.Contains(string(e.Traits[0].Doc), "again")
	})
	if e, err := sa.Get(ctx, w.Entity, nil); err != nil || !e.Traits[0].Created.Equal(local.Traits[0].Created) || !e.Traits[0].Modified.After(local.Traits[0].Modified) {
		t.Errorf("after the thin member's second put: %+v, %v; created %v", e, err, local.Traits[0].Created)
	}

	// Its watch goes through the store member too.
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	ch, err := sb.Watch(wctx, store.Query{Type: "exo.note"})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.Page == nil || len(ev.Page.Hits) != 1 {
		t.Fatalf("thin watch first event %+v", ev)
	}
	w2, err := sa.Put(ctx, store.EntityID{}, []store.Trait{note("from the laptop")})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); len(ev.Changes) != 1 || ev.Changes[0].Kind != store.Added || ev.Changes[0].Hit.Entity.ID != w2.Entity {
		t.Fatalf("thin watch after a put: %+v", ev)
	}

	// With its only store member gone, it says so.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Get(ctx, w.Entity, nil); !errors.Is(err, service.ErrNoStoreMember) {
		t.Errorf("thin Get with no store member: %v, want ErrNoStoreMember", err)
	}
}

// TestServeMembersOnly: a store member answers the members of its cell
// only: a node of another cell gets nothing from it.
func TestServeMembersOnly(t *testing.T) {
	a := cellNode(t, 22)
	if _, err := a.Store().Put(t.Context(), store.EntityID{}, []store.Trait{note("secret")}); err != nil {
		t.Fatal(err)
	}
	opts := nodetest.Options(t, 23, nodetest.AddrInfo(a))
	opts.Cell = nodetest.FastCell
	stranger := nodetest.Start(t, opts)
	if _, err := stranger.Cell().Create(t.Context(), "other", "s"); err != nil {
		t.Fatal(err)
	}
	c := remote.NewClient(stranger.Host())
	if pg, err := c.Query(t.Context(), a.ID(), store.Query{}); err == nil {
		t.Errorf("a node of another cell was answered: %+v", pg)
	}
	// A member is.
	inv, _, err := a.Cell().Invite(cell.InviteOptions{Roles: cell.RoleChain})
	if err != nil {
		t.Fatal(err)
	}
	mopts := nodetest.Options(t, 24, nodetest.AddrInfo(a))
	mopts.Cell = nodetest.FastCell
	m := nodetest.Start(t, mopts)
	jctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := m.Cell().Join(jctx, inv.String(), "m"); err != nil {
		t.Fatal(err)
	}
	if pg, err := remote.NewClient(m.Host()).Query(t.Context(), a.ID(), store.Query{}); err != nil || len(pg.Hits) != 1 {
		t.Errorf("a member's query: %+v, %v", pg, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
