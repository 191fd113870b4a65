package gossip

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// realCell is n hosts on loopback, each knowing the others' addresses.
type realCell struct {
	seed  uint64
	hosts []host.Host
	ids   []peer.ID
}

func newRealCell(t *testing.T, seed uint64, n int) *realCell {
	t.Helper()
	c := &realCell{seed: seed}
	for i := range n {
		h := newRealHost(t, testKey(seed, i))
		c.hosts, c.ids = append(c.hosts, h), append(c.ids, h.ID())
	}
	for _, a := range c.hosts {
		for _, b := range c.hosts {
			if a != b {
				introduce(a, b)
			}
		}
	}
	return c
}

func (c *realCell) config(i int, r *roster) Config {
	return testConfig(c.seed, testKey(c.seed, i), r, fastTiming())
}

// TestConverge: three members on loopback TCP find each other from one
// join each, see one another's metadata, updates and broadcasts, and see a
// member that leaves as Left.
func TestConverge(t *testing.T) {
	seed := testSeed(t, 1)
	c := newRealCell(t, seed, 3)
	r := newRoster(c.ids...)
	var (
		ms   []*Membership
		mu   sync.Mutex
		msgs = make(map[int][]string)
	)
	for i, h := range c.hosts {
		cfg := c.config(i, r)
		cfg.Topics = NewTopics()
		if err := cfg.Topics.Register(testTopic, HandlerFunc(func(b []byte) {
			mu.Lock()
			msgs[i] = append(msgs[i], string(b))
			mu.Unlock()
		}), 0); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, startMembership(t, h, cfg))
	}
	events, cancel := ms[0].Subscribe()
	defer cancel()
	for i := 1; i < 3; i++ {
		if n, err := ms[i].Join(t.Context(), []peer.ID{c.ids[0]}); err != nil || n != 1 {
			t.Fatalf("node %d: Join = %d, %v; want 1, nil", i, n, err)
		}
	}
	if d, ok := waitUntil(10*time.Second, 20*time.Millisecond, func() bool {
		return sees(ms[0], c.ids...) && sees(ms[1], c.ids...) && sees(ms[2], c.ids...)
	}); !ok {
		t.Fatalf("after %v: members do not all see 3 alive: %v / %v / %v", d, ms[0].Members(), ms[1].Members(), ms[2].Members())
	} else {
		t.Logf("converged in %v", d)
	}
	for _, mb := range ms[1].Members() {
		if string(mb.Meta) != "roster v1" {
			t.Errorf("node 1 sees %s with meta %q, want %q", mb.ID, mb.Meta, "roster v1")
		}
	}

	// Metadata updates reach the others as EventUpdated.
	ms[2].cfg.AppMeta = func() []byte { return []byte("roster v2") }
	if err := ms[2].UpdateMeta(t.Context()); err != nil {
		t.Errorf("UpdateMeta: %v", err)
	}
	waitEvent(t, events, 5*time.Second, func(ev Event) bool {
		return ev.Type == EventUpdated && ev.Member.ID == c.ids[2] && string(ev.Member.Meta) == "roster v2"
	})

	// A broadcast reaches every other member, not the sender.
	if err := ms[1].Broadcast(testTopic, []byte("hello cell")); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	if _, ok := waitUntil(5*time.Second, 20*time.Millisecond, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(msgs[0]) > 0 && len(msgs[2]) > 0
	}); !ok {
		t.Errorf("broadcast not received by all: %v", msgs)
	}
	mu.Lock()
	if len(msgs[1]) != 0 {
		t.Errorf("sender received its own broadcast: %v", msgs[1])
	}
	mu.Unlock()

	// A member that leaves is Left for the others, not Failed.
	if err := ms[2].Leave(t.Context()); err != nil {
		t.Errorf("Leave: %v", err)
	}
	if err := ms[2].Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	waitEvent(t, events, 5*time.Second, func(ev Event) bool {
		return ev.Member.ID == c.ids[2] && (ev.Type == EventLeft || ev.Type == EventFailed)
	})
	if st, _ := stateOf(ms[0], c.ids[2]); st != StateLeft {
		t.Errorf("node 0 sees the node that left as %v, want left", st)
	}
	if _, err := ms[2].Join(t.Context(), c.ids[:1]); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Close: %v, want ErrClosed", err)
	}
}

// waitEvent reads events until one satisfies ok, failing after limit.
func waitEvent(t *testing.T, events <-chan Event, limit time.Duration, ok func(Event) bool) Event {
	t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case ev := <-events:
			if ok(ev) {
				return ev
			}
			seen = append(seen, ev.Type.String()+" "+ev.Member.ID.ShortString())
		case <-timer.C:
			t.Fatalf("after %v: no such event; saw %v", limit, seen)
			return Event{}
		}
	}
}

