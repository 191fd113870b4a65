package simnet

import (
	"context"
	"math"
	"testing"
	"time"
)

// TestBlobScenario fetches a 32 MiB blob (the exopeer-sim scenario's
// shape at an eighth of its size) over 100 Mbit/s links with 20 ms
// latency, from 3 seeders and from 1. The speeds and the seeders' shares
// depend on goroutine scheduling and bitswap's own random choices and are
// logged, not checked, beyond what must hold: both fetches get the whole DAG,
// neither beats its links' capacity (the bandwidth model's burst is
// drained first), and the shares account for every block. The goals
// (2.5x, 80% of capacity) are for the 256 MiB run: exopeer-sim blob.
func TestBlobScenario(t *testing.T) {
	const seed = 5
	cfg := Config{Seed: seed, Bandwidth: BlobBandwidth, Latency: func(int, int) time.Duration { return BlobLatency }}
	rep, err := RunInBubble(t, func(ctx context.Context, n *Net, o Options) (Report, error) {
		return ScenarioBlob(ctx, n, BlobOptions{Size: 32 << 20})
	}, cfg, Options{Seed: seed})
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	b := rep.Blob
	t.Logf("seed %d: from 1: %.2f s, %.2f MiB/s (%.0f%%); from 3: %.2f s, %.2f MiB/s (%.0f%%), shares %.2f; ratio %.2f",
		seed, b.One.VirtualS, b.One.MiBps, 100*b.One.OfCapacity, b.Many.VirtualS, b.Many.MiBps, 100*b.Many.OfCapacity, b.Many.PerSeeder, b.Ratio)
	if rep.Succeeded != 2 {
		t.Fatalf("seed %d: %d of 2 fetches succeeded: %v", seed, rep.Succeeded, rep.Failures)
	}
	for _, f := range []BlobFetch{b.One, b.Many} {
		if f.OfCapacity > 1.02 {
			t.Errorf("seed %d: from %d seeders at %.0f%% of the links' capacity: the model let more through than it should", seed, f.Seeders, 100*f.OfCapacity)
		}
	}
	for _, f := range []BlobFetch{b.One, b.Many} {
		sum := 0.0
		for _, s := range f.PerSeeder {
			sum += s
		}
		if len(f.PerSeeder) != f.Seeders || math.Abs(sum-1) > 1e-9 {
			t.Errorf("seed %d: shares of the %d seeders %.2f: they should add up to all the blocks", seed, f.Seeders, f.PerSeeder)
		}
	}
}
