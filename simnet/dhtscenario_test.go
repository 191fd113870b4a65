package simnet

import (
	"context"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

func TestDHTLookups200(t *testing.T) {
	const seed = 7
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: seed})
		defer settle(t, n)
		wall := time.Now()
		rep, err := ScenarioDHT(context.Background(), n, DHTOptions{Nodes: 200, Lookups: 10})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		rep.WriteText(os.Stderr)
		_ = wall
		if rep.Operations != 2000 || rep.Succeeded != rep.Operations {
			t.Errorf("seed %d: %d of %d lookups succeeded: %v", seed, rep.Succeeded, rep.Operations, rep.Failures)
		}
	})
}
