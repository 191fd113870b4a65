package simnet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/chain/replica"
)

// removeNow removes id at once, without first taking what it holds.
func removeNow(ctx context.Context, admin *Node, id peer.ID) error {
	_, err := admin.Peer().Cell().Remove(ctx, id, true)
	return err
}

// authored returns the sequence numbers of author's entries nd holds.
func authored(t *testing.T, nd *Node, author peer.ID) []uint64 {
	t.Helper()
	var out []uint64
	for _, e := range chainLog(t, nd) {
		if e.Author == author {
			out = append(out, e.Seq)
		}
	}
	slices.Sort(out)
	return out
}

// TestChainRemovedMemberCutOff: a removed member that keeps writing in its
// old epoch (it has not heard of its removal) gets none of it into an
// up-to-date member's chain, even through a lagging member that synced with
// it before it heard of the removal; that lagging member drops those
// entries once it learns of the removal, writes its own entries that built
// on them again, and ends with the same chain.
func TestChainRemovedMemberCutOff(t *testing.T) {
	const seed = 41
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 4)
		waitAlive(t, nodes, time.Minute)
		admin, stay, lag, gone := nodes[0], nodes[1], nodes[2], nodes[3]
		appendN(t, gone, "before", 5, 10*time.Millisecond)
		appendN(t, admin, "admin", 2, 0)
		awaitLength(t, nodes, 7, time.Minute)

		// The lagging member and the removed one are cut off together
		// while the admin removes it: neither hears of it.
		n.Partition([]*Node{admin, stay}, []*Node{lag, gone})
		if err := removeNow(ctx, admin, gone.ID); err != nil {
			t.Fatalf("seed %d: Remove: %v", seed, err)
		}
		late := appendN(t, gone, "after", 5, 10*time.Millisecond)
		if len(late) != 5 || late[0].Epoch != 1 {
			t.Fatalf("seed %d: the removed node wrote %d entries (epoch %v), want 5 in epoch 1", seed, len(late), late)
		}
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			return len(authored(t, lag, gone.ID)) == 10
		}); !ok {
			t.Fatalf("seed %d: the lagging member holds %v of the removed member's entries, want 10", seed, authored(t, lag, gone.ID))
		}
		// The lagging member writes on top of them: its entries name
		// entries past the cut-off as parents.
		mine := appendN(t, lag, "lag", 2, 0)
		appendN(t, stay, "epoch 2", 3, 0)
		n.Heal()

		// From the heal on, no up-to-date member ever holds an entry
		// past the cut-off, and the lagging member ends with the
		// members' chain.
		up := []*Node{admin, stay}
		converged := func() bool {
			for _, nd := range up {
				if got := authored(t, nd, gone.ID); len(got) != 5 {
					t.Fatalf("seed %d: node %d holds the removed member's entries %v, want 1 to 5", seed, nd.Index, got)
				}
			}
			want := cids(chainLog(t, admin))
			return len(want) == 12 && slices.EqualFunc(want, cids(chainLog(t, stay)), cid.Cid.Equals) &&
				slices.EqualFunc(want, cids(chainLog(t, lag)), cid.Cid.Equals)
		}
		if _, ok := waitUntil(3*time.Minute, 100*time.Millisecond, converged); !ok {
			t.Fatalf("seed %d: after 3 min: lagging member holds %v of the removed member's entries, lengths %d/%d/%d, want 12 everywhere",
				seed, authored(t, lag, gone.ID), chainStatus(t, admin).Length, chainStatus(t, stay).Length, chainStatus(t, lag).Length)
		}
		// And it stays so.
		for range 100 {
			time.Sleep(time.Second)
			converged()
		}
		if got := authored(t, lag, gone.ID); len(got) != 5 {
			t.Errorf("seed %d: the lagging member holds %v of the removed member's entries, want 1 to 5", seed, got)
		}
		// The entries did reach the up-to-date members, which refused
		// them (and never had one to drop); the lagging member dropped
		// the removed member's five and its own two.
		refused := uint64(0)
		for _, nd := range up {
			st := chainStatus(t, nd).Sync
			refused += st.PastCutoff
			if st.Dropped != 0 {
				t.Errorf("seed %d: node %d dropped %d entries: it held some past the cut-off", seed, nd.Index, st.Dropped)
			}
		}
		if refused == 0 {
			t.Errorf("seed %d: no up-to-date member was offered an entry past the cut-off: the test shows nothing", seed)
		}
		// Nor did they pull the same refused entries over and over
		// (29,085 times before pulls from such a member were hushed).
		if refused > 200 {
			t.Errorf("seed %d: up-to-date members were offered %d entries past the cut-off: a pull storm", seed, refused)
		}
		if st := chainStatus(t, lag).Sync; st.Dropped != 7 {
			t.Errorf("seed %d: the lagging member dropped %d entries, want 7", seed, st.Dropped)
		}
		t.Logf("seed %d: up-to-date members refused %d entries past the cut-off", seed, refused)
		// What the lagging member wrote on top of them was written again,
		// on what the cell keeps: nothing it acknowledged is lost.
		payloads := map[string]int{}
		for _, e := range chainLog(t, admin) {
			payloads[string(e.Payload)]++
		}
		for _, e := range mine {
			if payloads[string(e.Payload)] != 1 {
				t.Errorf("seed %d: the lagging member's %q is %d times in the chain, want once", seed, e.Payload, payloads[string(e.Payload)])
			}
		}
	})
}

