package gossip

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// The tests in this file run a cell on a libp2p mocknet inside a synctest
// bubble, with the default Timing: virtual time, so that minutes of
// protocol time take a fraction of a second.

// simCell is n members on a fully linked mocknet, each with its own
// roster (all of them at first), with seeded link latencies.
type simCell struct {
	t       *testing.T
	seed    uint64
	mn      mocknet.Mocknet
	hosts   []host.Host
	ids     []peer.ID
	rosters []*roster
	ms      []*Membership
	events  []*recorder

	mu   sync.Mutex
	msgs map[int][]string // broadcasts received, by member
}

// recorder keeps every event of one member's subscription.
type recorder struct {
	mu     sync.Mutex
	events []Event
	at     []time.Time
	done   chan struct{}
}

func record(m *Membership) *recorder {
	ch, _ := m.Subscribe() // closed by Close
	r := &recorder{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ev := range ch {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.at = append(r.at, time.Now())
			r.mu.Unlock()
		}
	}()
	return r
}

// first returns the time of the first event of type typ about id.
func (r *recorder) first(typ EventType, id peer.ID) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ev := range r.events {
		if ev.Type == typ && ev.Member.ID == id {
			return r.at[i], true
		}
	}
	return time.Time{}, false
}

func (r *recorder) count(typ EventType) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// newSimCell builds and starts the cell; each member joins member 0 and
// one earlier member chosen by the seed. Everything is closed at cleanup,
// which must run inside the bubble. Each member records the messages of
// testTopic in msgs.
func newSimCell(t *testing.T, seed uint64, n int) *simCell {
	t.Helper()
	return newSimCellWith(t, seed, n, nil)
}

// newSimCellWith is newSimCell with the topics of each member given by
// topics (nil: testTopic, recorded in msgs).
func newSimCellWith(t *testing.T, seed uint64, n int, topics func(i int) *Topics) *simCell {
	t.Helper()
	c := &simCell{t: t, seed: seed, mn: mocknet.New(), msgs: make(map[int][]string)}
	for i := range n {
		addr := ma.StringCast(fmt.Sprintf("/ip4/10.0.%d.%d/tcp/4001", i/250, i%250+1))
		h, err := c.mn.AddPeer(testKey(seed, i), addr)
		if err != nil {
			t.Fatal(err)
		}
		c.hosts, c.ids = append(c.hosts, h), append(c.ids, h.ID())
	}
	lat := newRand(seed, "latency")
	for i := range c.ids {
		for j := i + 1; j < len(c.ids); j++ {
			l, err := c.mn.LinkPeers(c.ids[i], c.ids[j])
			if err != nil {
				t.Fatal(err)
			}
			l.SetOptions(mocknet.LinkOptions{Latency: time.Duration(5+lat.IntN(45)) * time.Millisecond})
		}
	}
	t.Cleanup(c.close)
	for i, h := range c.hosts {
		r := newRoster(c.ids...)
		c.rosters = append(c.rosters, r)
		cfg := testConfig(seed, testKey(seed, i), r, Timing{})
		if topics != nil {
			cfg.Topics = topics(i)
		} else {
			cfg.Topics = NewTopics()
			if err := cfg.Topics.Register(testTopic, HandlerFunc(func(b []byte) {
				c.mu.Lock()
				c.msgs[i] = append(c.msgs[i], string(b))
				c.mu.Unlock()
			}), 0); err != nil {
				t.Fatal(err)
			}
		}
		m := startMembership(t, h, cfg)
		c.ms = append(c.ms, m)
		c.events = append(c.events, record(m))
	}
	pick := newRand(seed, "joins")
	for i := 1; i < n; i++ {
		targets := []peer.ID{c.ids[0], c.ids[pick.IntN(i)]}
		if _, err := c.ms[i].Join(t.Context(), targets); err != nil {
			t.Fatalf("node %d: Join: %v", i, err)
		}
	}
	return c
}

