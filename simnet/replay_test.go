package simnet

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/exopeer/exopeer/cell"
)

// cellRun is what one run of replayScenario leaves on its nodes, by node
// index.
type cellRun struct {
	Codes   []string   // the invite codes, in order
	Rosters [][]byte   // each node's roster, encoded
	Chains  [][][]byte // each member's chain: every entry block's bytes, in chain order
}

// replayStep is the virtual time between two roster changes of
// replayScenario: far more than any of its steps takes.
const replayStep = 10 * time.Second

// replayScenario runs a cell's life in a bubble of its own: node 0 creates
// a cell and invites nodes 1, 2 and 3, which join one after the other; each
// member in turn appends two entries, and every node holds them before the
// next member appends; node 0 removes node 3 (a new epoch); node 1 appends
// once more.
//
// synctest makes time virtual, not scheduling deterministic: a node may
// start before or after its first connection is up (and a join that finds
// no admin connected tries again 1 s later), and gossip spreads entries in
// a few tens of milliseconds more or less. So that the bytes depend on the
// seed alone, every roster change (rosters hold times, to the second) is
// made at a fixed point of virtual time, replayStep apart, once what it
// needs is in place (the joiner connected to the admin, the members
// converged); and every append waits for the previous ones to be
// everywhere, so that its parents are the same in every run.
func replayScenario(t *testing.T, seed uint64) cellRun {
	t.Helper()
	var run cellRun
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		began := time.Now()
		step := 0
		next := func(what string) {
			t.Helper()
			step++
			at := began.Add(time.Duration(step) * replayStep)
			if late := time.Since(at); late > 0 {
				t.Fatalf("seed %d: %s %v behind its schedule", seed, what, late)
			}
			time.Sleep(time.Until(at))
		}
		n := New(Config{Seed: seed})
		defer settle(t, n)
		admin := addNode(t, ctx, n, NodeConfig{})
		next("create")
		if _, err := admin.Peer().Cell().Create(ctx, "replay", "admin"); err != nil {
			t.Fatalf("seed %d: Create: %v", seed, err)
		}
		nodes := []*Node{admin}
		for i := 1; i <= 3; i++ {
			nd := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
			if _, ok := waitUntil(time.Minute, 10*time.Millisecond, func() bool { return lists(nd, admin) && lists(admin, nd) }); !ok {
				t.Fatalf("seed %d: node %d and the admin not connected after a minute", seed, i)
			}
			next(fmt.Sprintf("join of node %d", i))
			code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
			if err != nil {
				t.Fatalf("seed %d: Invite: %v", seed, err)
			}
			run.Codes = append(run.Codes, code.String())
			if _, err = nd.Peer().Cell().Join(ctx, code.String(), fmt.Sprintf("node-%d", i)); err != nil {
				t.Fatalf("seed %d: node %d: Join: %v", seed, i, err)
			}
			nodes = append(nodes, nd)
		}
		waitAlive(t, nodes, time.Minute)
		length := 0
		for _, nd := range nodes {
			appendN(t, nd, fmt.Sprintf("from node %d", nd.Index), 2, 0)
			length += 2
			awaitLength(t, nodes, length, time.Minute)
		}
		stay, gone := nodes[:3], nodes[3]
		next("removal")
		r, err := admin.Peer().Cell().Remove(ctx, gone.ID, false)
		if err != nil {
			t.Fatalf("seed %d: Remove: %v", seed, err)
		}
		if _, ok := waitUntil(time.Minute, 10*time.Millisecond, func() bool {
			for _, nd := range stay {
				if nd.Peer().Cell().Roster().Version != r.Version {
					return false
				}
			}
			return removed(gone)
		}); !ok {
			t.Fatalf("seed %d: roster version %d not on every member, or node 3 not told of its removal, after a minute", seed, r.Version)
		}
		appendN(t, nodes[1], "after the removal", 1, 0)
		awaitLength(t, stay, length+1, time.Minute)
		for _, nd := range nodes {
			run.Rosters = append(run.Rosters, nd.Peer().Cell().Roster().Encode())
			if nd == gone {
				continue // its chain is closed to it: Log refuses
			}
			var blocks [][]byte
			for _, e := range chainLog(t, nd) {
				b, err := nd.Peer().Blocks().Get(ctx, e.CID)
				if err != nil {
					t.Fatalf("seed %d: node %d: entry %s: %v", seed, nd.Index, e.CID, err)
				}
				blocks = append(blocks, b.RawData())
			}
			run.Chains = append(run.Chains, blocks)
		}
	})
	return run
}

// TestSeedReplaysCell: two runs of one cell scenario with one seed leave
// byte-identical rosters and chains on every node (the cell key, the epoch
// secrets and their grants, the invite codes, the entries' nonces all come
// from the seed; the times are virtual), and another seed other ones. The
// removed node's chain is not compared: it can no longer read it.
func TestSeedReplaysCell(t *testing.T) {
	const seed = 61
	start := time.Now()
	first := replayScenario(t, seed)
	second := replayScenario(t, seed)
	other := replayScenario(t, seed+1)
	t.Logf("three runs in %v", time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		return
	}
	if len(first.Rosters) != 4 || len(first.Chains) != 3 || len(first.Chains[0]) != 9 {
		t.Fatalf("seed %d: %d rosters, %d chains, the first of %d entries; want 4, 3 and 9", seed, len(first.Rosters), len(first.Chains), len(first.Chains[0]))
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("seed %d: two runs differ (-first +second):\n%s", seed, diff)
	}
	for i := range first.Codes {
		if first.Codes[i] == other.Codes[i] {
			t.Errorf("seeds %d and %d: invite %d has the same code %s", seed, seed+1, i, first.Codes[i])
		}
	}
	for i := range first.Rosters {
		if cmp.Equal(first.Rosters[i], other.Rosters[i]) {
			t.Errorf("seeds %d and %d: node %d has the same roster", seed, seed+1, i)
		}
	}
	for i := range first.Chains {
		for j := range min(len(first.Chains[i]), len(other.Chains[i])) {
			if cmp.Equal(first.Chains[i][j], other.Chains[i][j]) {
				t.Errorf("seeds %d and %d: node %d has the same entry %d", seed, seed+1, i, j)
			}
		}
	}
}
