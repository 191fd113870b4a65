package simnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/gossip"
)

// addNode adds a node, failing the test on error.
func addNode(t *testing.T, ctx context.Context, n *Net, cfg NodeConfig) *Node {
	t.Helper()
	nd, err := n.AddNode(ctx, cfg)
	if err != nil {
		t.Fatalf("AddNode: %v", err)
	}
	return nd
}

// makeCell starts n nodes bootstrapped from the first, which creates a
// cell and invites the others; each joins with its code. It fails the test
// on any error.
func makeCell(t *testing.T, ctx context.Context, n *Net, size int) []*Node {
	t.Helper()
	admin := addNode(t, ctx, n, NodeConfig{})
	if _, err := admin.Peer().Cell().Create(ctx, "test", "admin"); err != nil {
		t.Fatalf("Create: %v", err)
	}
	nodes := []*Node{admin}
	for i := 1; i < size; i++ {
		nd := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatalf("Invite: %v", err)
		}
		jctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err = nd.Peer().Cell().Join(jctx, code.String(), fmt.Sprintf("node-%d", i))
		cancel()
		if err != nil {
			t.Fatalf("node %d Join: %v", i, err)
		}
		nodes = append(nodes, nd)
	}
	return nodes
}

// waitAlive waits until every node sees every other alive.
func waitAlive(t *testing.T, nodes []*Node, within time.Duration) {
	t.Helper()
	at := awaitViews(nodes, within, allAlive(nodes))
	for _, nd := range nodes {
		if _, ok := at[nd.ID]; !ok {
			t.Fatalf("after %v node %d sees %v, not all %d alive", within, nd.Index, view(nd), len(nodes))
		}
	}
}

func TestCellScenario(t *testing.T) {
	const seed = 7
	rep, err := RunInBubble(t, func(ctx context.Context, n *Net, o Options) (Report, error) {
		return ScenarioCell(ctx, n, CellOptions{Nodes: 50, Crash: 2})
	}, Config{Seed: seed}, Options{})
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	var sb strings.Builder
	_ = rep.WriteText(&sb)
	t.Logf("seed %d:\n%s", seed, sb.String())
	if rep.Succeeded != rep.Operations {
		t.Errorf("seed %d: %d of %d operations succeeded: %v", seed, rep.Succeeded, rep.Operations, rep.Failures)
	}
	for _, k := range []string{"join", "converge", "detect", "split", "heal"} {
		if rep.Timings[k].N == 0 {
			t.Errorf("seed %d: no %s timings", seed, k)
		}
	}
}

func TestCellRemovalRotatesAndRejects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: 3})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 3)
		waitAlive(t, nodes, time.Minute)
		admin, stay, gone := nodes[0], nodes[1], nodes[2]

		old := gone.Peer().Cell().Keys()
		r, err := admin.Peer().Cell().Remove(ctx, gone.ID, false)
		if err != nil {
			t.Fatalf("Remove: %v", err)
		}
		if r.Epoch != 2 || r.Has(gone.ID) {
			t.Fatalf("roster after removal: epoch %d, has removed node %v", r.Epoch, r.Has(gone.ID))
		}
		// The remaining member and the removed node learn of it.
		deadline := time.Now().Add(time.Minute)
		for stay.Peer().Cell().Roster().Version != r.Version || !removed(gone) {
			if time.Now().After(deadline) {
				t.Fatalf("after 1 min: member at version %d (want %d), removed node told: %v",
					stay.Peer().Cell().Roster().Version, r.Version, removed(gone))
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Gossip: the removed node is dead to the others, and stays so. A
		// member whose gossip restarted in the new epoch may never have
		// seen it: absent is not alive (StateAlive is the zero State).
		at := awaitViews([]*Node{admin, stay}, time.Minute, func(_ *Node, seen map[peer.ID]gossip.State) bool {
			st, ok := seen[gone.ID]
			return !ok || (st != gossip.StateAlive && st != gossip.StateSuspect)
		})
		if len(at) != 2 {
			t.Fatalf("removed node still alive in a member's view: %v / %v", view(admin), view(stay))
		}
		// Even with the old gossip key, a removed node that tries to join
		// the members' gossip is refused.
		rogue := rogueMembership(t, gone, r, old)
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := rogue.Join(jctx, []peer.ID{admin.ID, stay.ID}); err == nil {
			t.Error("removed node joined the gossip with the old key")
		}
		cancel()
		time.Sleep(10 * time.Second)
		if s, ok := view(admin)[gone.ID]; ok && s == gossip.StateAlive {
			t.Error("admin sees the removed node alive after its rogue join")
		}
		_ = rogue.Close()

		// Encryption: what the cell seals in epoch 2 the removed node cannot open.
		sealed, err := stay.Peer().Cell().Keys().Seal(2, []byte("after removal"), nil, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gone.Peer().Cell().Keys().Open(2, sealed, nil); !errors.Is(err, cell.ErrNoKey) {
			t.Errorf("removed node opening epoch 2: %v, want ErrNoKey", err)
		}
		if pt, err := admin.Peer().Cell().Keys().Open(2, sealed, nil); err != nil || string(pt) != "after removal" {
			t.Errorf("admin opening epoch 2: %q %v", pt, err)
		}
		waitAlive(t, []*Node{admin, stay}, time.Minute)
	})
}

