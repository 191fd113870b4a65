package simnet

import (
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/peer"
)

// dhtRun is what one run of ScenarioDHT decided, as far as the seed fixes
// it.
type dhtRun struct {
	Operations, Succeeded, Crashed int
	Workload                       string // digest of which lookups ran
	Failures                       []string
	IDs                            []peer.ID // by node index
	Down                           []int     // the indexes of the crashed nodes
}

// runDHTScenario runs ScenarioDHT on a fresh network in a bubble of its own.
func runDHTScenario(t *testing.T, seed uint64, o DHTOptions) dhtRun {
	t.Helper()
	var run dhtRun
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: seed})
		defer settle(t, n)
		rep, err := ScenarioDHT(t.Context(), n, o)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		t.Logf("seed %d: %d of %d lookups, p50 %.0f ms, %.0f s virtual", seed, rep.Succeeded, rep.Operations, rep.VirtualLatency.P50, rep.VirtualTime)
		run = dhtRun{Operations: rep.Operations, Succeeded: rep.Succeeded, Crashed: rep.Crashed, Workload: rep.Workload, Failures: rep.Failures}
		for _, nd := range n.Nodes() {
			run.IDs = append(run.IDs, nd.ID)
			if !nd.Up() {
				run.Down = append(run.Down, nd.Index)
			}
		}
	})
	return run
}

// TestScenarioDHTDeterministic: two runs of the DHT scenario with one seed,
// each in a bubble of its own, reach the same verdict: the same nodes, the
// same ones crashed, the same counts and failures.
//
// Which lookups ran (from, to, when) is compared through the report's
// workload digest.
func TestScenarioDHTDeterministic(t *testing.T) {
	const seed = 51
	o := DHTOptions{Nodes: 40, Lookups: 5, CrashFraction: 0.1}
	first := runDHTScenario(t, seed, o)
	second := runDHTScenario(t, seed, o)
	if t.Failed() {
		return
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("seed %d: two runs differ (-first +second):\n%s", seed, diff)
	}
	if want := (o.Nodes - first.Crashed) * o.Lookups; first.Operations != want {
		t.Errorf("seed %d: %d lookups, want %d", seed, first.Operations, want)
	}
	if first.Crashed != 4 || len(first.Down) != first.Crashed {
		t.Errorf("seed %d: %d crashed, %d down, want 4", seed, first.Crashed, len(first.Down))
	}
	if first.Succeeded != first.Operations {
		t.Errorf("seed %d: %d of %d lookups succeeded: %v", seed, first.Succeeded, first.Operations, first.Failures)
	}
}

// TestSeedDecidesIDs: node keys come from the seed: one seed gives the same
// IDs on two networks, another seed other IDs.
func TestSeedDecidesIDs(t *testing.T) {
	ids := func(seed uint64) []peer.ID {
		var out []peer.ID
		synctest.Test(t, func(t *testing.T) {
			n := New(Config{Seed: seed})
			defer settle(t, n)
			for range 3 {
				nd, err := n.AddNode(t.Context(), NodeConfig{})
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				if nd.Peer().ID() != nd.ID || nd.Peer().Host().ID() != nd.ID {
					t.Errorf("seed %d: node %d runs as %s, want %s", seed, nd.Index, nd.Peer().Host().ID(), nd.ID)
				}
				out = append(out, nd.ID)
			}
		})
		return out
	}
	one, again, two := ids(1), ids(1), ids(2)
	if diff := cmp.Diff(one, again); diff != "" {
		t.Errorf("seed 1 gave other IDs the second time (-first +second):\n%s", diff)
	}
	for i := range one {
		for j := range two {
			if one[i] == two[j] {
				t.Errorf("seed 1 node %d and seed 2 node %d have the same ID %s", i, j, one[i])
			}
		}
	}
	for i := range one {
		for j := range i {
			if one[i] == one[j] {
				t.Errorf("seed 1 nodes %d and %d have the same ID %s", j, i, one[i])
			}
		}
	}
}
