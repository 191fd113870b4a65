package simnet

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// TestPartitionHeal: twenty nodes, bootstrapped from node 0 (and, in
// some cases, all on one LAN segment), are split in two halves. The cut is
// complete at once: no connection crosses it and no lookup across it
// reaches its target, while lookups within each half still work. After
// Heal, the halves find each other again by themselves (discovery redials
// its bootstrap and LAN peers, the DHT refreshes), and lookups across work
// again.
func TestPartitionHeal(t *testing.T) {
	tests := []struct {
		name   string
		seed   uint64
		lan    bool          // all nodes on one LAN segment
		cutFor time.Duration // how long the partition lasts
	}{
		{name: "lan/30s", seed: 31, lan: true, cutFor: 30 * time.Second},
		// Long enough for the LAN peers across the cut to be forgotten
		// (MaxFailures dials) and the bootstrap back-off to reach its
		// maximum.
		{name: "lan/15min", seed: 32, lan: true, cutFor: 15 * time.Minute},
		{name: "bootstrap-only/15min", seed: 33, cutFor: 15 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testPartitionHeal(t, tc.seed, tc.lan, tc.cutFor) })
		})
	}
}

func testPartitionHeal(t *testing.T, seed uint64, onLAN bool, cutFor time.Duration) {
	const (
		size      = 20
		healLimit = 10 * time.Minute
	)
	ctx := t.Context()
	n := New(Config{Seed: seed})
	defer settle(t, n)
	var lan *Segment
	if onLAN {
		lan = n.Segment("lan")
	}
	first, err := n.AddNode(ctx, NodeConfig{Segment: lan})
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	nodes := []*Node{first}
	for range size - 1 {
		nd, err := n.AddNode(ctx, NodeConfig{Bootstrap: []*Node{first}, Segment: lan})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		nodes = append(nodes, nd)
	}
	time.Sleep(time.Minute)
	a, b := nodes[:size/2], nodes[size/2:]
	if iso := isolated(a, b); len(iso) > 0 {
		t.Fatalf("seed %d: before the partition, nodes %v have no connection to the other half", seed, iso)
	}
	before := len(crossLinks(a, b))

	n.Partition(a, b)
	time.Sleep(5 * time.Second)
	if x := crossLinks(a, b); len(x) > 0 {
		t.Errorf("seed %d: 5 s into the partition, connections cross it: %v", seed, x)
	}
	// A lookup across the cut may name the target (peers on our side
	// still have it in their tables) but must not reach it.
	pick := n.Rand("test partition lookups")
	for range 4 {
		from, to := a[pick.IntN(len(a))], b[pick.IntN(len(b))]
		if pick.IntN(2) == 1 {
			from, to = to, from
		}
		r := reach(ctx, from, to, time.Minute)
		if r.reached() {
			t.Errorf("seed %d: during the partition, node %d reached node %d: %v", seed, from.Index, to.Index, r)
		} else if r.connectErr != nil && !errors.Is(r.connectErr, ErrNoRoute) {
			t.Errorf("seed %d: during the partition, dial %d → %d failed with %v, want ErrNoRoute", seed, from.Index, to.Index, r.connectErr)
		}
		t.Logf("during the partition, %d → %d: %v", from.Index, to.Index, r)
	}
	// Within each half, lookups still work.
	for _, half := range [][]*Node{a, b} {
		from, to := half[0], half[len(half)-1]
		if r := reach(ctx, from, to, time.Minute); !r.reached() {
			t.Errorf("seed %d: during the partition, node %d did not reach node %d of its own half: %v", seed, from.Index, to.Index, r)
		}
	}
	time.Sleep(cutFor - 5*time.Second)

	n.Heal()
	healed := time.Now()
	reconnected, ok := waitUntil(healLimit, 100*time.Millisecond, func() bool {
		return len(isolated(a, b)) == 0 && len(isolated(b, a)) == 0
	})
	if !ok {
		t.Fatalf("seed %d: %v after Heal, nodes with no connection to the other half: %v and %v",
			seed, reconnected, isolated(a, b), isolated(b, a))
	}
	t.Logf("after a partition of %v: every node connected to the other half %v after Heal (%d cross connections)",
		cutFor, reconnected, len(crossLinks(a, b)))

	for range 4 {
		from, to := a[pick.IntN(len(a))], b[pick.IntN(len(b))]
		if pick.IntN(2) == 1 {
			from, to = to, from
		}
		// Forget the connection the healing made, if any, so that the
		// lookup has to work.
		if connectedness(from, to) == network.Connected {
			_ = from.Peer().Host().Network().ClosePeer(to.ID)
		}
		r := reach(ctx, from, to, time.Minute)
		if !r.reached() {
			t.Errorf("seed %d: after Heal, node %d did not reach node %d: %v", seed, from.Index, to.Index, r)
		}
		t.Logf("after Heal, %d → %d: %v", from.Index, to.Index, r)
	}
	// Measured, not required: how long until there are as many
	// connections across as before.
	waitUntil(healLimit-time.Since(healed), time.Second, func() bool { return len(crossLinks(a, b)) >= before })
	t.Logf("connections across: %d before the partition, %d %v after Heal",
		before, len(crossLinks(a, b)), time.Since(healed).Round(time.Millisecond))
}

