package simnet

import (
	"context"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/gossip"
)

// suspicionMin is memberlist's shortest suspicion of a member in a cell of
// n nodes with the default timing: SuspicionMult × max(1, log10(n)) ×
// ProbeInterval.
func suspicionMin(n int) time.Duration {
	t := gossip.DefaultTiming()
	scale := 1.0
	if l := math.Log10(float64(n)); l > 1 {
		scale = l
	}
	return time.Duration(float64(t.SuspicionMult) * scale * float64(t.ProbeInterval))
}

// TestCrashSuspectedOnDisconnect: a crashed member, whose connections all
// close, is seen dead by every other member within the shortest suspicion
// plus a gossip round or two: each member suspects it as its last
// connection closes, rather than when its turn to be probed comes (one
// member in n per probe interval) and then waits out an unconfirmed
// suspicion.
func TestCrashSuspectedOnDisconnect(t *testing.T) {
	const seed, size = 11, 6
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, size)
		waitAlive(t, nodes, 2*time.Minute)
		time.Sleep(10 * time.Second) // past the joins' gossip
		victim := nodes[1+n.Rand("victim").IntN(size-1)]
		live := without(nodes, []*Node{victim})
		var before uint64
		for _, nd := range live {
			before += nd.Peer().Cell().Gossip().Stats().SuspectedLost
		}
		crashAt := time.Now()
		if err := n.Crash(victim); err != nil {
			t.Fatalf("seed %d: Crash: %v", seed, err)
		}
		bound := suspicionMin(size) + time.Second
		at := awaitViews(live, time.Minute, func(_ *Node, seen map[peer.ID]gossip.State) bool {
			return seen[victim.ID] == gossip.StateDead
		})
		var suspected, unknown uint64
		for _, nd := range live {
			st := nd.Peer().Cell().Gossip().Stats()
			suspected += st.SuspectedLost
			unknown += st.LostUnknown
		}
		t.Logf("seed %d: %d live members suspected node %d on disconnect, %d without its incarnation", seed, suspected-before, victim.Index, unknown)
		var slowest time.Duration
		for _, nd := range live {
			if d, ok := at[nd.ID]; ok {
				slowest = max(slowest, d.Sub(crashAt))
			}
		}
		t.Logf("seed %d: the last member saw it dead after %v (virtual), bound %v", seed, slowest, bound)
		for _, nd := range live {
			d, ok := at[nd.ID]
			if !ok {
				t.Errorf("seed %d: node %d never saw crashed node %d dead", seed, nd.Index, victim.Index)
				continue
			}
			if took := d.Sub(crashAt); took > bound {
				t.Errorf("seed %d: node %d saw crashed node %d dead after %v (virtual), want at most %v", seed, nd.Index, victim.Index, took, bound)
			}
		}
	})
}

// TestSlowMemberNotFailed: a member all of whose links are slow (as
// through a distant relay) is never declared dead while another member
// crashes and is declared dead.
func TestSlowMemberNotFailed(t *testing.T) {
	const seed, size, slow = 12, 10, 3
	// A round trip of 770 ms, as through a relay far away: above the
	// probe timeout, below the probe interval (1 s), until whose end a
	// late ack still counts. With a 700 ms interval this member is
	// declared dead, and so it is with a 1.2 s round trip.
	const oneWay = 385 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed, Latency: func(a, b int) time.Duration {
			if a == slow || b == slow {
				return oneWay
			}
			return DefaultLatency
		}})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, size)
		waitAlive(t, nodes, 2*time.Minute)
		victim := nodes[1+n.Rand("victim").IntN(size-1)]
		for victim.Index == slow {
			victim = nodes[1+n.Rand("victim").IntN(size-1)]
		}
		if err := n.Crash(victim); err != nil {
			t.Fatalf("seed %d: Crash: %v", seed, err)
		}
		live := without(nodes, []*Node{victim})
		deadSeen := make(map[int]bool)
		for end := time.Now().Add(3 * time.Minute); time.Now().Before(end); {
			time.Sleep(cellPoll)
			for _, nd := range live {
				if view(nd)[nodes[slow].ID] == gossip.StateDead {
					deadSeen[nd.Index] = true
				}
			}
		}
		for _, nd := range live {
			if deadSeen[nd.Index] {
				t.Errorf("seed %d: node %d saw the slow node %d (%v one way) dead", seed, nd.Index, slow, oneWay)
			}
			if st := view(nd)[victim.ID]; st != gossip.StateDead {
				t.Errorf("seed %d: node %d sees crashed node %d %v", seed, nd.Index, victim.Index, st)
			}
		}
	})
}