// TestNotAllowed: a node off the roster gets nowhere, in either direction
// and even through a member that (wrongly) allows it.
//
// Nodes 0 and 1 are members; node 2 is not on node 0's roster. Node 1's
// roster is stale and still lists node 2.
func TestNotAllowed(t *testing.T) {
	seed := testSeed(t, 2)
	c := newRealCell(t, seed, 3)
	strict := newRoster(c.ids[0], c.ids[1])
	stale := newRoster(c.ids...)
	m0 := startMembership(t, c.hosts[0], c.config(0, strict))
	m1 := startMembership(t, c.hosts[1], c.config(1, stale))
	m2 := startMembership(t, c.hosts[2], c.config(2, stale))

	// Outsider → member: the member resets its streams.
	if n, err := m2.Join(t.Context(), c.ids[:1]); err == nil || n != 0 {
		t.Errorf("outsider's Join of a member = %d, %v; want 0 and an error", n, err)
	}
	// Member → outsider: the member's transport refuses to send.
	if n, err := m0.Join(t.Context(), c.ids[2:]); !errors.Is(err, ErrNotAllowed) || n != 0 {
		t.Errorf("member's Join of the outsider = %d, %v; want 0, ErrNotAllowed", n, err)
	}
	if s := m0.Stats(); s.RejectedInbound == 0 {
		t.Errorf("member's stats %+v: no inbound rejection counted", s)
	}

	// Through the stale member: node 2 joins node 1, then node 0 joins
	// node 1, whose state holds node 2 alive. Node 0 refuses that merge,
	// and gossip about node 2 never makes node 0 admit it.
	if n, err := m2.Join(t.Context(), c.ids[1:2]); err != nil || n != 1 {
		t.Fatalf("outsider's Join of the stale member = %d, %v; want 1, nil", n, err)
	}
	if _, ok := waitUntil(5*time.Second, 20*time.Millisecond, func() bool { return sees(m1, c.ids[1], c.ids[2]) }); !ok {
		t.Fatalf("stale member does not see the outsider: %v", m1.Members())
	}
	if _, err := m0.Join(t.Context(), c.ids[1:2]); err == nil {
		t.Errorf("member's Join of a cell holding the outsider succeeded, want refused")
	}
	// Node 1 learnt of node 0 from its join attempt, and gossip does the
	// rest: 0 and 1 see each other; 0 never sees 2 for 3 push/pull rounds.
	if _, ok := waitUntil(5*time.Second, 20*time.Millisecond, func() bool { return sees(m0, c.ids[0], c.ids[1]) }); !ok {
		t.Fatalf("member does not see the other member: %v", m0.Members())
	}
	waitUntil(3*time.Second, 20*time.Millisecond, func() bool {
		_, seen := stateOf(m0, c.ids[2])
		return seen
	})
	if st, seen := stateOf(m0, c.ids[2]); seen {
		t.Errorf("member sees the outsider as %v", st)
	}
	if s := m0.Stats(); s.RejectedNodes == 0 {
		t.Errorf("member's stats %+v: no node rejection counted", s)
	}
}

// TestBadCredentials: nodes on the roster but with the wrong gossip key,
// a metadata signature by another key, or metadata that CheckMeta refuses,
// cannot join.
func TestBadCredentials(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(c *realCell, cfg *Config)
		// isolated: the bad node cannot even read the good one. Otherwise
		// it can: a member answers a join with its state before it checks
		// the joiner's, so the bad node's own Join succeeds, and the good
		// node's probes answer it; what matters is that the good node
		// never admits it.
		isolated bool
	}{
		{"other gossip key", func(c *realCell, cfg *Config) { cfg.GossipKey = gossipKey(c.seed, 99) }, true},
		{"forged metadata", nil, false}, // signed by another key: see below
		{"metadata refused", func(c *realCell, cfg *Config) { cfg.AppMeta = func() []byte { return []byte("evil") } }, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seed := testSeed(t, uint64(10+i))
			c := newRealCell(t, seed, 2)
			r := newRoster(c.ids...)
			good := c.config(0, r)
			good.CheckMeta = func(_ peer.ID, app []byte) error {
				if bytes.Equal(app, []byte("evil")) {
					return errors.New("evil metadata")
				}
				return nil
			}
			m0 := startMembership(t, c.hosts[0], good)
			bad := c.config(1, r)
			bad.CheckMeta = good.CheckMeta
			if tt.breakIt != nil {
				tt.breakIt(c, &bad)
			}
			m1, err := New(c.hosts[1], bad)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { m1.Close() })
			if tt.breakIt == nil {
				m1.cfg.Key = testKey(seed, 7) // New checked the key; sign with another from now on
			}
			if err := m1.Start(t.Context()); err != nil {
				t.Fatalf("Start: %v", err)
			}
			if n, err := m1.Join(t.Context(), c.ids[:1]); tt.isolated && (err == nil || n != 0) {
				t.Errorf("bad node's Join = %d, %v; want 0 and an error", n, err)
			}
			if n, err := m0.Join(t.Context(), c.ids[1:]); err == nil || n != 0 {
				t.Errorf("Join of the bad node = %d, %v; want 0 and an error", n, err)
			}
			waitUntil(time.Second, 20*time.Millisecond, func() bool {
				_, seen := stateOf(m0, c.ids[1])
				return seen
			})
			if st, seen := stateOf(m0, c.ids[1]); seen {
				t.Errorf("good node sees the bad node as %v", st)
			}
			if st, seen := stateOf(m1, c.ids[0]); tt.isolated && seen {
				t.Errorf("bad node sees the good node as %v", st)
			}
			if s := m0.Stats(); !tt.isolated && s.RejectedNodes == 0 {
				t.Errorf("good node's stats %+v: no node rejection counted", s)
			}
		})
	}
}