func removed(nd *Node) bool {
	info, err := nd.Peer().Cell().Members()
	return err == nil && info.Removed
}

// rogueMembership is gossip as a node not on the roster would run it if it
// held the cell's old gossip key: the key of epoch 1.
func rogueMembership(t *testing.T, nd *Node, r *cell.Roster, keys *cell.Keys) *gossip.Membership {
	t.Helper()
	s1, ok := keys.Secret(1)
	if !ok {
		t.Fatal("removed node has no epoch 1 secret")
	}
	m, err := gossip.New(nd.Peer().Host(), gossip.Config{
		Tag:       r.Tag(),
		Key:       nd.key,
		Allow:     func(peer.ID) bool { return true },
		AppMeta:   func() []byte { return make([]byte, 16) },
		GossipKey: s1.GossipKey(r.Cell),
	})
	if err != nil {
		t.Fatalf("gossip.New: %v", err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatalf("gossip Start: %v", err)
	}
	return m
}

func TestStrangerCannotJoinGossip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: 4})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 3)
		waitAlive(t, nodes, time.Minute)
		stranger := addNode(t, ctx, n, NodeConfig{Bootstrap: nodes[:1]})
		// The worst case: it even knows the current gossip key.
		rogue := rogueMembership(t, stranger, nodes[0].Peer().Cell().Roster(), nodes[0].Peer().Cell().Keys())
		defer rogue.Close()
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := rogue.Join(jctx, []peer.ID{nodes[0].ID, nodes[1].ID}); err == nil {
			t.Error("a node not on the roster joined the gossip")
		}
		time.Sleep(20 * time.Second)
		for _, nd := range nodes {
			if s, ok := view(nd)[stranger.ID]; ok {
				t.Errorf("node %d lists the stranger as %v", nd.Index, s)
			}
		}
	})
}

func TestInviteOnLANSegment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: 5})
		defer settle(t, n)
		seg := n.Segment("home")
		admin := addNode(t, ctx, n, NodeConfig{Segment: seg})
		joiner := addNode(t, ctx, n, NodeConfig{Segment: seg})
		inviteAndJoin(t, ctx, admin, joiner)
	})
}

func TestInviteOverDHTOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: 6})
		defer settle(t, n)
		// A small DHT; the admin and the joiner bootstrap from different
		// nodes and share nothing else.
		boot := addNode(t, ctx, n, NodeConfig{})
		others := []*Node{boot}
		for range 6 {
			nd := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{boot}})
			others = append(others, nd)
		}
		admin := addNode(t, ctx, n, NodeConfig{Bootstrap: others[1:2]})
		joiner := addNode(t, ctx, n, NodeConfig{Bootstrap: others[5:6]})
		time.Sleep(30 * time.Second) // routing tables fill
		// Routing-table upkeep may have connected the two as DHT peers:
		// cut that, so that they meet through the nameplate's rendezvous.
		_ = joiner.Peer().Host().Network().ClosePeer(admin.ID)
		inviteAndJoin(t, ctx, admin, joiner)
	})
}

// inviteAndJoin makes admin create a cell and invite joiner, which joins;
// then both see each other alive.
func inviteAndJoin(t *testing.T, ctx context.Context, admin, joiner *Node) {
	t.Helper()
	if _, err := admin.Peer().Cell().Create(ctx, "home", "admin"); err != nil {
		t.Fatalf("Create: %v", err)
	}
	code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
	if err != nil {
		t.Fatalf("Invite: %v", err)
	}
	start := time.Now()
	jctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	r, err := joiner.Peer().Cell().Join(jctx, code.String(), "joiner")
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	t.Logf("joined in %v of virtual time", time.Since(start))
	if !r.Has(joiner.ID) || !r.Has(admin.ID) || r.Version != 2 {
		t.Fatalf("roster version %d: has joiner %v, admin %v", r.Version, r.Has(joiner.ID), r.Has(admin.ID))
	}
	waitAlive(t, []*Node{admin, joiner}, time.Minute)
}

func TestJoinFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: 8})
		defer settle(t, n)
		admin := addNode(t, ctx, n, NodeConfig{})
		joiner := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		ac, jc := admin.Peer().Cell(), joiner.Peer().Cell()
		if _, err := ac.Create(ctx, "home", "admin"); err != nil {
			t.Fatal(err)
		}
		join := func(code string) error {
			jctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, err := jc.Join(jctx, code, "joiner")
			return err
		}
		if err := join("12-not-a-code"); !errors.Is(err, cell.ErrBadCode) {
			t.Errorf("malformed code: %v, want ErrBadCode", err)
		}
		// Wrong words: counted; after three the invite is void, even for
		// the right code.
		code, _, err := ac.Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wrong := code
		wrong.Words[0] = (wrong.Words[0] + 1) % 2048
		for i := range 3 {
			if err := join(wrong.String()); !errors.Is(err, cell.ErrWrongCode) {
				t.Fatalf("wrong code, try %d: %v, want ErrWrongCode", i+1, err)
			}
		}
		if err := join(code.String()); !errors.Is(err, cell.ErrInviteExhausted) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("right code after 3 failures: %v, want ErrInviteExhausted or no inviter", err)
		}
		// Expired.
		code, _, err = ac.Invite(cell.InviteOptions{TTL: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if err := join(code.String()); !errors.Is(err, cell.ErrInviteExpired) && !strings.Contains(fmt.Sprint(err), "no inviter") {
			t.Errorf("expired code: %v, want ErrInviteExpired or no inviter", err)
		}
		// The node goes on: a fresh code works.
		code, _, err = ac.Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := join(code.String()); err != nil {
			t.Fatalf("good code after failures: %v", err)
		}
		// Joining again is refused on the joiner's side.
		if err := join(code.String()); !errors.Is(err, cell.ErrAlreadyInCell) {
			t.Errorf("second join: %v, want ErrAlreadyInCell", err)
		}
	})
}

// A member that is down while another is removed (a new key epoch) comes
// back after the old gossip key is gone: it pulls the new roster from a
// member and gossips again.
func TestMemberAwayDuringRotationCatchesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: 10})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 4)
		waitAlive(t, nodes, time.Minute)
		admin, away, gone := nodes[0], nodes[2], nodes[3]
		if err := n.Crash(away); err != nil {
			t.Fatal(err)
		}
		r, err := admin.Peer().Cell().Remove(ctx, gone.ID, false)
		if err != nil {
			t.Fatalf("Remove: %v", err)
		}
		time.Sleep(5 * time.Minute) // the old key's grace is long over
		if err := n.Restart(ctx, away); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Minute)
		for away.Peer().Cell().Roster().Version != r.Version {
			if time.Now().After(deadline) {
				t.Fatalf("after 3 min the returning member holds roster version %d, want %d",
					away.Peer().Cell().Roster().Version, r.Version)
			}
			time.Sleep(time.Second)
		}
		waitAlive(t, []*Node{admin, nodes[1], away}, 2*time.Minute)
	})
}

// TestRemovedNodeStartsAnotherCell: a node told of its removal can create
// a cell of its own at once: its old gossip, still leaving when it is
// told, is waited for, not found holding the gossip protocols.
func TestRemovedNodeStartsAnotherCell(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: 5})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 2)
		waitAlive(t, nodes, time.Minute)
		admin, gone := nodes[0], nodes[1]
		if _, err := admin.Peer().Cell().Remove(ctx, gone.ID, false); err != nil {
			t.Fatalf("Remove: %v", err)
		}
		deadline := time.Now().Add(time.Minute)
		for !removed(gone) {
			if time.Now().After(deadline) {
				t.Fatal("after 1 min the removed node was not told")
			}
			time.Sleep(10 * time.Millisecond)
		}
		r, err := gone.Peer().Cell().Create(ctx, "own", "me")
		if err != nil {
			t.Fatalf("Create right after removal: %v", err)
		}
		if !r.Has(gone.ID) || gone.Peer().Cell().Gossip() == nil {
			t.Fatalf("after Create: member %v, gossip %v", r.Has(gone.ID), gone.Peer().Cell().Gossip() != nil)
		}
	})
}
