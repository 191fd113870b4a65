package simnet

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
)

// TestOneWayChainConverges: while one member's data to the others is cut
// (it hears them, they do not hear it) every member appends; its pulls
// still work, the others' pulls from it time out. After the heal all hold
// one chain.
func TestOneWayChainConverges(t *testing.T) {
	for _, inward := range []bool{false, true} {
		t.Run(fmt.Sprintf("inward=%v", inward), func(t *testing.T) {
			seed := uint64(64)
			if inward {
				seed = 65
			}
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				n := New(Config{Seed: seed})
				defer settle(t, n)
				nodes := makeCell(t, ctx, n, 3)
				waitAlive(t, nodes, time.Minute)
				c, rest := nodes[2], nodes[:2]
				if inward {
					n.OneWay(rest, []*Node{c})
				} else {
					n.OneWay([]*Node{c}, rest)
				}
				var wg sync.WaitGroup
				for _, nd := range nodes {
					wg.Go(func() { appendN(t, nd, fmt.Sprintf("node %d", nd.Index), 20, 5*time.Second) })
				}
				wg.Wait()
				n.Heal()
				took := awaitLength(t, nodes, 60, 3*time.Minute)
				t.Logf("seed %d: converged %v after the heal", seed, took)
				for _, nd := range nodes {
					st := chainStatus(t, nd).Sync
					t.Logf("seed %d: node %d: %d pulls, %d failed, %d banned", seed, nd.Index, st.Pulls, st.PullErrors, st.Banned)
					if st.Banned != 0 {
						t.Errorf("seed %d: node %d banned a member for a cut: %s", seed, nd.Index, st.LastBannedBecause)
					}
				}
				if !slices.EqualFunc(cids(chainLog(t, nodes[0])), cids(chainLog(t, c)), cid.Cid.Equals) {
					t.Errorf("seed %d: node 0 and node 2 hold different chains", seed)
				}
			})
		})
	}
}

// TestCloseWhileBlackholed: with every byte between a node and the rest
// held back both ways (a black hole: connections stay up, nothing
// passes), nodes that append, pull and gossip across it still close in
// under 2 s of virtual time, without waiting out a stream timeout.
func TestCloseWhileBlackholed(t *testing.T) {
	const seed = 67
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 3)
		waitAlive(t, nodes, time.Minute)
		a, rest := nodes[0], nodes[1:]
		n.OneWay([]*Node{a}, rest)
		n.OneWay(rest, []*Node{a})
		for _, nd := range nodes {
			appendN(t, nd, fmt.Sprintf("node %d", nd.Index), 3, 100*time.Millisecond)
		}
		pulled := make(chan error, 1)
		go func() { pulled <- a.Peer().Chain().Pull(ctx, rest[0].ID) }()
		time.Sleep(5 * time.Second)
		for _, nd := range []*Node{a, rest[0]} {
			start := time.Now()
			if err := nd.Peer().Close(); err != nil {
				t.Errorf("seed %d: node %d: Close: %v", seed, nd.Index, err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("seed %d: node %d took %v of virtual time to close, want < 2 s", seed, nd.Index, took)
			}
		}
		if err := <-pulled; err == nil {
			t.Errorf("seed %d: a pull across the black hole succeeded", seed)
		}
	})
}
