package index

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/exopeer/exopeer/store"
	"github.com/google/go-cmp/cmp"
)

func testHit(n int, body string) store.Hit {
	return store.Hit{Entity: store.Entity{ID: eid(n), Traits: []store.Trait{note("", body, n)}}}
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name     string
		old, new []store.Hit
		want     []store.Change
	}{
		{"nothing", nil, nil, nil},
		{"same", []store.Hit{testHit(1, "a")}, []store.Hit{testHit(1, "a")}, nil},
		{"moved only", []store.Hit{testHit(1, "a"), testHit(2, "b")}, []store.Hit{testHit(2, "b"), testHit(1, "a")}, nil},
		{"added, changed, removed", []store.Hit{testHit(1, "a"), testHit(2, "b"), testHit(3, "c")}, []store.Hit{testHit(4, "d"), testHit(2, "B"), testHit(1, "a")},
			[]store.Change{{Kind: store.Added, Hit: testHit(4, "d")}, {Kind: store.Changed, Hit: testHit(2, "B")},
				{Kind: store.Removed, Hit: store.Hit{Entity: store.Entity{ID: eid(3)}}}}},
		{"rank change", []store.Hit{{Entity: testHit(1, "a").Entity, Rank: -1}}, []store.Hit{{Entity: testHit(1, "a").Entity, Rank: -2}},
			[]store.Change{{Kind: store.Changed, Hit: store.Hit{Entity: testHit(1, "a").Entity, Rank: -2}}}},
		{"a trait more", []store.Hit{testHit(1, "a")}, []store.Hit{{Entity: store.Entity{ID: eid(1), Traits: append(testHit(1, "a").Entity.Traits, testHit(1, "x").Entity.Traits...)}}},
			[]store.Change{{Kind: store.Changed, Hit: store.Hit{Entity: store.Entity{ID: eid(1), Traits: append(testHit(1, "a").Entity.Traits, testHit(1, "x").Entity.Traits...)}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(store.Page{Hits: tt.old}, store.Page{Hits: tt.new})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("Diff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWatch(t *testing.T) {
	ix := fixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := ix.Watch(ctx, store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "work"}}})
	if err != nil {
		t.Fatal(err)
	}
	ev := <-ch
	if ev.Page == nil || !cmp.Equal(ids(*ev.Page), []int{3, 2}) {
		t.Fatalf("first event %+v", ev)
	}
	f := &feeder{t: t, ix: ix, next: 11, clock: 11}
	kinds := func(ev store.WatchEvent) []string {
		var out []string
		for _, c := range ev.Changes {
			out = append(out, string(c.Kind)+" "+string('0'+rune(c.Hit.Entity.ID[15])))
		}
		return out
	}
	steps := []struct {
		name string
		op   store.Op
		want []string
	}{
		{"added", store.PutTrait(eid(9), note("New", "new", 10, "work")), []string{"added 9"}},
		{"changed", store.PutTrait(eid(2), note("Work plan", "edited", 2, "work")), []string{"changed 2"}},
		{"removed by a trait delete", store.DeleteTrait(eid(3), "exo.note"), []string{"removed 3"}},
		{"removed by an entity delete", store.DeleteEntity(eid(9)), []string{"removed 9"}},
	}
	for _, s := range steps {
		f.apply(s.op)
		// Apply has returned: the event is ready (within one update).
		if got := kinds(<-ch); !cmp.Equal(got, s.want) {
			t.Fatalf("%s: changes %v, want %v", s.name, got, s.want)
		}
	}
	// A change outside the query sends nothing; the next one inside does.
	f.apply(store.PutTrait(eid(4), note("Café list", "other", 4, "home")))
	f.apply(store.PutTrait(eid(1), note("Groceries", "now work", 1, "work")))
	if got := kinds(<-ch); !cmp.Equal(got, []string{"added 1"}) {
		t.Fatalf("after an outside change: %v", got)
	}
	cancel()
	for range ch { // closed when ctx ends
	}
}

// TestWatchCoalesces: a reader that does not read while many updates
// apply gets at most two events (one possibly computed before the last
// updates), which bring it to the final page.
func TestWatchCoalesces(t *testing.T) {
	ix := fixture(t)
	q := store.Query{Type: "exo.note", Limit: 3}
	ch, err := ix.Watch(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	first := <-ch
	page := map[store.EntityID]store.Hit{}
	for _, h := range first.Page.Hits {
		page[h.Entity.ID] = h
	}
	f := &feeder{t: t, ix: ix, next: 11, clock: 11}
	for i := range 10 {
		f.apply(store.PutTrait(eid(20+i), note("n", "n", 20+i)))
	}
	want, err := ix.Query(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	for {
		ev := <-ch
		events++
		for _, c := range ev.Changes {
			if c.Kind == store.Removed {
				delete(page, c.Hit.Entity.ID)
			} else {
				page[c.Hit.Entity.ID] = c.Hit
			}
		}
		got := map[store.EntityID]store.Hit{}
		for _, h := range want.Hits {
			got[h.Entity.ID] = h
		}
		if cmp.Equal(page, got) {
			break
		}
	}
	if events > 2 {
		t.Fatalf("%d events for 10 unread updates, want at most 2", events)
	}
}

func TestWatchBound(t *testing.T) {
	ix, err := Open(t.TempDir(), testRegistry(t), Options{MaxWatches: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx, cancel := context.WithCancel(t.Context())
	var chs []<-chan store.WatchEvent
	for range 3 {
		ch, err := ix.Watch(ctx, store.Query{})
		if err != nil {
			t.Fatal(err)
		}
		chs = append(chs, ch)
	}
	if _, err := ix.Watch(t.Context(), store.Query{}); !errors.Is(err, ErrTooManyWatches) {
		t.Fatalf("fourth Watch = %v, want ErrTooManyWatches", err)
	}
	st, _ := ix.Stats(t.Context())
	if st.Watches != 3 {
		t.Fatalf("Stats.Watches = %d", st.Watches)
	}
	cancel()
	for _, ch := range chs {
		for range ch {
		}
	}
	// An ended watch is counted out before its channel closes.
	ch, err := ix.Watch(t.Context(), store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	ix.Close()
	if _, ok := <-ch; ok {
		t.Fatal("watch channel open after Close")
	}
}

// TestApplyDoesNotWaitForWatches: Apply returns once its transaction
// commits, whatever the watches' queries cost (they used to be run before
// Apply returned: 16 watches of a match on 20,000 notes made each Apply,
// so each write of the node, take over a second). Here the only reader
// connection is held, so that no watch can be refreshed until it is let
// go; the watch then gets the change.
func TestApplyDoesNotWaitForWatches(t *testing.T) {
	ix, err := Open(t.TempDir(), testRegistry(t), Options{Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := ix.Watch(ctx, store.Query{Type: "exo.note"})
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	hold, err := ix.read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(t.Context(), hold, []store.EntityID{eid(1)}, true, nil); err != nil {
		t.Fatal(err)
	}
	applied := make(chan error, 1)
	go func() {
		p, err := store.Encode(store.Transaction{Ops: []store.Op{store.PutTrait(eid(1), note("n", "n", 1))}})
		if err == nil {
			_, err = ix.Apply(t.Context(), []Arrival{{Index: 0, CID: []byte("c"), Pos: store.Pos{Clock: 1, Key: "k"}, Payload: p}})
		}
		applied <- err
	}()
	select {
	case err := <-applied:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		hold.Rollback()
		<-applied
		t.Fatal("Apply waited for the watches' refresh")
	}
	hold.Rollback()
	select {
	case ev := <-ch:
		if len(ev.Changes) != 1 || ev.Changes[0].Kind != store.Added {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event after the refresh could run")
	}
}

// TestApplyDoesNotWaitForAWatchsFirstPage: a Watch computing its first
// page does not hold Apply up (it used to compute it under the writer's
// lock: a costly query, or many watches opened at once, held every
// commit). The watch still misses nothing: the put shows in its first page
// or as a change.
func TestApplyDoesNotWaitForAWatchsFirstPage(t *testing.T) {
	ix, err := Open(t.TempDir(), testRegistry(t), Options{Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	hold, err := ix.read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(t.Context(), hold, []store.EntityID{eid(1)}, true, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type watched struct {
		ch  <-chan store.WatchEvent
		err error
	}
	wch := make(chan watched, 1)
	go func() {
		ch, err := ix.Watch(ctx, store.Query{Type: "exo.note"})
		wch <- watched{ch, err}
	}()
	time.Sleep(50 * time.Millisecond) // the Watch waits for a reader
	applied := make(chan error, 1)
	go func() {
		p, err := store.Encode(store.Transaction{Ops: []store.Op{store.PutTrait(eid(1), note("n", "n", 1))}})
		if err == nil {
			_, err = ix.Apply(t.Context(), []Arrival{{Index: 0, CID: []byte("c"), Pos: store.Pos{Clock: 1, Key: "k"}, Payload: p}})
		}
		applied <- err
	}()
	select {
	case err := <-applied:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		hold.Rollback()
		<-applied
		t.Fatal("Apply waited for a watch's first page")
	}
	hold.Rollback()
	w := <-wch
	if w.err != nil {
		t.Fatal(w.err)
	}
	page := map[store.EntityID]bool{}
	for len(page) == 0 {
		select {
		case ev := <-w.ch:
			if ev.Page != nil {
				for _, h := range ev.Page.Hits {
					page[h.Entity.ID] = true
				}
			}
			for _, c := range ev.Changes {
				page[c.Hit.Entity.ID] = c.Kind != store.Removed
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the watch never showed the put")
		}
	}
	if !page[eid(1)] {
		t.Fatalf("watched page %v", page)
	}
}
