package simnet

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
)

// TestDHTLookups200 is the DHT scenario at CI size: 200 nodes, each looks up
// 10 random others; every lookup must find its target.
func TestDHTLookups200(t *testing.T) {
	const seed = 7
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: seed})
		defer settle(t, n)
		rep, err := ScenarioDHT(context.Background(), n, DHTOptions{Nodes: 200, Lookups: 10})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		var b strings.Builder
		rep.WriteText(&b)
		t.Logf("seed %d:\n%s", seed, b.String())
		if rep.Operations != 2000 || rep.Succeeded != rep.Operations {
			t.Errorf("seed %d: %d of %d lookups succeeded: %v", seed, rep.Succeeded, rep.Operations, rep.Failures)
		}
	})
}

// TestScenarioLAN: every ordered pair of 15 nodes on one segment meets by
// mDNS alone, within the deadline.
func TestScenarioLAN(t *testing.T) {
	const seed = 3
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: seed})
		defer settle(t, n)
		rep, err := ScenarioLAN(context.Background(), n, LANOptions{Nodes: 15})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if rep.Operations != 15*14 || rep.Succeeded != rep.Operations {
			t.Errorf("seed %d: %d of %d pairs met: %v", seed, rep.Succeeded, rep.Operations, rep.Failures)
		}
	})
}