// TestChainRemoveTakesLastAppends: with two nodes and no fault, an entry
// acknowledged just before the admin removes its author is in the admin's
// chain after the removal: the removal takes what the member holds first.
func TestChainRemoveTakesLastAppends(t *testing.T) {
	for i, gap := range []time.Duration{0, 150 * time.Millisecond, 300 * time.Millisecond} {
		seed := uint64(50 + i)
		t.Run(fmt.Sprint(gap), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				n := New(Config{Seed: seed})
				defer settle(t, n)
				nodes := makeCell(t, ctx, n, 2)
				waitAlive(t, nodes, time.Minute)
				admin, gone := nodes[0], nodes[1]
				appendN(t, gone, "synced", 3, 10*time.Millisecond)
				awaitLength(t, nodes, 3, time.Minute)
				last := appendN(t, gone, "last", 1, 0)
				time.Sleep(gap)
				if _, err := admin.Peer().Cell().Remove(ctx, gone.ID, false); err != nil {
					t.Fatalf("seed %d: Remove: %v", seed, err)
				}
				if got := authored(t, admin, gone.ID); len(got) != 4 || len(last) != 1 {
					t.Fatalf("seed %d: the admin holds %v of the removed member's entries, want 1 to 4", seed, got)
				}
				time.Sleep(time.Minute)
				if got := authored(t, admin, gone.ID); len(got) != 4 {
					t.Errorf("seed %d: a minute later the admin holds %v of the removed member's entries, want 1 to 4", seed, got)
				}
			})
		})
	}
}

// TestRemovedWhileAwayLearnsIt: a member unreachable when it is removed
// keeps appending while away; once it can reach the members again they
// answer its gossip and pulls with the roster that removed it: it stops
// taking appends and says why, and none of what it wrote away gets in.
func TestRemovedWhileAwayLearnsIt(t *testing.T) {
	const seed = 43
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 3)
		waitAlive(t, nodes, time.Minute)
		admin, stay, gone := nodes[0], nodes[1], nodes[2]
		appendN(t, gone, "before", 2, 10*time.Millisecond)
		awaitLength(t, nodes, 2, time.Minute)
		n.Partition([]*Node{admin, stay}, []*Node{gone})
		if err := removeNow(ctx, admin, gone.ID); err != nil {
			t.Fatalf("seed %d: Remove: %v", seed, err)
		}
		time.Sleep(10 * time.Second)
		if away := appendN(t, gone, "away", 3, 0); len(away) != 3 {
			t.Fatalf("seed %d: the away node took %d appends, want 3 (it does not know yet)", seed, len(away))
		}
		n.Heal()
		took, ok := waitUntil(3*time.Minute, 100*time.Millisecond, func() bool { return removed(gone) })
		if !ok {
			t.Fatalf("seed %d: after 3 min the removed node still believes it is a member", seed)
		}
		t.Logf("seed %d: the removed node learnt it %v after the heal", seed, took)
		_, err := gone.Peer().Chain().Append(ctx, []byte("refused"))
		if err == nil {
			t.Fatalf("seed %d: the removed node took an append", seed)
		}
		if !errors.Is(err, replica.ErrRemoved) {
			t.Errorf("seed %d: Append: %v, want ErrRemoved", seed, err)
		}
		if _, err := gone.Peer().Chain().Status(ctx); !errors.Is(err, replica.ErrRemoved) {
			t.Errorf("seed %d: chain status of the removed node: %v, want ErrRemoved", seed, err)
		}
		t.Logf("seed %d: the removed node says: %v", seed, err)
		if st, err := gone.Peer().Status(ctx); err != nil || st.Removed == "" {
			t.Errorf("seed %d: the removed node's status: %q, %v; want why it stopped", seed, st.Removed, err)
		}
		time.Sleep(30 * time.Second)
		for _, nd := range []*Node{admin, stay} {
			if got := authored(t, nd, gone.ID); len(got) != 2 {
				t.Errorf("seed %d: node %d holds %v of the removed member's entries, want 1 and 2", seed, nd.Index, got)
			}
		}
	})
}
