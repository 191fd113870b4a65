package remote

import (
	"errors"
	"testing"
	"time"

	"github.com/exopeer/exopeer/store"
)

// TestWatchEndsWhenTheWatcherIsRemoved: a member removed from the roster
// while it watches gets nothing written after, and its watch ends with
// not_member (allow is asked again before each event, not only when the
// stream opens).
func TestWatchEndsWhenTheWatcherIsRemoved(t *testing.T) {
	r := newRig(t, Config{Ping: 50 * time.Millisecond}, nil)
	r.b.put(id(1), "exo.note", "before")
	w, err := r.c.Subscribe(t.Context(), r.member.ID(), store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	next(t, w)
	waitBounds(t, r.srv, 0, 1)
	r.allow.set(r.ch.ID(), false) // the roster removes the watcher
	r.b.put(id(2), "exo.note", "written after the removal")
	for ev := range w.Events() {
		for _, c := range ev.Changes {
			if c.Hit.Entity.ID == id(2) {
				t.Fatalf("a removed member was sent %s, written after its removal", id(2))
			}
		}
	}
	if !errors.Is(w.Err(), ErrNotMember) {
		t.Fatalf("Err = %v, want ErrNotMember", w.Err())
	}
	waitBounds(t, r.srv, 0, 0)
}

// TestIdleWatchEndsWhenTheWatcherIsRemoved: a removed member's watch ends
// even when nothing is written (at the next keep-alive).
func TestIdleWatchEndsWhenTheWatcherIsRemoved(t *testing.T) {
	r := newRig(t, Config{Ping: 50 * time.Millisecond}, nil)
	w, err := r.c.Subscribe(t.Context(), r.member.ID(), store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	next(t, w)
	r.allow.set(r.ch.ID(), false)
	for range w.Events() {
	}
	if !errors.Is(w.Err(), ErrNotMember) {
		t.Fatalf("Err = %v, want ErrNotMember", w.Err())
	}
	waitBounds(t, r.srv, 0, 0)
}
