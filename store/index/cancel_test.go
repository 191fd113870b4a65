package index

import (
	"context"
	"errors"
	"testing"

	"github.com/exopeer/exopeer/store"
)

// endingCtx is a context that ends (Err: context.Canceled) at its n-th
// Err call, whatever the clock: a cancellation at a chosen point.
type endingCtx struct {
	context.Context
	n int
}

func (c *endingCtx) Err() error {
	if c.n--; c.n <= 0 {
		return context.Canceled
	}
	return nil
}

// TestApplyCanceled: an Apply whose context ends while it applies (its
// statements run under one that does not, so that SQLite is not
// watched by a goroutine per statement) stops at the next arrival and
// rolls back: nothing applied, the checkpoint where it was, and the
// next Apply applies everything.
func TestApplyCanceled(t *testing.T) {
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	f := &msgFeed{}
	var as []Arrival
	for i := range 10 {
		as = append(as, f.arrival(t, i, "sent"))
	}
	for _, n := range []int{1, 4} {
		if _, err := ix.Apply(&endingCtx{Context: context.Background(), n: n}, as); !errors.Is(err, context.Canceled) {
			t.Fatalf("ending after %d checks: Apply: %v, want context.Canceled", n, err)
		}
		if cp, err := ix.Checkpoint(t.Context()); err != nil || cp.Next != 0 {
			t.Fatalf("ending after %d checks: Checkpoint = %+v, %v; want 0", n, cp, err)
		}
		if _, err := ix.Get(t.Context(), eid(0), nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("ending after %d checks: Get of the first arrival's entity: %v, want ErrNotFound", n, err)
		}
	}
	if _, err := ix.Apply(t.Context(), as); err != nil {
		t.Fatal(err)
	}
	if cp, err := ix.Checkpoint(t.Context()); err != nil || cp.Next != 10 {
		t.Fatalf("Checkpoint = %+v, %v; want 10", cp, err)
	}
}

// TestGetCanceled: a Get whose context has ended answers its error, not
// the entity (its statements run under a context that is never
// canceled: ctx is checked first, and bounds the wait for a reader).
func TestGetCanceled(t *testing.T) {
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	f := &msgFeed{}
	if _, err := ix.Apply(t.Context(), []Arrival{f.arrival(t, 0, "sent")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Get(t.Context(), eid(0), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for range 20 { // acquire's select would pick a free reader now and then
		if _, err := ix.Get(ctx, eid(0), nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Get with a canceled context: %v, want context.Canceled", err)
		}
	}
}
