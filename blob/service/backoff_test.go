package service

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/exopeer/exopeer/blob"
)

// TestFetchBackoff: a background fetch that fails is tried again after
// Backoff, doubled at each failure up to MaxBackoff; one that succeeds is
// done; one cancelled (unwanted, or the service closing) is not counted;
// the queue holds at most MaxPending roots.
func TestFetchBackoff(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Service{
		cfg: Config{Backoff: time.Second, MaxBackoff: 5 * time.Second, MaxPending: 2, Now: func() time.Time { return at }}.withDefaults(),
		log: slog.New(slog.DiscardHandler),
	}
	s.fetch.init()
	root := func(i byte) blob.Capability {
		h, _ := mh.Sum([]byte{i}, mh.SHA2_256, -1)
		return blob.Capability{Root: cid.NewCidV1(cid.Raw, h), Key: blob.Key{i}}
	}
	c := root(1)
	if !s.want(c) || !s.want(c) || s.fetch.count() != 1 {
		t.Fatalf("want twice: %d pending, want 1", s.fetch.count())
	}
	j := s.fetch.pending[c.Root]
	failed := errors.New("no peer has it")
	for i, wait := range []time.Duration{1, 2, 4, 5, 5} {
		s.fetched(j, j.c, failed)
		if got := j.next.Sub(at); got != wait*time.Second || j.fails != i+1 {
			t.Errorf("after failure %d: next try in %v (fails %d), want %v", i+1, got, j.fails, wait*time.Second)
		}
	}
	s.fetched(j, j.c, context.Canceled)
	if j.fails != 5 {
		t.Errorf("a cancelled fetch counted as a failure: %d", j.fails)
	}
	s.fetched(j, j.c, nil)
	if s.fetch.count() != 0 || !s.fetch.done[c.Root] {
		t.Error("a fetched root still pending, or not done")
	}
	if !s.want(c) || s.fetch.count() != 0 {
		t.Error("a root held whole asked for again")
	}
	// Bounded: the third root waits for the next pass.
	if !s.want(root(2)) || !s.want(root(3)) || s.want(root(4)) {
		t.Error("the queue took more than MaxPending roots")
	}
	// Unwanted while it runs: its end changes nothing.
	j2 := s.fetch.pending[root(2).Root]
	s.unwant(root(2).Root)
	s.fetched(j2, j2.c, nil)
	if s.fetch.done[root(2).Root] || s.fetch.count() != 1 {
		t.Error("an unwanted root recorded as fetched")
	}
	s.unwant(c.Root)
	if s.fetch.done[c.Root] {
		t.Error("an unwanted root still counted as held")
	}
	// Stopped while it runs (its file no longer kept): cancelled, gone
	// from the queue, and its end says its pin is to go.
	j3 := s.fetch.pending[root(3).Root]
	cancelled := false
	j3.running = func() { cancelled = true }
	s.stopFetch(t.Context(), root(3).Root)
	if !cancelled || s.fetch.count() != 0 {
		t.Errorf("stopFetch: cancelled %v, %d pending", cancelled, s.fetch.count())
	}
	if !s.fetched(j3, j3.c, context.Canceled) {
		t.Error("the end of a stopped fetch does not say its pin is to go")
	}
	// An unwanted one that had not begun keeps its pin (none, or an
	// earlier run's, which a collection keeps).
	if s.fetched(j2, j2.c, context.Canceled) {
		t.Error("the end of an unwanted fetch that was not running says its pin is to go")
	}
	// Unwanted while it runs (it began after the pass read the pins): its
	// pin goes when it ends, unless the root was wanted again meanwhile.
	c4 := root(4)
	if !s.want(c4) {
		t.Fatal("want after the queue emptied")
	}
	j4 := s.fetch.pending[c4.Root]
	j4.running = func() {}
	s.unwant(c4.Root)
	if !s.fetched(j4, j4.c, context.Canceled) {
		t.Error("the end of a running fetch unwanted says its pin stays")
	}
	if !s.want(c4) {
		t.Fatal("want again")
	}
	j5 := s.fetch.pending[c4.Root]
	j5.running = func() {}
	s.unwant(c4.Root)
	if !s.want(c4) {
		t.Fatal("want a third time")
	}
	if s.fetched(j5, j5.c, context.Canceled) {
		t.Error("a stopped fetch's end would take the pin of the job that wants the root again")
	}
}
