package index

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/exopeer/exopeer/store"
)

// watch is one watched query. The refresher computes its page after
// commits and leaves it in cur, waking the watch's goroutine, which sends
// the difference between the page it last sent and cur: Apply waits
// neither for the watches' queries nor for a reader, and a slow reader
// gets the changes coalesced.
type watch struct {
	p    *plan
	out  chan store.WatchEvent
	wake chan struct{} // capacity 1

	mu  sync.Mutex
	cur store.Page
	err bool // the last refresh failed: the watch ends

	// deps are the types whose commits may change the page (nil: every
	// commit), seen their version before the page was last computed
	// (types.go); both guarded by the index's rmu.
	deps []string
	seen uint64
}

// Watch runs q, sends its first page, then after each Apply that changed
// that page the changes (store.WatchEvent). The channel is closed when
// ctx ends or the index closes. At most Options.MaxWatches watches are
// open at once (ErrTooManyWatches). q is validated as by Query.
func (ix *Index) Watch(ctx context.Context, q store.Query) (<-chan store.WatchEvent, error) {
	p, err := ix.compile(q)
	if err != nil {
		return nil, err
	}
	// Under the refresh lock, not the writer's: Apply goes on while the
	// first page is computed (a costly query used to hold every commit
	// up), and no refresh round interleaves, so none misses a commit: a
	// commit before the first page's snapshot is in it, one after it asks
	// for a round that starts after this one registered the watch.
	ix.rmu.Lock()
	defer ix.rmu.Unlock()
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return nil, ErrClosed
	}
	ix.wmu.Lock()
	n := len(ix.watches)
	ix.wmu.Unlock()
	if n >= ix.opts.MaxWatches {
		ix.mu.Unlock()
		return nil, fmt.Errorf("index: watch: %d open: %w", n, ErrTooManyWatches)
	}
	w := &watch{p: p, out: make(chan store.WatchEvent), wake: make(chan struct{}, 1), deps: deps(q)}
	ix.wmu.Lock()
	ix.watches[w] = struct{}{}
	ix.wmu.Unlock()
	if !ix.rOn { // the refresher starts with the first watch
		ix.rOn = true
		ix.wg.Add(1)
		go ix.refresher()
	}
	ix.wg.Add(1) // the serve goroutine's, counted before Close can wait
	ix.mu.Unlock()
	w.seen = ix.types.typesVersion(w.deps) // before the page's snapshot
	first, err := ix.run(ctx, p)
	if err != nil {
		ix.wmu.Lock()
		delete(ix.watches, w)
		ix.wmu.Unlock()
		ix.wg.Done()
		return nil, err
	}
	w.mu.Lock()
	w.cur = first
	w.mu.Unlock()
	go ix.serve(ctx, w, first)
	return w.out, nil
}

// kickRefresh asks the refresher for a round (after a commit); requests
// made while one runs are coalesced into the next.
func (ix *Index) kickRefresh() {
	select {
	case ix.rq <- struct{}{}:
	default:
	}
}

// refresher recomputes the watches' pages, one round per request, until
// the index closes. It runs apart from Apply so that a commit does not
// wait for the watches' queries: a watch of a costly query (a common word
// over many entities) delays its own updates, not indexing or writes.
// Each round reads the latest snapshot, so a page never goes back.
func (ix *Index) refresher() {
	defer ix.wg.Done()
	for {
		select {
		case <-ix.done:
			return
		case <-ix.rq:
			ix.refresh(context.Background())
		}
	}
}

func (ix *Index) serve(ctx context.Context, w *watch, first store.Page) {
	defer ix.wg.Done()
	defer close(w.out)
	defer func() {
		ix.wmu.Lock()
		delete(ix.watches, w)
		ix.wmu.Unlock()
	}()
	// acked is the page the reader has (what was sent), target the page
	// ev brings it to; the first event is a whole page.
	var acked store.Page
	target := first
	ev := store.WatchEvent{Page: &first}
	pending, started := true, false
	for {
		out := w.out
		if !pending {
			out = nil // nothing to send: wait for a change
		}
		select {
		case out <- ev:
			acked, pending, started = target, false, true
			continue
		case <-w.wake:
		case <-ctx.Done():
			return
		case <-ix.done:
			return
		}
		// A new page: what to send is the difference between what the
		// reader has and the page now, coalescing what it did not read.
		w.mu.Lock()
		cur, failed := w.cur, w.err
		w.mu.Unlock()
		if failed {
			return
		}
		target = cur
		if !started {
			ev = store.WatchEvent{Page: &cur}
			continue
		}
		ch := Diff(acked, cur)
		ev, pending = store.WatchEvent{Changes: ch}, len(ch) > 0
	}
}

// refresh recomputes the page of every watch whose types a commit
// touched since its page was computed (TypesVersion of its query's type
// and of the traits it returns) and wakes them. A watch whose query
// fails (the index closing) ends.
func (ix *Index) refresh(ctx context.Context) {
	ix.rmu.Lock() // refreshes in commit order: a page never goes back
	defer ix.rmu.Unlock()
	ix.wmu.Lock()
	ws := make([]*watch, 0, len(ix.watches))
	for w := range ix.watches {
		ws = append(ws, w)
	}
	ix.wmu.Unlock()
	for _, w := range ws {
		select {
		case <-ix.done:
			return // closing: the watches end
		default:
		}
		v := ix.types.typesVersion(w.deps) // before the snapshot the query reads
		if v == w.seen {
			continue // no commit touched its types: the page is the same
		}
		ix.watchRuns.Add(1)
		page, err := ix.run(context.WithoutCancel(ctx), w.p)
		w.mu.Lock()
		if err != nil {
			w.err = true
		} else {
			w.cur, w.seen = page, v
		}
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Diff returns how a watched query's page changed from old to new: first
// the hits of new that are not in old (Added) or differ from their old
// version (Changed: other traits, documents, times or rank), in new's
// order, then the entities of old no longer in new (Removed, with only
// the ID), in old's order. A hit that only moved is not a change.
func Diff(old, new store.Page) []store.Change {
	was := make(map[store.EntityID]*store.Hit, len(old.Hits))
	for i := range old.Hits {
		was[old.Hits[i].Entity.ID] = &old.Hits[i]
	}
	is := make(map[store.EntityID]bool, len(new.Hits))
	var out []store.Change
	for _, h := range new.Hits {
		is[h.Entity.ID] = true
		o, ok := was[h.Entity.ID]
		switch {
		case !ok:
			out = append(out, store.Change{Kind: store.Added, Hit: h})
		case !sameHit(*o, h):
			out = append(out, store.Change{Kind: store.Changed, Hit: h})
		}
	}
	for _, h := range old.Hits {
		if !is[h.Entity.ID] {
			out = append(out, store.Change{Kind: store.Removed, Hit: store.Hit{Entity: store.Entity{ID: h.Entity.ID}}})
		}
	}
	return out
}

func sameHit(a, b store.Hit) bool {
	if a.Rank != b.Rank || len(a.Entity.Traits) != len(b.Entity.Traits) {
		return false
	}
	for i, x := range a.Entity.Traits {
		y := b.Entity.Traits[i]
		if x.ID != y.ID || x.Type != y.Type || !bytes.Equal(x.Doc, y.Doc) || !x.Created.Equal(y.Created) || !x.Modified.Equal(y.Modified) {
			return false
		}
	}
	return true
}
