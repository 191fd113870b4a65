package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/exopeer/exopeer/store"
)

// stateBackend is a Backend over the pure store.State, for the protocol's
// tests (the real one is the node's index). Its queries: Type, Where on
// the keyword list "tags" (= and ^=), Limit, After (the last hit's ID),
// Traits; hits in EntityID order. Any other field is an error wrapping
// store.ErrQuery, as the index's. Watches are recomputed after each put.
type stateBackend struct {
	mu       sync.Mutex
	st       *store.State
	clock    uint64
	watchers map[*watcher]struct{}
	wg       sync.WaitGroup
}

type watcher struct {
	q    store.Query
	kick chan struct{}
}

func newStateBackend() *stateBackend {
	return &stateBackend{st: store.NewState(store.NewRegistry()), watchers: map[*watcher]struct{}{}}
}

var testTime = time.Date(2026, 11, 25, 23, 0, 0, 123456789, time.UTC)

// put writes a note trait of body and tags on entity id (the document
// spaced oddly, to see it cross byte for byte), and wakes the watches.
func (b *stateBackend) put(id store.EntityID, trait store.TraitID, body string, tags ...string) {
	doc, err := json.Marshal(map[string]any{"body": body, "tags": tags})
	if err != nil {
		panic(err)
	}
	doc = append([]byte("  "), doc...)
	b.apply(store.PutTrait(id, store.Trait{Type: "exo.note", ID: trait, Doc: doc, Created: testTime, Modified: testTime.Add(time.Duration(len(body)) * time.Second)}))
}

func (b *stateBackend) apply(ops ...store.Op) {
	p, err := store.Encode(store.Transaction{Ops: ops})
	if err != nil {
		panic(err)
	}
	b.mu.Lock()
	b.clock++
	if err := b.st.Apply(store.Pos{Clock: b.clock, Key: "k"}, p); err != nil {
		panic(err)
	}
	for w := range b.watchers {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()
}

func project(e store.Entity, traits []string) store.Entity {
	if traits == nil {
		return e
	}
	out := store.Entity{ID: e.ID, Traits: []store.Trait{}}
	for _, t := range e.Traits {
		if slices.Contains(traits, t.Type) {
			out.Traits = append(out.Traits, t)
		}
	}
	return out
}

func (b *stateBackend) Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.st.Get(id)
	if !ok {
		return store.Entity{}, fmt.Errorf("entity %s: %w", id, store.ErrNotFound)
	}
	return project(e, traits), nil
}

func (b *stateBackend) Query(ctx context.Context, q store.Query) (store.Page, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.queryLocked(q)
}

func (b *stateBackend) queryLocked(q store.Query) (store.Page, error) {
	limit := q.Limit
	switch {
	case limit == 0:
		limit = store.DefaultLimit
	case limit < 0 || limit > store.MaxLimit:
		return store.Page{}, fmt.Errorf("limit %d: must be 0 to %d: %w", limit, store.MaxLimit, store.ErrQuery)
	}
	var after store.EntityID
	if q.After != "" {
		id, err := store.ParseEntityID(q.After)
		if err != nil {
			return store.Page{}, fmt.Errorf("cursor: %w: %w", store.ErrQuery, err)
		}
		after = id
	}
	for _, p := range q.Where {
		if p.Field != "tags" || (p.Op != store.Eq && p.Op != store.Prefix) {
			return store.Page{}, fmt.Errorf("where %s: no such keyword field in %q: %w", p, q.Type, store.ErrQuery)
		}
	}
	var pg store.Page
	for _, id := range b.st.Entities() {
		if q.After != "" && slices.Compare(id[:], after[:]) <= 0 {
			continue
		}
		e, _ := b.st.Get(id)
		if !matches(e, q) {
			continue
		}
		if len(pg.Hits) == limit {
			pg.Next = pg.Hits[limit-1].Entity.ID.String()
			break
		}
		pg.Hits = append(pg.Hits, store.Hit{Entity: project(e, q.Traits)})
	}
	return pg, nil
}

func matches(e store.Entity, q store.Query) bool {
	for _, t := range e.Traits {
		if q.Type != "" && t.Type != q.Type {
			continue
		}
		var doc struct{ Tags []string }
		_ = json.Unmarshal(t.Doc, &doc)
		ok := true
		for _, p := range q.Where {
			ok = ok && slices.ContainsFunc(doc.Tags, func(tag string) bool {
				if p.Op == store.Prefix {
					return len(tag) >= len(p.Value) && tag[:len(p.Value)] == p.Value
				}
				return tag == p.Value
			})
		}
		if ok {
			return true
		}
	}
	return false
}

func (b *stateBackend) Watch(ctx context.Context, q store.Query) (<-chan store.WatchEvent, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pg, err := b.queryLocked(q)
	if err != nil {
		return nil, err
	}
	w := &watcher{q: q, kick: make(chan struct{}, 1)}
	b.watchers[w] = struct{}{}
	out := make(chan store.WatchEvent)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(out)
		defer func() {
			b.mu.Lock()
			delete(b.watchers, w)
			b.mu.Unlock()
		}()
		// sent is the page as the watcher has it, cur the page now:
		// what waits is their difference (a slow reader's coalesced).
		sent, cur := store.Page{}, pg
		pending := store.WatchEvent{Page: &pg}
		for {
			var send chan store.WatchEvent
			if pending.Page != nil || pending.Changes != nil {
				send = out
			}
			select {
			case send <- pending:
				pending, sent = store.WatchEvent{}, cur
			case <-w.kick:
				b.mu.Lock()
				cur, _ = b.queryLocked(q)
				b.mu.Unlock()
				if pending.Page != nil {
					page := cur
					pending.Page = &page
				} else {
					pending.Changes = diff(sent, cur)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// diff is the changes from page a to page b, in b's order then a's.
func diff(a, b store.Page) []store.Change {
	old := map[store.EntityID]store.Hit{}
	for _, h := range a.Hits {
		old[h.Entity.ID] = h
	}
	var out []store.Change
	for _, h := range b.Hits {
		o, ok := old[h.Entity.ID]
		switch {
		case !ok:
			out = append(out, store.Change{Kind: store.Added, Hit: h})
		case !sameHit(o, h):
			out = append(out, store.Change{Kind: store.Changed, Hit: h})
		}
		delete(old, h.Entity.ID)
	}
	for _, h := range a.Hits {
		if _, ok := old[h.Entity.ID]; ok {
			out = append(out, store.Change{Kind: store.Removed, Hit: store.Hit{Entity: store.Entity{ID: h.Entity.ID}}})
		}
	}
	return out
}
