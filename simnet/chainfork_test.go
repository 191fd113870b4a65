package simnet

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
)

// TestChainForkFlood: a member answers sync pulls with 500 entries of its
// own, all with sequence number 1. The others keep two, report the fork
// once and the same evidence, refuse the rest without cutting the member
// off, and go on syncing with each other.
func TestChainForkFlood(t *testing.T) {
	const seed, flood = 40, 500
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 3)
		waitAlive(t, nodes, time.Minute)
		a, b, forker := nodes[0], nodes[1], nodes[2]
		ro, keys := forker.Peer().Cell().Roster(), forker.Peer().Cell().Keys()
		secret, ok := keys.Secret(ro.Epoch)
		key := forker.Peer().Host().Peerstore().PrivKey(forker.ID)
		if !ok || key == nil {
			t.Fatalf("seed %d: the forker's key or secret is missing", seed)
		}
		rng := rand.NewChaCha8([32]byte{seed})
		var raw [][]byte
		for i := range flood {
			e, err := chain.Write(chain.Draft{Cell: ro.Cell, Seq: 1, Clock: 1, Epoch: ro.Epoch}, key, secret[:], fmt.Appendf(nil, "fork %d", i), rng)
			if err != nil {
				t.Fatal(err)
			}
			raw = append(raw, e.Bytes())
		}
		forker.Peer().Host().SetStreamHandler(replica.ProtocolSync, func(s network.Stream) {
			defer s.Close()
			drainRequest(s)
			w := bufio.NewWriter(s)
			w.Write(chain.AppendFrame(nil, chain.FrameEntries, chain.EntriesBody(raw)))
			w.Write(chain.AppendFrame(nil, chain.FrameDone, chain.DoneBody(flood)))
			w.Flush()
		})
		// Its announcements say it holds an entry the others lack: they
		// pull from it.
		appendN(t, forker, "forker", 1, 0)
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			return len(chainStatus(t, a).Forks) > 0 && len(chainStatus(t, b).Forks) > 0
		}); !ok {
			t.Fatalf("seed %d: after 1 min, forks: node 0 %v, node 1 %v", seed, chainStatus(t, a).Forks, chainStatus(t, b).Forks)
		}
		appendN(t, a, "a", 10, 10*time.Millisecond)
		appendN(t, b, "b", 10, 10*time.Millisecond)
		awaitLength(t, []*Node{a, b}, 20+chain.MaxForkWidth, time.Minute)
		sa, sb := chainStatus(t, a), chainStatus(t, b)
		for i, st := range []replica.Status{sa, sb} {
			t.Logf("seed %d: node %d: %d entries, %d forked entries refused, %d pulls", seed, i, st.Length, st.Sync.ForkRefused, st.Sync.Pulls)
			if st.Sync.Banned != 0 || st.Sync.Rejected != 0 || st.Sync.ForkRefused < flood-chain.MaxForkWidth {
				t.Errorf("seed %d: node %d: sync stats %+v: want no ban, no invalid entry, at least %d refused forks", seed, i, st.Sync, flood-chain.MaxForkWidth)
			}
			if len(st.Forks) != 1 || st.Forks[0].Author != forker.ID || len(st.Forks[0].CIDs) != chain.MaxForkWidth {
				t.Errorf("seed %d: node %d: forks %+v, want the forker's once, two entries", seed, i, st.Forks)
			}
		}
		if !slices.EqualFunc(sa.Forks[0].CIDs, sb.Forks[0].CIDs, cid.Cid.Equals) {
			t.Errorf("seed %d: the evidence differs: %v and %v", seed, sa.Forks[0].CIDs, sb.Forks[0].CIDs)
		}
		if !slices.EqualFunc(cids(chainLog(t, a)), cids(chainLog(t, b)), cid.Cid.Equals) {
			t.Errorf("seed %d: the chains differ", seed)
		}
	})
}
