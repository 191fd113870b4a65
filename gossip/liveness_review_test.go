package gossip

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// TestSimLostNonMemberNotRedialed: a peer that Allow admits but that is
// not a member alive in this node's view (a roster device not running
// gossip, one that left or failed) is not redialled when its connection
// closes (by the connection manager, or by the peer itself), and no reach
// check is spent on it: only members alive in this node's view are
// checked (package documentation, "Liveness").
func TestSimLostNonMemberNotRedialed(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 61)
		c := newSimCell(t, seed, 3)
		c.awaitConvergence(2*time.Minute, all(3)...)
		time.Sleep(10 * time.Second)
		// An allowed device that runs no gossip.
		e, err := c.mn.AddPeer(testKey(seed, 9), ma.StringCast("/ip4/10.0.9.9/tcp/4001"))
		if err != nil {
			t.Fatal(err)
		}
		l, err := c.mn.LinkPeers(c.ids[0], e.ID())
		if err != nil {
			t.Fatal(err)
		}
		l.SetOptions(mocknet.LinkOptions{Latency: 20 * time.Millisecond})
		c.rosters[0].mu.Lock()
		c.rosters[0].ids[e.ID()] = true
		c.rosters[0].mu.Unlock()
		if _, err := c.mn.ConnectPeers(c.ids[0], e.ID()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		before := c.ms[0].Stats()
		if err := c.hosts[0].Network().ClosePeer(e.ID()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		st := c.ms[0].Stats()
		if got := c.hosts[0].Network().Connectedness(e.ID()); got != network.NotConnected {
			t.Errorf("seed %d: an allowed peer that is no member was redialled after its connection closed (%v)", seed, got)
		}
		if st.LostChecked != before.LostChecked {
			t.Errorf("seed %d: LostChecked %d → %d: the lost connection of a peer that is no member was checked (redial, reach requests)", seed, before.LostChecked, st.LostChecked)
		}
	})
}

// TestPickHelpersAllowedOnly: a member that Allow no longer admits (removed
// from the roster, still alive in memberlist's view until its suspicion
// times out) is not asked whether it reaches a lost member: its answer
// would count as a current member's.
func TestPickHelpersAllowedOnly(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 62)
		c := newSimCell(t, seed, 4)
		c.awaitConvergence(2*time.Minute, all(4)...)
		c.rosters[0].remove(c.ids[1])
		c.ms[0].Refresh()
		if st, _ := stateOf(c.ms[0], c.ids[1]); st != StateAlive {
			t.Fatalf("seed %d: the removed member is already %v in node 0's view", seed, st)
		}
		for range 10 {
			for _, h := range c.ms[0].pickHelpers(c.ids[3], 3) {
				if h == c.ids[1] {
					t.Fatalf("seed %d: node 0 picked the removed member as a reach helper", seed)
				}
			}
		}
	})
}

// TestSimReconnectedDuringCheckNotSuspected: a member that connects back
// to this node while the check of its lost connection runs (this node's
// redial failed: the member moved, its old address dead; the helpers lost
// it too and cannot dial it) is reachable, as a redial that succeeded
// shows, and is not suspected.
func TestSimReconnectedDuringCheckNotSuspected(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 63)
		c := newSimCell(t, seed, 5)
		c.awaitConvergence(2*time.Minute, all(5)...)
		time.Sleep(10 * time.Second)
		const a, x = 0, 1
		for _, h := range []int{2, 3, 4} {
			// The helpers' answers take a while to come back; they
			// cannot reach x.
			for _, l := range c.mn.LinksBetweenPeers(c.ids[a], c.ids[h]) {
				l.SetOptions(mocknet.LinkOptions{Latency: 80 * time.Millisecond})
			}
			c.cut(h, x)
		}
		time.Sleep(10 * time.Millisecond)
		before := c.ms[a].Stats()
		// x's old address is dead: a's redial fails at once; x comes
		// back from its new one.
		c.cut(a, x)
		time.Sleep(20 * time.Millisecond)
		c.relink(a, x)
		if _, err := c.mn.ConnectPeers(c.ids[x], c.ids[a]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		st := c.ms[a].Stats()
		t.Logf("seed %d: checked %d, undecided %d, reachable %d, suspected %d; connected %v", seed,
			st.LostChecked-before.LostChecked, st.LostUndecided-before.LostUndecided, st.LostReachable-before.LostReachable,
			st.SuspectedLost-before.SuspectedLost, c.hosts[a].Network().Connectedness(c.ids[x]))
		if st.LostChecked == before.LostChecked {
			t.Fatalf("seed %d: the lost connection was not checked", seed)
		}
		if n := st.SuspectedLost - before.SuspectedLost; n != 0 {
			t.Errorf("seed %d: node %d suspected node %d, connected again during the check", seed, a, x)
		}
	})
}