// TestCrashRestartKeepsBlocks: a node that stores 50 blocks crashes; its
// peers see it disconnected at once and can no longer reach it; it
// restarts with the same peer ID and the 50 blocks, and a node that never
// had them fetches one from it by bitswap.
func TestCrashRestartKeepsBlocks(t *testing.T) {
	const seed = 41
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes, err := addTree(ctx, n, 12)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		time.Sleep(time.Minute)
		victim, fetcher := nodes[7], nodes[3]
		id := victim.ID
		stored := randomBlocks(n.Rand("test crash blocks"), 50, 4<<10)
		if err := victim.Peer().Blocks().PutMany(ctx, stored); err != nil {
			t.Fatalf("seed %d: PutMany: %v", seed, err)
		}
		var watchers []*Node // the nodes connected to the victim
		for _, nd := range nodes {
			if nd != victim && connectedness(nd, victim) == network.Connected {
				watchers = append(watchers, nd)
			}
		}
		if len(watchers) == 0 {
			t.Fatalf("seed %d: no node is connected to node %d", seed, victim.Index)
		}

		if err := n.Crash(victim); err != nil {
			t.Fatalf("seed %d: Crash: %v", seed, err)
		}
		if victim.Up() || victim.Peer() != nil {
			t.Errorf("seed %d: crashed node is still up", seed)
		}
		if err := n.Crash(victim); err == nil {
			t.Errorf("seed %d: a second Crash succeeded", seed)
		}
		detected, ok := waitUntil(time.Minute, time.Millisecond, func() bool {
			for _, w := range watchers {
				if connectedness(w, victim) == network.Connected || lists(w, victim) {
					return false
				}
			}
			return true
		})
		if !ok {
			t.Fatalf("seed %d: %v after the crash, some of %d peers still see node %d", seed, detected, len(watchers), victim.Index)
		}
		t.Logf("%d peers saw the crash within %v virtual", len(watchers), detected)

		// A crashed node cannot be reached: a lookup may still name it
		// (from tables that still hold it), but no dial gets through.
		for _, from := range []*Node{nodes[0], fetcher} {
			r := reach(ctx, from, victim, time.Minute)
			if r.reached() {
				t.Errorf("seed %d: node %d reached the crashed node: %v", seed, from.Index, r)
			} else if r.connectErr != nil && !errors.Is(r.connectErr, ErrNoRoute) {
				t.Errorf("seed %d: dial of the crashed node failed with %v, want ErrNoRoute", seed, r.connectErr)
			}
			t.Logf("lookup of the crashed node from node %d: %v", from.Index, r)
		}
		time.Sleep(30 * time.Second)

		if err := n.Restart(ctx, victim); err != nil {
			t.Fatalf("seed %d: Restart: %v", seed, err)
		}
		if err := n.Restart(ctx, victim); err == nil {
			t.Errorf("seed %d: a second Restart succeeded", seed)
		}
		p := victim.Peer()
		if p == nil || victim.ID != id || p.ID() != id || p.Host().ID() != id {
			t.Fatalf("seed %d: restarted node has another identity", seed)
		}
		if count, err := p.Blocks().Count(ctx); err != nil || count != len(stored) {
			t.Errorf("seed %d: after the restart the store holds %d blocks (%v), want %d", seed, count, err, len(stored))
		}
		for _, blk := range stored {
			if has, err := p.Blocks().Has(ctx, blk.Cid()); err != nil || !has {
				t.Fatalf("seed %d: block %s lost in the restart (%v)", seed, blk.Cid(), err)
			}
		}

		// The restarted node reconnects to its bootstrap peer by itself.
		boot := victim.cfg.Bootstrap[0]
		back, ok := waitUntil(time.Minute, 10*time.Millisecond, func() bool { return lists(boot, victim) })
		if !ok {
			t.Errorf("seed %d: the restarted node did not reconnect to its bootstrap node %d in %v", seed, boot.Index, back)
		} else {
			t.Logf("the restarted node was back with its bootstrap node in %v virtual", back)
		}

		// The fetcher connects to it by hand and fetches a block.
		want := stored[n.Rand("test crash pick").IntN(len(stored))]
		servePublic(victim, stored...)
		askPublic(fetcher, stored...)
		if has, _ := fetcher.Peer().Blocks().Has(ctx, want.Cid()); has {
			t.Fatalf("seed %d: node %d has the block before fetching it", seed, fetcher.Index)
		}
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := connectByHand(fctx, fetcher, victim.AddrInfo()); err != nil {
			t.Fatalf("seed %d: connect to the restarted node: %v", seed, err)
		}
		start := time.Now()
		got, err := fetcher.Peer().Exchange().Get(fctx, want.Cid())
		if err != nil {
			t.Fatalf("seed %d: fetch from the restarted node: %v", seed, err)
		}
		if !bytes.Equal(got.RawData(), want.RawData()) {
			t.Errorf("seed %d: fetched block differs", seed)
		}
		t.Logf("fetched a block from the restarted node in %v virtual", time.Since(start))
		if has, err := fetcher.Peer().Blocks().Has(ctx, want.Cid()); err != nil || !has {
			t.Errorf("seed %d: node %d did not store the fetched block (%v)", seed, fetcher.Index, err)
		}
	})
}

