package simnet

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
)

// chainSeeds is how many seeds TestChainScenario runs: a few by default,
// to keep `go test ./simnet` short; -chain.seeds=50 (or
// EXOPEER_CHAIN_SEEDS=50) for a long run.
var chainSeeds = flag.Int("chain.seeds", 0, "seeds TestChainScenario runs (default 3, or $EXOPEER_CHAIN_SEEDS)")

func chainSeedCount(t *testing.T) int {
	if *chainSeeds > 0 {
		return *chainSeeds
	}
	if s := os.Getenv("EXOPEER_CHAIN_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("EXOPEER_CHAIN_SEEDS=%q is not a positive number", s)
		}
		return n
	}
	return 3
}

// TestChainScenario: 5 nodes append 1,000 entries each under partitions
// and crashes; after the heal, every node holds the same chain, with every
// successful append once and nothing else.
func TestChainScenario(t *testing.T) {
	for seed := uint64(1); seed <= uint64(chainSeedCount(t)); seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			rep, err := RunInBubble(t, func(ctx context.Context, n *Net, _ Options) (Report, error) {
				return ScenarioChain(ctx, n, ChainOptions{})
			}, Config{Seed: seed}, Options{})
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			c := rep.Chain
			t.Logf("seed %d: %d of %d appends, %d partitions, %d crashes, converged %.0f ms after the heal, %.0f s virtual, %.1f s wall, peak heap %.0f MiB",
				seed, c.Appended, c.Attempted, c.Partitions, c.Crashes, c.ConvergedMs, rep.VirtualTime, rep.WallTime, float64(rep.PeakHeap)/(1<<20))
			if rep.Succeeded != rep.Operations || rep.Operations != 5 {
				var sb strings.Builder
				_ = rep.WriteText(&sb)
				t.Errorf("seed %d: %d of %d nodes hold the whole chain:\n%s", seed, rep.Succeeded, rep.Operations, sb.String())
			}
			if c.Appended == 0 || c.Appended == c.Attempted && c.Crashes > 0 {
				t.Errorf("seed %d: %d of %d appends succeeded with %d crashes", seed, c.Appended, c.Attempted, c.Crashes)
			}
			if c.Rejected > 0 || c.Banned > 0 {
				t.Errorf("seed %d: honest nodes rejected %d entries and cut a member off %d times: %v", seed, c.Rejected, c.Banned, c.Bans)
			}
		})
	}
}

// TestChainPlanDeterministic: the seed alone fixes the chain scenario's
// workload (appends and faults), and two seeds differ.
func TestChainPlanDeterministic(t *testing.T) {
	rnd := func(seed uint64) func(string) *rand.Rand {
		return (&Net{cfg: Config{Seed: seed}}).Rand
	}
	o := ChainOptions{}
	a, b, c := planChain(rnd(5), o), planChain(rnd(5), o), planChain(rnd(6), o)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("seed 5: two plans differ (-first +second):\n%s", diff)
	}
	if a.digest() != b.digest() || a.digest() == c.digest() {
		t.Errorf("digests: seed 5 %s and %s, seed 6 %s", a.digest(), b.digest(), c.digest())
	}
	o = o.withDefaults()
	for i, steps := range a.Appends {
		total := 0
		for _, s := range steps {
			total += s.Count
		}
		if total != o.Entries {
			t.Errorf("seed 5: node %d appends %d entries, want %d", i, total, o.Entries)
		}
	}
	kinds := map[bool]int{}
	for _, f := range a.Faults {
		kinds[len(f.Crash) > 0]++
	}
	if len(a.Faults) != o.Faults || kinds[true] == 0 || kinds[false] == 0 {
		t.Errorf("seed 5: %d faults (%d crashes), want %d with both kinds", len(a.Faults), kinds[true], o.Faults)
	}
}