// TestCloseStopsGoroutines: after Close, what is left of memberlist's
// goroutines ends within a probe round or so. It logs what remained right
// after Close.
func TestCloseStopsGoroutines(t *testing.T) {
	seed := testSeed(t, 3)
	c := newRealCell(t, seed, 3)
	r := newRoster(c.ids...)
	var ms []*Membership
	for i, h := range c.hosts {
		m, err := New(h, c.config(i, r))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	for _, m := range ms[1:] {
		if _, err := m.Join(t.Context(), c.ids[:1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := waitUntil(10*time.Second, 20*time.Millisecond, func() bool { return sees(ms[0], c.ids...) }); !ok {
		t.Fatal("no convergence")
	}
	// Node 2's host dies first, so that the others have probes of it in
	// flight (waiting for acks that never come) when they close.
	if err := c.hosts[2].Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * fastTiming().ProbeInterval / 2)
	start := time.Now()
	for _, m := range ms {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	t.Logf("closing 3 members took %v", time.Since(start))
	t.Logf("memberlist goroutines right after Close: %v", memberlistGoroutines())
	d, ok := waitUntil(5*time.Second, 10*time.Millisecond, func() bool { return len(memberlistGoroutines()) == 0 })
	if !ok {
		t.Errorf("memberlist goroutines still running %v after Close: %v", d, memberlistGoroutines())
	} else {
		t.Logf("the last memberlist goroutine ended %v after Close", d)
	}
}

// memberlistGoroutines returns the top memberlist function of every
// goroutine running memberlist code, or this package's.
func memberlistGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		for line := range strings.SplitSeq(g, "\n") {
			if strings.Contains(line, "hashicorp/memberlist.") || strings.Contains(line, "exopeer/gossip.(") {
				out = append(out, strings.TrimSpace(line))
				break
			}
		}
	}
	return out
}

// TestProtect: the connections to members are protected from the
// connection manager while they are allowed; a member removed from the
// roster and Refreshed away loses the protection and is declared failed;
// Close removes every protection.
func TestProtect(t *testing.T) {
	seed := testSeed(t, 4)
	c := newRealCell(t, seed, 3)
	var (
		rs []*roster
		ms []*Membership
	)
	for i, h := range c.hosts {
		r := newRoster(c.ids...)
		rs = append(rs, r)
		ms = append(ms, startMembership(t, h, c.config(i, r)))
	}
	for _, m := range ms[1:] {
		if _, err := m.Join(t.Context(), c.ids[:1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := waitUntil(10*time.Second, 20*time.Millisecond, func() bool {
		return sees(ms[0], c.ids...) && sees(ms[1], c.ids...) && sees(ms[2], c.ids...)
	}); !ok {
		t.Fatal("no convergence")
	}
	cm, tag := c.hosts[0].ConnManager(), ms[0].protectTag
	for _, id := range c.ids[1:] {
		if !cm.IsProtected(id, tag) {
			t.Errorf("member %s not protected", id.ShortString())
		}
	}

	// Node 2 leaves the roster of nodes 0 and 1.
	events, cancel := ms[0].Subscribe()
	defer cancel()
	for _, i := range []int{0, 1} {
		rs[i].remove(c.ids[2])
		ms[i].Refresh()
	}
	if cm.IsProtected(c.ids[2], tag) || !cm.IsProtected(c.ids[1], tag) {
		t.Errorf("after Refresh: protected %v and %v, want false and true", cm.IsProtected(c.ids[2], tag), cm.IsProtected(c.ids[1], tag))
	}
	waitEvent(t, events, 10*time.Second, func(ev Event) bool { return ev.Type == EventFailed && ev.Member.ID == c.ids[2] })
	if _, ok := waitUntil(10*time.Second, 20*time.Millisecond, func() bool {
		st, _ := stateOf(ms[1], c.ids[2])
		return st == StateDead
	}); !ok {
		st, _ := stateOf(ms[1], c.ids[2])
		t.Errorf("node 1 sees the removed node as %v, want dead", st)
	}

	if err := ms[0].Close(); err != nil {
		t.Fatal(err)
	}
	if cm.IsProtected(c.ids[1], tag) {
		t.Error("still protected after Close")
	}
}
