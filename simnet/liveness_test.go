package simnet

import (
	"context"
	"fmt"
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
		if suspected == before {
			t.Errorf("seed %d: no live member suspected crashed node %d on its lost connection", seed, victim.Index)
		}
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

// TestCutLinkNoFalseFailure: a link between two members cut for a moment,
// 20 times, while both stay reachable by the others, never makes any
// member see a live member dead. Each end loses its last connection to
// the other at every cut; the others still reach both, so memberlist's
// indirect probes would find each end alive, and so must the reach check
// before a suspicion on a lost connection (gossip/doc.go, "Liveness").
// 20 seeds, each its own cell of 6.
func TestCutLinkNoFalseFailure(t *testing.T) {
	const size, cuts = 6, 20
	for seed := uint64(101); seed <= 120; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testCutLink(t, seed, size, cuts) })
		})
	}
}

func testCutLink(t *testing.T, seed uint64, size, cuts int) {
	ctx := context.Background()
	n := New(Config{Seed: seed})
	defer settle(t, n)
	nodes := makeCell(t, ctx, n, size)
	waitAlive(t, nodes, 2*time.Minute)
	time.Sleep(10 * time.Second) // past the joins' gossip
	r := n.Rand("cut")
	i := r.IntN(size)
	j := (i + 1 + r.IntN(size-1)) % size
	a, b := nodes[i], nodes[j]
	var checked, reachable, suspected uint64
	var dead []string
	watch := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			time.Sleep(cellPoll)
			for _, o := range nodes {
				for id, st := range view(o) {
					if st == gossip.StateDead {
						dead = append(dead, fmt.Sprintf("node %d saw node %d dead at %v", o.Index, n.byID[id].Index, time.Now().Format(time.StampMilli)))
					}
				}
			}
		}
	}
	before := make(map[*Node]gossip.Stats)
	for _, nd := range nodes {
		before[nd] = gossipStats(nd)
	}
	for range cuts {
		n.Cut(a, b)
		watch(time.Duration(300+r.IntN(1200)) * time.Millisecond)
		n.Heal()
		watch(time.Duration(500+r.IntN(2500)) * time.Millisecond)
	}
	// Longer than memberlist's longest suspicion (18 s in a cell of 6)
	// and a push/pull.
	watch(40 * time.Second)
	for _, nd := range nodes {
		st, st0 := gossipStats(nd), before[nd]
		checked += st.LostChecked - st0.LostChecked
		reachable += st.LostReachable - st0.LostReachable
		suspected += st.SuspectedLost - st0.SuspectedLost
	}
	t.Logf("seed %d: link %d–%d cut %d times: %d lost connections checked, %d found reachable through another member, %d suspected", seed, a.Index, b.Index, cuts, checked, reachable, suspected)
	if len(dead) > 0 {
		t.Errorf("seed %d: link %d–%d cut %d times: %d sightings of a live member dead, first: %s", seed, a.Index, b.Index, cuts, len(dead), dead[0])
	}
	if checked == 0 {
		t.Errorf("seed %d: link %d–%d cut %d times: no lost connection was checked", seed, a.Index, b.Index, cuts)
	}
}
