package remote

import (
	"bytes"
	"fmt"

	"github.com/exopeer/exopeer/store"
)

// coalescer holds the watch events a client received and its consumer has
// not taken yet, so that the client reads its stream at once whatever the
// consumer does (a store member's writes time out on a client that does
// not read). It keeps at most two events: an untaken Page, then one
// changes event. A changes event arriving while one waits is merged into
// it: the merged event is the difference between the page the consumer
// will have when it takes the event and the page now, as store.WatchEvent
// describes, its changes in the order their entities first appeared. A
// consumer that keeps up gets the events exactly as they came. Pure; not
// safe for concurrent use.
type coalescer struct {
	queue []store.WatchEvent
	// base is the page the consumer has once it has taken the queue's
	// Page, if any: the base of the waiting changes. cur is the page after
	// every event received.
	base, cur map[store.EntityID]store.Hit
}

func newCoalescer() *coalescer {
	return &coalescer{base: map[store.EntityID]store.Hit{}, cur: map[store.EntityID]store.Hit{}}
}

// push adds a received event. It fails when the events describe a page of
// more than store.MaxLimit hits: a store member that breaks the protocol.
func (c *coalescer) push(ev store.WatchEvent) error {
	if ev.Page != nil {
		// A page is the whole state: it supersedes whatever waits.
		c.queue = append(c.queue[:0], ev)
		clear(c.cur)
		for _, h := range ev.Page.Hits {
			c.cur[h.Entity.ID] = h
		}
		c.base = clone(c.cur)
		return nil
	}
	apply(c.cur, ev.Changes)
	if len(c.cur) > store.MaxLimit {
		return fmt.Errorf("watch page of %d hits, over %d: %w", len(c.cur), store.MaxLimit, ErrProtocol)
	}
	last := len(c.queue) - 1
	if last < 0 || c.queue[last].Page != nil {
		c.queue = append(c.queue, ev)
		return nil
	}
	// Merge: the entities either event names, in order, whose state
	// differs between base and cur.
	seen := make(map[store.EntityID]bool)
	var merged []store.Change
	for _, ch := range append(c.queue[last].Changes, ev.Changes...) {
		id := ch.Hit.Entity.ID
		if seen[id] {
			continue
		}
		seen[id] = true
		b, inBase := c.base[id]
		h, inCur := c.cur[id]
		switch {
		case !inBase && inCur:
			merged = append(merged, store.Change{Kind: store.Added, Hit: h})
		case inBase && !inCur:
			merged = append(merged, store.Change{Kind: store.Removed, Hit: store.Hit{Entity: store.Entity{ID: id}}})
		case inBase && inCur && !sameHit(b, h):
			merged = append(merged, store.Change{Kind: store.Changed, Hit: h})
		}
	}
	if merged == nil {
		c.queue = c.queue[:last] // the changes undid each other
		return nil
	}
	c.queue[last] = store.WatchEvent{Changes: merged}
	return nil
}

// next returns the event for the consumer, if one waits.
func (c *coalescer) next() (store.WatchEvent, bool) {
	if len(c.queue) == 0 {
		return store.WatchEvent{}, false
	}
	return c.queue[0], true
}

// pop records that the consumer took the event next returned.
func (c *coalescer) pop() {
	ev := c.queue[0]
	c.queue = c.queue[1:]
	if ev.Page == nil {
		apply(c.base, ev.Changes)
	}
}

func apply(view map[store.EntityID]store.Hit, changes []store.Change) {
	for _, ch := range changes {
		if ch.Kind == store.Removed {
			delete(view, ch.Hit.Entity.ID)
		} else {
			view[ch.Hit.Entity.ID] = ch.Hit
		}
	}
}

func clone(m map[store.EntityID]store.Hit) map[store.EntityID]store.Hit {
	out := make(map[store.EntityID]store.Hit, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// sameHit reports whether two hits would read the same.
func sameHit(a, b store.Hit) bool {
	if a.Rank != b.Rank || a.Entity.ID != b.Entity.ID || len(a.Entity.Traits) != len(b.Entity.Traits) {
		return false
	}
	for i, t := range a.Entity.Traits {
		u := b.Entity.Traits[i]
		if t.Type != u.Type || t.ID != u.ID || !bytes.Equal(t.Doc, u.Doc) || !t.Created.Equal(u.Created) || !t.Modified.Equal(u.Modified) {
			return false
		}
	}
	return true
}
