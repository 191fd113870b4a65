package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/service"
)

// TestGroupCommitMix: concurrent Puts and Deletes of a few entities, some
// with a ctx canceled while they run, behave as if committed one by one:
// a write that returned success is on the chain, one that returned an
// error is not, and each entity ends as the last successful write of it
// in chain order (entry, then transaction in the entry) says. Seeded (the seed is printed).
func TestGroupCommitMix(t *testing.T) {
	const seed = 1407
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	n := cellNode(t, 55)
	s := n.Store()
	ctx := t.Context()
	var ents []store.EntityID
	for i := range 4 {
		w, err := s.Put(ctx, store.EntityID{}, []store.Trait{note(fmt.Sprint("init ", i))})
		if err != nil {
			t.Fatal(err)
		}
		ents = append(ents, w.Entity)
	}
	type op struct {
		e      int
		del    bool
		body   string
		cancel bool
	}
	type result struct {
		op
		w   service.Written
		err error
	}
	const writers, each = 12, 12
	plans := make([][]op, writers)
	for g := range writers {
		for i := range each {
			plans[g] = append(plans[g], op{e: rng.IntN(len(ents)), del: rng.IntN(5) == 0, body: fmt.Sprintf("g%d.%d", g, i), cancel: rng.IntN(4) == 0})
		}
	}
	var mu sync.Mutex
	var results []result
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for _, o := range plans[g] {
				c, cancel := context.WithCancel(ctx)
				if o.cancel {
					go cancel() // ends at some point of the write, or before it
				}
				var r result
				r.op = o
				if o.del {
					r.w, r.err = s.Delete(c, ents[o.e], nil)
				} else {
					r.w, r.err = s.Put(c, ents[o.e], []store.Trait{note(o.body)})
				}
				cancel()
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	// What the chain holds: the bodies of the notes put.
	onChain := map[string]bool{}
	es, err := n.Chain().Arrivals(ctx, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var ops []store.Op
	for _, e := range es {
		parts, err := store.Split(e.Payload)
		if err != nil {
			continue
		}
		for _, p := range parts {
			if tx, err := store.Decode(p); err == nil {
				ops = append(ops, tx.Ops...)
			}
		}
	}
	for _, o := range ops {
		if o.Kind == store.OpPutTrait {
			var d struct{ Body string }
			if json.Unmarshal(o.Trait.Doc, &d) == nil {
				onChain[d.Body] = true
			}
		}
	}
	last := make([]*result, len(ents))
	for i := range results {
		r := &results[i]
		if !r.del && onChain[r.body] != (r.err == nil) {
			t.Errorf("put %s: error %v, on the chain %v", r.body, r.err, onChain[r.body])
		}
		if r.err != nil {
			if !errors.Is(r.err, context.Canceled) && !errors.Is(r.err, store.ErrNotFound) {
				t.Errorf("write %+v: %v", r.op, r.err)
			}
			continue
		}
		if l := last[r.e]; l == nil || l.w.Pos.Compare(r.w.Pos) < 0 || (l.w.Pos == r.w.Pos && l.w.Tx < r.w.Tx) {
			last[r.e] = r
		} else if l.w.Pos == r.w.Pos && l.w.Tx == r.w.Tx {
			t.Errorf("writes %s and %s of one entity in one transaction", l.body, r.body)
		}
	}
	for i, e := range ents {
		got, err := s.Get(ctx, e, nil)
		l := last[i]
		switch {
		case l == nil:
			// only canceled writes, or none: the initial note stands
		case l.del:
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("entity %d: last write a delete, got %+v, %v", i, got, err)
			}
		default:
			var d struct{ Body string }
			if err != nil || len(got.Traits) != 1 || json.Unmarshal(got.Traits[0].Doc, &d) != nil || d.Body != l.body {
				t.Errorf("entity %d: got %+v, %v; want the note %s", i, got, err, l.body)
			}
		}
	}
	t.Logf("%d writes, %d commits, %d chain entries", len(results), service.Commits(s), len(es))
}
