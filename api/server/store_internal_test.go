package server

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/exopeer/exopeer/store"
)

func bigHit(size int) store.Hit {
	return store.Hit{Entity: store.Entity{Traits: []store.Trait{{Type: "t", ID: "t", Doc: json.RawMessage(fmt.Sprintf("%q", make([]byte, size)))}}}}
}

// TestBatches: changes are cut into lines of at most the budget, each with
// one change at least, in order, none lost. Seeded.
func TestBatches(t *testing.T) {
	seed := rand.Uint64()
	r := rand.New(rand.NewPCG(seed, 0))
	for round := range 200 {
		changes := make([]store.Change, r.IntN(50))
		for i := range changes {
			changes[i] = store.Change{Kind: store.Added, Hit: bigHit(r.IntN(3000))}
			changes[i].Hit.Entity.ID[0] = byte(i)
		}
		budget := 500 + r.IntN(10000)
		bs := batches(changes, budget)
		n := 0
		for _, b := range bs {
			size := 0
			for _, c := range b {
				if c.Hit.Entity.ID[0] != byte(n) {
					t.Fatalf("seed %d round %d: change %d out of order", seed, round, n)
				}
				n++
				size += hitSize(c.Hit)
			}
			if len(b) == 0 || (len(b) > 1 && size > budget) {
				t.Fatalf("seed %d round %d: a batch of %d changes, %d bytes, budget %d", seed, round, len(b), size, budget)
			}
		}
		if n != len(changes) {
			t.Fatalf("seed %d round %d: %d changes in batches, want %d", seed, round, n, len(changes))
		}
	}
}

func TestFitting(t *testing.T) {
	hits := []store.Hit{bigHit(1000), bigHit(1000), bigHit(1000)}
	one := hitSize(hits[0])
	for _, tt := range []struct{ budget, want int }{
		{0, 1}, {one, 1}, {2*one - 1, 1}, {2 * one, 2}, {3 * one, 3}, {1 << 20, 3},
	} {
		if got := fitting(hits, tt.budget); got != tt.want {
			t.Errorf("fitting(3 hits of %d, %d) = %d, want %d", one, tt.budget, got, tt.want)
		}
	}
	if got := fitting(nil, 10); got != 0 {
		t.Errorf("fitting(nil) = %d", got)
	}
}