// chainLog returns nd's whole chain, in chain order.
func chainLog(t *testing.T, nd *Node) []replica.Entry {
	t.Helper()
	es, err := nd.Peer().Chain().Log(context.Background(), chain.Pos{}, 1<<30)
	if err != nil {
		t.Fatalf("seed %d: node %d: Log: %v", nd.net.Seed(), nd.Index, err)
	}
	return es
}

func cids(es []replica.Entry) []cid.Cid {
	out := make([]cid.Cid, len(es))
	for i, e := range es {
		out[i] = e.CID
	}
	return out
}

func chainStatus(t *testing.T, nd *Node) replica.Status {
	t.Helper()
	st, err := nd.Peer().Chain().Status(context.Background())
	if err != nil {
		t.Fatalf("seed %d: node %d: Status: %v", nd.net.Seed(), nd.Index, err)
	}
	return st
}

// awaitLength waits until each of nodes holds length entries, and fails
// the test if that takes more than limit.
func awaitLength(t *testing.T, nodes []*Node, length int, limit time.Duration) time.Duration {
	t.Helper()
	took, ok := waitUntil(limit, 10*time.Millisecond, func() bool {
		for _, nd := range nodes {
			if chainStatus(t, nd).Length != length {
				return false
			}
		}
		return true
	})
	if !ok {
		for _, nd := range nodes {
			t.Logf("node %d holds %d entries", nd.Index, chainStatus(t, nd).Length)
		}
		t.Fatalf("seed %d: after %v not every node holds %d entries", nodes[0].net.Seed(), limit, length)
	}
	return took
}

// appendN makes nd append count entries named prefix 0, prefix 1, ...,
// gap apart, and fails the test on error.
func appendN(t *testing.T, nd *Node, prefix string, count int, gap time.Duration) []replica.Entry {
	t.Helper()
	var out []replica.Entry
	for i := range count {
		e, err := nd.Peer().Chain().Append(context.Background(), fmt.Appendf(nil, "%s %d", prefix, i))
		if err != nil {
			t.Errorf("seed %d: node %d: Append: %v", nd.net.Seed(), nd.Index, err)
			return out
		}
		out = append(out, e)
		time.Sleep(gap)
	}
	return out
}

// TestChainCatchUp10k: a node that was down while another appended 10,000
// entries, 50 ms away, holds them all less than 5 s (virtual) after its
// first pull began: one round trip, ~1 MiB frames.
func TestChainCatchUp10k(t *testing.T) {
	const seed, entries = 21, 10_000
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed, Latency: func(int, int) time.Duration { return 50 * time.Millisecond }})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 2)
		waitAlive(t, nodes, time.Minute)
		a, b := nodes[0], nodes[1]
		if err := n.Crash(b); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < entries; i += 100 {
			batch := make([][]byte, 100)
			for j := range batch {
				batch[j] = fmt.Appendf(nil, "a %d", i+j)
			}
			if _, err := a.Peer().Chain().AppendMany(ctx, batch); err != nil {
				t.Fatalf("seed %d: AppendMany: %v", seed, err)
			}
		}
		if err := n.Restart(ctx, b); err != nil {
			t.Fatal(err)
		}
		var pullAt time.Time
		took, ok := waitUntil(time.Minute, 10*time.Millisecond, func() bool {
			st := chainStatus(t, b)
			if pullAt.IsZero() && st.Sync.Pulls > 0 {
				pullAt = time.Now()
			}
			return st.Length == entries
		})
		if !ok || pullAt.IsZero() {
			t.Fatalf("seed %d: after %v B holds %d of %d entries (first pull at %v)", seed, took, chainStatus(t, b).Length, entries, pullAt)
		}
		st := chainStatus(t, b)
		catchUp := time.Since(pullAt)
		t.Logf("seed %d: B holds %d entries %v after its first pull began, %v after its restart; %d pulls, %d entries received",
			seed, entries, catchUp, took, st.Sync.Pulls, st.Sync.Received)
		if catchUp >= 5*time.Second {
			t.Errorf("seed %d: catching up took %v of virtual time, want < 5 s", seed, catchUp)
		}
		if !slices.EqualFunc(cids(chainLog(t, a)), cids(chainLog(t, b)), cid.Cid.Equals) {
			t.Errorf("seed %d: A and B hold different chains", seed)
		}
	})
}

