package simnet

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// The store scenario's size in tests: -store.seeds=N for more seeds,
// -store.ops=N for more mutations per node.
var (
	storeSeeds = flag.Int("store.seeds", 2, "seeds TestStoreScenario runs")
	storeOps   = flag.Int("store.ops", 60, "mutations each store node of TestStoreScenario makes")
)

// TestStoreScenario: 5 store nodes of one cell put, delete traits of and
// delete the same 100 entities concurrently under seeded partitions and
// crashes; after the heal, a fixed set of queries gives byte-identical
// JSON on every node, and on a member without the store role through a
// store member; that member falls back on another when its own crashes,
// for its reads and its watch (ScenarioStore).
func TestStoreScenario(t *testing.T) {
	for seed := uint64(1); seed <= uint64(*storeSeeds); seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			dir := t.TempDir()
			rep, err := RunInBubble(t, func(ctx context.Context, n *Net, _ Options) (Report, error) {
				return ScenarioStore(ctx, n, StoreOptions{Ops: *storeOps, Dir: dir})
			}, Config{Seed: seed}, Options{})
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			s := rep.Store
			t.Logf("seed %d: %d mutations written, %d entries, %d live entities, %d partitions, %d crashes, caught up %.0f ms after the heal, %d answer bytes, %.1f s wall",
				seed, s.Written, s.Entries, s.Live, s.Partitions, s.Crashes, s.ConvergedMs, s.AnswerBytes, rep.WallTime)
			if rep.Succeeded != rep.Operations || rep.Operations != 7 {
				var sb strings.Builder
				_ = rep.WriteText(&sb)
				t.Errorf("seed %d: %d of %d operations succeeded:\n%s", seed, rep.Succeeded, rep.Operations, sb.String())
			}
			if s.Written == 0 || s.Entries < s.Written || s.Live == 0 || s.Partitions+s.Crashes != 3 {
				t.Errorf("seed %d: the workload did too little: %+v", seed, *s)
			}
		})
	}
}

// TestStorePlanDeterministic: the seed alone fixes the store scenario's
// workload, and two seeds differ.
func TestStorePlanDeterministic(t *testing.T) {
	rnd := func(seed uint64) func(string) *rand.Rand { return (&Net{cfg: Config{Seed: seed}}).Rand }
	o := StoreOptions{}.withDefaults()
	a, b, c := planStore(rnd(1), o).digest(), planStore(rnd(1), o).digest(), planStore(rnd(2), o).digest()
	if a != b || a == c {
		t.Errorf("digests %s, %s (seed 1 twice), %s (seed 2)", a, b, c)
	}
}