// close closes every member (done already by startMembership's cleanup,
// which runs first), then the hosts, then waits a virtual minute so that
// memberlist's leftover timers fire inside the bubble.
func (c *simCell) close() {
	for _, m := range c.ms {
		m.Close()
	}
	for _, r := range c.events {
		<-r.done
	}
	if err := c.mn.Close(); err != nil {
		c.t.Errorf("closing mocknet: %v", err)
	}
	time.Sleep(time.Minute)
}

// converged reports whether every member in idx sees exactly those
// members alive.
func (c *simCell) converged(idx ...int) bool {
	var ids []peer.ID
	for _, i := range idx {
		ids = append(ids, c.ids[i])
	}
	for _, i := range idx {
		if !sees(c.ms[i], ids...) {
			return false
		}
	}
	return true
}

func all(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

func without(idx []int, x int) []int {
	return slices.DeleteFunc(slices.Clone(idx), func(i int) bool { return i == x })
}

// awaitConvergence waits for the whole cell to converge, failing the test
// after limit.
func (c *simCell) awaitConvergence(limit time.Duration, idx ...int) time.Duration {
	c.t.Helper()
	d, ok := waitUntil(limit, 100*time.Millisecond, func() bool { return c.converged(idx...) })
	if !ok {
		for _, i := range idx {
			c.t.Logf("node %d sees %v", i, c.ms[i].Members())
		}
		c.t.Fatalf("no convergence of %d members in %v", len(idx), limit)
	}
	return d
}

// crash takes node i off the network at once, as a crashed process: no
// leave message, no route to it, its connections gone.
func (c *simCell) crash(i int) {
	for j := range c.hosts {
		if j != i {
			_ = c.mn.UnlinkPeers(c.ids[i], c.ids[j])
			_ = c.mn.DisconnectPeers(c.ids[i], c.ids[j])
		}
	}
}

// failedAt waits until every member other than x had an EventFailed for
// x, and returns how long after start each saw it.
func (c *simCell) failedAt(x int, start time.Time, limit time.Duration) []time.Duration {
	c.t.Helper()
	others := without(all(len(c.ms)), x)
	waitUntil(limit, 100*time.Millisecond, func() bool {
		for _, i := range others {
			if _, ok := c.events[i].first(EventFailed, c.ids[x]); !ok {
				return false
			}
		}
		return true
	})
	var ds []time.Duration
	for _, i := range others {
		at, ok := c.events[i].first(EventFailed, c.ids[x])
		if !ok {
			st, _ := stateOf(c.ms[i], c.ids[x])
			c.t.Errorf("node %d: no Failed event for node %d within %v (it sees it %v)", i, x, limit, st)
			continue
		}
		if st, _ := stateOf(c.ms[i], c.ids[x]); st != StateDead {
			c.t.Errorf("node %d sees node %d as %v, want dead", i, x, st)
		}
		ds = append(ds, at.Sub(start))
	}
	slices.Sort(ds)
	return ds
}

func TestSimConverge(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 21)
		c := newSimCell(t, seed, 10)
		d := c.awaitConvergence(2*time.Minute, all(10)...)
		t.Logf("10 members converged in %v of virtual time", d)
		for i := range c.ms {
			if n := c.events[i].count(EventFailed); n != 0 {
				t.Errorf("node %d: %d Failed events in a healthy cell", i, n)
			}
		}
	})
}

func TestSimCrash(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 22)
		c := newSimCell(t, seed, 10)
		c.awaitConvergence(2*time.Minute, all(10)...)
		x := 1 + newRand(seed, "crash").IntN(9)
		start := time.Now()
		c.crash(x)
		ds := c.failedAt(x, start, 3*time.Minute)
		t.Logf("node %d crashed; the other 9 saw it failed after (virtual) %v", x, ds)
		c.awaitConvergence(time.Minute, without(all(10), x)...)
	})
}