// TestChainOfflineAppend: a node cut off from its cell appends; so do the
// others. After the heal all hold one chain in one order, where the cut
// off node's entries sit among the others' by (clock, CID), and its next
// entry follows both branches.
func TestChainOfflineAppend(t *testing.T) {
	const seed = 22
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 3)
		waitAlive(t, nodes, time.Minute)
		a, b, c := nodes[0], nodes[1], nodes[2]
		for _, nd := range nodes {
			appendN(t, nd, fmt.Sprintf("before %d", nd.Index), 5, 0)
		}
		awaitLength(t, nodes, 15, time.Minute)

		n.Partition([]*Node{a, b}, []*Node{c})
		var wg sync.WaitGroup
		offline := make([][]replica.Entry, len(nodes))
		for i, nd := range nodes {
			wg.Go(func() { offline[i] = appendN(t, nd, fmt.Sprintf("during %d", nd.Index), 20, 10*time.Millisecond) })
		}
		wg.Wait()
		time.Sleep(5 * time.Second)
		if got := chainStatus(t, c).Length; got != 35 {
			t.Errorf("seed %d: the cut off node holds %d entries, want its own 35", seed, got)
		}
		if got := chainStatus(t, a).Length; got != 55 {
			t.Errorf("seed %d: node 0 holds %d entries during the partition, want 55", seed, got)
		}
		n.Heal()
		took := awaitLength(t, nodes, 75, time.Minute)
		t.Logf("seed %d: converged %v after the heal", seed, took)

		log := chainLog(t, a)
		for _, nd := range nodes[1:] {
			if !slices.EqualFunc(cids(log), cids(chainLog(t, nd)), cid.Cid.Equals) {
				t.Errorf("seed %d: node %d's chain differs from node 0's", seed, nd.Index)
			}
		}
		first, last, others := -1, -1, 0
		for i, e := range log {
			if i > 0 && log[i-1].Pos.Compare(e.Pos) >= 0 {
				t.Errorf("seed %d: entries %d and %d out of (clock, CID) order", seed, i-1, i)
			}
			if strings.HasPrefix(string(e.Payload), "during 2") {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		for _, e := range log[first : last+1] {
			if e.Author != c.ID {
				others++
			}
		}
		if others == 0 {
			t.Errorf("seed %d: the cut off node's entries %d..%d are not interleaved with the others'", seed, first, last)
		}
		t.Logf("seed %d: the cut off node's 20 entries span places %d..%d of 75, among %d of the others'", seed, first, last, others)

		// C's next entry follows both branches: last in chain order.
		next := appendN(t, c, "after", 1, 0)
		if len(next) == 1 {
			awaitLength(t, nodes, 76, time.Minute)
			for _, nd := range nodes {
				l := chainLog(t, nd)
				if !l[len(l)-1].CID.Equals(next[0].CID) {
					t.Errorf("seed %d: node %d: the entry after the heal is not last", seed, nd.Index)
				}
			}
			if len(next[0].Parents) < 2 {
				t.Errorf("seed %d: the entry after the heal has %d parents, want the heads of both sides", seed, len(next[0].Parents))
			}
		}
	})
}