// TestRestartAfterClose: once the network is closed, a node cannot be
// restarted (as AddNode cannot add one): its datastore and the mocknet are
// closed.
func TestRestartAfterClose(t *testing.T) {
	const seed = 42
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		first, err := n.AddNode(ctx, NodeConfig{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		second, err := n.AddNode(ctx, NodeConfig{Bootstrap: []*Node{first}})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := n.Crash(second); err != nil {
			t.Fatalf("seed %d: Crash: %v", seed, err)
		}
		if err := n.Close(); err != nil {
			t.Fatalf("seed %d: Close: %v", seed, err)
		}
		if _, err := n.AddNode(ctx, NodeConfig{}); err == nil {
			t.Errorf("seed %d: AddNode after Close succeeded", seed)
		}
		err = n.Restart(ctx, second)
		if p := second.Peer(); p != nil {
			// Stop what the restart started, so that the bubble can end.
			defer p.Close()
		}
		if err == nil || second.Up() {
			t.Errorf("seed %d: Restart after Close = %v, node up %v; want an error and the node down", seed, err, second.Up())
		}
	})
}

// TestPartitionDuringDials: a partition made while dials are in flight
// still cuts every connection across it. The nodes of one LAN segment all
// dial each other at the same virtual instant, and Partition runs at that
// instant, concurrently with the dials (synctest's clock stands still, but
// the goroutines run in parallel). A dial that has passed its route check
// must not leave a connection across the cut: mocknet keeps a connection
// working after its link is removed, so a survivor would carry traffic
// across the partition.
//
// The race is narrow: the test tries up to 100 networks and stops at the
// first that fails.
func TestPartitionDuringDials(t *testing.T) {
	const tries, size = 100, 16
	for seed := uint64(1); seed <= tries && !t.Failed(); seed++ {
		synctest.Test(t, func(t *testing.T) {
			n := New(Config{Seed: seed})
			defer settle(t, n)
			nodes := addOnSegment(t, n, n.Segment("lan"), size)
			time.Sleep(announceDelay) // the announcements arrive: everyone dials
			a, b := nodes[:size/2], nodes[size/2:]
			n.Partition(a, b)
			time.Sleep(5 * time.Second)
			if x := crossLinks(a, b); len(x) > 0 {
				t.Errorf("seed %d: 5 s after a partition made during dials, connections cross it: %v", seed, x)
			}
		})
	}
}

// TestCut: Cut closes the connections between two nodes and refuses new
// ones, in both directions, while each still reaches a third; Heal lets
// them connect again.
func TestCut(t *testing.T) {
	const seed = 36
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes, err := addTree(ctx, n, 3)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		a, b, c := nodes[0], nodes[1], nodes[2]
		dial := func(from, to *Node) error {
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return from.Peer().Host().Connect(dctx, to.AddrInfo())
		}
		for _, p := range [][2]*Node{{a, b}, {a, c}, {b, c}} {
			if err := dial(p[0], p[1]); err != nil {
				t.Fatalf("seed %d: node %d → %d before the cut: %v", seed, p[0].Index, p[1].Index, err)
			}
		}
		n.Cut(a, b)
		for _, p := range [][2]*Node{{a, b}, {b, a}} {
			if cn := connectedness(p[0], p[1]); cn != network.NotConnected {
				t.Errorf("seed %d: node %d sees node %d %v after the cut", seed, p[0].Index, p[1].Index, cn)
			}
			if err := dial(p[0], p[1]); err == nil {
				t.Errorf("seed %d: node %d dialled node %d across the cut", seed, p[0].Index, p[1].Index)
			}
		}
		for _, p := range [][2]*Node{{a, c}, {c, a}, {b, c}, {c, b}} {
			if err := dial(p[0], p[1]); err != nil {
				t.Errorf("seed %d: node %d → %d, not cut: %v", seed, p[0].Index, p[1].Index, err)
			}
		}
		n.Heal()
		for _, p := range [][2]*Node{{a, b}, {b, a}} {
			if err := dial(p[0], p[1]); err != nil {
				t.Errorf("seed %d: node %d → %d after Heal: %v", seed, p[0].Index, p[1].Index, err)
			}
		}
	})
}