func TestSimRefresh(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 23)
		c := newSimCell(t, seed, 10)
		c.awaitConvergence(2*time.Minute, all(10)...)
		x := 1 + newRand(seed, "remove").IntN(9)
		start := time.Now()
		for i, m := range c.ms {
			if i != x { // the removed node's own roster is stale
				c.rosters[i].remove(c.ids[x])
				m.Refresh()
			}
		}
		ds := c.failedAt(x, start, 3*time.Minute)
		t.Logf("node %d removed from the roster; the other 9 saw it failed after (virtual) %v", x, ds)
		for i, m := range c.ms {
			m.seqs.mu.Lock()
			_, kept := m.seqs.seqs[c.ids[x]]
			m.seqs.mu.Unlock()
			if i != x && kept {
				t.Errorf("node %d still keeps the removed node's metadata sequence number", i)
			}
		}
		c.awaitConvergence(time.Minute, without(all(10), x)...)
		// It stays out: a minute later nobody has seen it again.
		time.Sleep(time.Minute)
		for i := range c.ms {
			if i == x {
				continue
			}
			if _, ok := c.events[i].first(EventRecovered, c.ids[x]); ok {
				t.Errorf("node %d saw the removed node recover", i)
			}
		}
	})
}

func TestSimKeyRotation(t *testing.T) {
	tests := []struct {
		name string
		// rotate switches every member to the new key.
		rotate func(c *simCell, key []byte, rng *rand.Rand) error
	}{
		{"all at once", func(c *simCell, key []byte, _ *rand.Rand) error {
			for _, m := range c.ms {
				if err := m.SetGossipKey(key); err != nil {
					return err
				}
			}
			return nil
		}},
		{"install then switch over 20 s", func(c *simCell, key []byte, rng *rand.Rand) error {
			for _, m := range c.ms {
				if err := m.AddGossipKey(key); err != nil {
					return err
				}
			}
			for _, i := range rng.Perm(len(c.ms)) {
				time.Sleep(time.Duration(rng.IntN(4000)) * time.Millisecond)
				if err := c.ms[i].SetGossipKey(key); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for k, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				seed := testSeed(t, uint64(24+k))
				c := newSimCell(t, seed, 10)
				c.awaitConvergence(2*time.Minute, all(10)...)
				if err := tt.rotate(c, gossipKey(seed, 1), newRand(seed, "rotation")); err != nil {
					t.Fatalf("rotation: %v", err)
				}
				// Past the grace period the old key is gone everywhere.
				time.Sleep(DefaultTiming().KeyGrace + 10*time.Second)
				c.awaitConvergence(time.Minute, all(10)...)
				for i := range c.ms {
					if n := c.events[i].count(EventFailed); n != 0 {
						t.Errorf("node %d: %d Failed events during the rotation", i, n)
					}
					if keys := c.ms[i].keyring.GetKeys(); len(keys) != 1 {
						t.Errorf("node %d holds %d keys after the grace period, want 1", i, len(keys))
					}
				}
			})
		})
	}
}

// TestSimBroadcast: a broadcast reaches every other member of a 10-member
// cell exactly once, not the sender.
func TestSimBroadcast(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 27)
		c := newSimCell(t, seed, 10)
		c.awaitConvergence(2*time.Minute, all(10)...)
		from := newRand(seed, "sender").IntN(10)
		for k := range 5 {
			if err := c.ms[from].Broadcast(testTopic, fmt.Appendf(nil, "heads %d", k)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(30 * time.Second)
		for i := range c.ms {
			c.mu.Lock()
			got := slices.Clone(c.msgs[i])
			c.mu.Unlock()
			slices.Sort(got)
			want := []string{"heads 0", "heads 1", "heads 2", "heads 3", "heads 4"}
			if i == from {
				want = nil
			}
			if !slices.Equal(got, want) {
				t.Errorf("node %d received %q, want %q", i, got, want)
			}
		}
	})
}