// TestChainRemovedMember: what a member wrote before its removal stays in
// every node's chain, readable, and a node that joins after the removal
// syncs it too; the removed node can append no more, and a member does not
// take entries from it.
func TestChainRemovedMember(t *testing.T) {
	const seed = 23
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 3)
		waitAlive(t, nodes, time.Minute)
		admin, stay, gone := nodes[0], nodes[1], nodes[2]
		theirs := appendN(t, gone, "gone", 10, 10*time.Millisecond)
		appendN(t, admin, "admin", 5, 0)
		appendN(t, stay, "stay", 5, 0)
		awaitLength(t, nodes, 20, time.Minute)

		r, err := admin.Peer().Cell().Remove(ctx, gone.ID, false)
		if err != nil {
			t.Fatalf("seed %d: Remove: %v", seed, err)
		}
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			return stay.Peer().Cell().Roster().Version == r.Version && removed(gone)
		}); !ok {
			t.Fatalf("seed %d: after 1 min the removal has not reached everyone", seed)
		}
		if _, err := gone.Peer().Chain().Append(ctx, []byte("after removal")); !errors.Is(err, replica.ErrRemoved) {
			t.Errorf("seed %d: the removed node's Append: %v, want ErrRemoved", seed, err)
		}
		after := appendN(t, admin, "epoch 2", 5, 0)
		if len(after) > 0 && after[0].Epoch != r.Epoch {
			t.Errorf("seed %d: an entry after the removal is in epoch %d, want %d", seed, after[0].Epoch, r.Epoch)
		}
		members := []*Node{admin, stay}
		awaitLength(t, members, 25, time.Minute)

		// A node that joins after the removal gets the whole chain, and
		// reads the removed member's entries with the history's secrets.
		late := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		jctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err = late.Peer().Cell().Join(jctx, code.String(), "late")
		cancel()
		if err != nil {
			t.Fatalf("seed %d: late Join: %v", seed, err)
		}
		members = append(members, late)
		took := awaitLength(t, members, 25, time.Minute)
		t.Logf("seed %d: the late node holds the chain %v after joining", seed, took)
		want := cids(chainLog(t, admin))
		for _, nd := range members {
			log := chainLog(t, nd)
			if !slices.EqualFunc(want, cids(log), cid.Cid.Equals) {
				t.Errorf("seed %d: node %d's chain differs from the admin's", seed, nd.Index)
			}
			got := map[string]bool{}
			for _, e := range log {
				if e.Author == gone.ID {
					got[string(e.Payload)] = true
				}
			}
			for _, e := range theirs {
				if !got[string(e.Payload)] {
					t.Errorf("seed %d: node %d lacks the removed member's %q", seed, nd.Index, e.Payload)
				}
			}
		}

		// The removed node still holds the secret of epoch 1: it signs an
		// entry in that epoch, after its removal, and answers a member's
		// pull with it. The member does not pull from a non-member.
		forged := forgeEntry(t, gone, theirs[len(theirs)-1], 1)
		gone.Peer().Host().SetStreamHandler(replica.ProtocolSync, func(s network.Stream) {
			defer s.Close()
			drainRequest(s)
			w := bufio.NewWriter(s)
			w.Write(chain.AppendFrame(nil, chain.FrameEntries, chain.EntriesBody([][]byte{forged.Bytes()})))
			w.Write(chain.AppendFrame(nil, chain.FrameDone, chain.DoneBody(uint64(len(theirs)+1))))
			w.Flush()
		})
		if err := stay.Peer().Chain().Pull(ctx, gone.ID); err == nil {
			t.Errorf("seed %d: a member pulled from the removed node", seed)
		}
		time.Sleep(10 * time.Second)
		for _, nd := range members {
			if got := chainStatus(t, nd).Length; got != 25 {
				t.Errorf("seed %d: node %d holds %d entries, want 25 (the removed node's late entry got in)", seed, nd.Index, got)
			}
		}
	})
}

