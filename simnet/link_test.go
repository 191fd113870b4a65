package simnet

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/discovery"
)

// TestLatencyPerPair: Config.Latency gives each pair of nodes its own
// one-way latency, and a ping's round trip, in virtual time, is twice
// that: 50 ms one way between an even and an odd node, 5 ms otherwise.
func TestLatencyPerPair(t *testing.T) {
	const (
		seed = 61
		far  = 50 * time.Millisecond
		near = 5 * time.Millisecond
	)
	latency := func(a, b int) time.Duration {
		if a%2 != b%2 {
			return far
		}
		return near
	}
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		n := New(Config{Seed: seed, Latency: latency})
		defer settle(t, n)
		first, err := n.AddNode(ctx, NodeConfig{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		nodes := []*Node{first}
		for range 3 {
			nd, err := n.AddNode(ctx, NodeConfig{Bootstrap: []*Node{first}})
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			nodes = append(nodes, nd)
		}
		time.Sleep(time.Minute)

		for _, pair := range [][2]int{{0, 1}, {0, 2}, {1, 3}, {2, 3}, {3, 0}, {1, 2}} {
			a, b := nodes[pair[0]], nodes[pair[1]]
			oneWay := latency(a.Index, b.Index)
			if c := connectedness(a, b); c != network.Connected {
				t.Errorf("seed %d: nodes %d and %d are %v", seed, a.Index, b.Index, c)
				continue
			}
			for i := range 3 {
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				rtt, err := discovery.Ping(pctx, a.Peer().Host(), b.ID)
				cancel()
				if err != nil {
					t.Errorf("seed %d: ping %d → %d: %v", seed, a.Index, b.Index, err)
					break
				}
				// Virtual time is exact: the round trip is the two
				// one-way latencies, give or take the scheduling of
				// mocknet's delivery goroutines (none measured).
				if rtt < 2*oneWay || rtt > 2*oneWay+time.Millisecond {
					t.Errorf("seed %d: ping %d → %d #%d: %v, want %v", seed, a.Index, b.Index, i, rtt, 2*oneWay)
				}
				if i == 0 {
					t.Logf("ping %d → %d: %v (one way %v)", a.Index, b.Index, rtt, oneWay)
				}
			}
			// Discovery measured the same round trip on its own.
			for _, pi := range a.Peer().Discovery().Peers() {
				if pi.ID == b.ID && (pi.RTT < 2*oneWay || pi.RTT > 2*oneWay+time.Millisecond) {
					t.Errorf("seed %d: discovery of node %d measured %v to node %d, want %v", seed, a.Index, pi.RTT, b.Index, 2*oneWay)
				}
			}
		}
	})
}

// fetchAll fetches cs from the network into nd and returns the virtual
// time it took.
func fetchAll(ctx context.Context, nd *Node, cs []cid.Cid) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	_, err := nd.Peer().Exchange().GetMany(ctx, cs)
	return time.Since(start), err
}

// TestBandwidth: with Config.Bandwidth set, fetching 4 MiB of blocks over
// one link takes as long as the bandwidth says, in virtual time; without
// it, a fraction of that.
//
// mocknet's rate limiter (p2p/net/mock/ratelimiter.go) is a token bucket
// per link, shared by both directions, that holds up to one second of
// bandwidth and fills while the link is idle: the first second's worth
// goes through at once. So 4 MiB at 1 MiB/s take 3 s over a link that was
// idle, and 4 s right after another transfer emptied the bucket.
func TestBandwidth(t *testing.T) {
	const (
		seed      = 71
		bandwidth = 1 << 20 // bytes per second
		blockSize = 256 << 10
		count     = 16 // 4 MiB
	)
	tests := []struct {
		name string
		bw   float64
		// Bounds of the fetch over an idle link, then of the one right
		// after it.
		idleMin, idleMax, busyMin, busyMax time.Duration
	}{
		{"1MiB/s", bandwidth, 3 * time.Second, 4 * time.Second, 4 * time.Second, 5 * time.Second},
		{"unlimited", 0, 0, 500 * time.Millisecond, 0, 500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				n := New(Config{Seed: seed, Bandwidth: tc.bw})
				defer settle(t, n)
				src, err := n.AddNode(ctx, NodeConfig{})
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				dst, err := n.AddNode(ctx, NodeConfig{Bootstrap: []*Node{src}})
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				blks := randomBlocks(n.Rand("test bandwidth blocks"), 2*count, blockSize)
				if err := src.Peer().Blocks().PutMany(ctx, blks); err != nil {
					t.Fatalf("seed %d: PutMany: %v", seed, err)
				}
				servePublic(src, blks...)
				askPublic(dst, blks...)
				var cs []cid.Cid
				for _, b := range blks {
					cs = append(cs, b.Cid())
				}
				time.Sleep(time.Minute) // the link is idle: its bucket is full
				for i, want := range [][2]time.Duration{{tc.idleMin, tc.idleMax}, {tc.busyMin, tc.busyMax}} {
					took, err := fetchAll(ctx, dst, cs[i*count:(i+1)*count])
					if err != nil {
						t.Fatalf("seed %d: fetch: %v", seed, err)
					}
					t.Logf("fetch %d: %d KiB in %v virtual (%.2f MiB/s)", i+1, count*blockSize>>10, took,
						float64(count*blockSize)/(1<<20)/took.Seconds())
					if took < want[0] || took > want[1] {
						t.Errorf("seed %d: fetch %d took %v, want %v to %v", seed, i+1, took, want[0], want[1])
					}
				}
			})
		})
	}
}