// forgeEntry has nd sign, after its removal, an entry in epoch that
// follows prev, with the epoch's secret it still holds.
func forgeEntry(t *testing.T, nd *Node, prev replica.Entry, epoch uint64) *chain.Entry {
	t.Helper()
	keys := nd.Peer().Cell().Keys()
	secret, ok := keys.Secret(epoch)
	if !ok {
		t.Fatalf("the removed node holds no secret of epoch %d", epoch)
	}
	d := chain.Draft{Cell: nd.Peer().Cell().Roster().Cell, Seq: prev.Seq + 1, Clock: prev.Clock + 1, Parents: []cid.Cid{prev.CID}, Epoch: epoch}
	e, err := chain.Write(d, nd.key, secret[:], []byte("written after the removal"), rand.NewChaCha8([32]byte{1}))
	if err != nil {
		t.Fatalf("chain.Write: %v", err)
	}
	return e
}

// drainRequest reads a sync request off s: its length, then its bytes.
func drainRequest(s network.Stream) {
	br := bufio.NewReader(s)
	if n, err := binary.ReadUvarint(br); err == nil {
		_, _ = io.CopyN(io.Discard, br, int64(n))
	}
}

// TestChainMalformedPeer: a member that answers sync pulls with garbage is
// cut off by the members that pull from it; they keep appending and
// syncing with each other.
func TestChainMalformedPeer(t *testing.T) {
	cases := []struct {
		name   string
		answer func(w *bufio.Writer)
	}{
		{"oversized frame", func(w *bufio.Writer) {
			w.WriteByte(chain.FrameEntries)
			w.Write(binary.AppendUvarint(nil, chain.MaxFrame+1))
			w.Write(make([]byte, 64<<10))
		}},
		{"bad bytes", func(w *bufio.Writer) { w.WriteString("this is not a frame at all") }},
		{"bad entry", func(w *bufio.Writer) {
			w.Write(chain.AppendFrame(nil, chain.FrameEntries, chain.EntriesBody([][]byte{[]byte("not dag-cbor")})))
		}},
	}
	for i, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			seed := uint64(30 + i)
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				n := New(Config{Seed: seed})
				defer settle(t, n)
				nodes := makeCell(t, ctx, n, 3)
				waitAlive(t, nodes, time.Minute)
				a, b, bad := nodes[0], nodes[1], nodes[2]
				bad.Peer().Host().SetStreamHandler(replica.ProtocolSync, func(s network.Stream) {
					defer s.Close()
					drainRequest(s)
					w := bufio.NewWriter(s)
					tc.answer(w)
					w.Flush()
				})
				// Its announcements say it holds entries the others lack:
				// they pull from it.
				appendN(t, bad, "bad", 5, 0)
				if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
					return chainStatus(t, a).Sync.Banned > 0 && chainStatus(t, b).Sync.Banned > 0
				}); !ok {
					t.Fatalf("seed %d: after 1 min bans: node 0 %d, node 1 %d", seed, chainStatus(t, a).Sync.Banned, chainStatus(t, b).Sync.Banned)
				}
				for _, nd := range []*Node{a, b} {
					st := chainStatus(t, nd).Sync
					if st.LastBanned != bad.ID {
						t.Errorf("seed %d: node %d banned %s, want the bad node", seed, nd.Index, st.LastBanned)
					}
					t.Logf("seed %d: node %d cut the bad node off: %s", seed, nd.Index, st.LastBannedBecause)
				}
				// The good ones go on.
				appendN(t, a, "a", 10, 10*time.Millisecond)
				appendN(t, b, "b", 10, 10*time.Millisecond)
				took := awaitLength(t, []*Node{a, b}, 20, time.Minute)
				t.Logf("seed %d: the good nodes synced %v after their last append", seed, took)
				if !slices.EqualFunc(cids(chainLog(t, a)), cids(chainLog(t, b)), cid.Cid.Equals) {
					t.Errorf("seed %d: the good nodes' chains differ", seed)
				}
				for _, nd := range []*Node{a, b} {
					if st := chainStatus(t, nd).Sync; st.Rejected > 1 {
						t.Logf("seed %d: node %d rejected %d entries", seed, nd.Index, st.Rejected)
					}
				}
			})
		})
	}
}
