package cell_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/gossip"
)

// rider is one node's rider on a topic (a gossip.StateHandler): it
// announces its own state in push/pull and keeps what it hears.
type rider struct {
	state []byte

	mu     sync.Mutex
	msgs   []string
	merged []string
}

func (a *rider) HandleMessage(msg []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.msgs = append(a.msgs, string(msg))
}

func (a *rider) LocalState() []byte { return a.state }

func (a *rider) MergeState(buf []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.merged = append(a.merged, string(buf)) // a copy: buf is memberlist's
}

func (a *rider) got(msg string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.msgs, msg)
}

func (a *rider) states() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.merged)
}

func (a *rider) gotState(state string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.merged, state)
}

// waitFor polls cond every 100 ms of virtual time, for at most d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestTopicsRideOnGossip makes a cell of two cell services on a mocknet (no
// DHT, no discovery: they are connected), each with riders on two topics
// ("heads" and "other"), and checks that a Broadcast of one member on a
// topic reaches the other's rider of that topic only, both ways, that each
// member's state on a topic reaches the other's rider of that topic, and
// that a topic registered while gossip runs rides too.
func TestTopicsRideOnGossip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		mn := mocknet.New()
		defer func() {
			if err := mn.Close(); err != nil {
				t.Errorf("mocknet Close: %v", err)
			}
			time.Sleep(time.Minute) // let the hosts' timers run out
		}()
		var (
			svcs   []*cell.Service
			apps   []*rider // on "heads"
			others []*rider // on "other"
		)
		for i := range 2 {
			h := sha256.Sum256(fmt.Appendf(nil, "cell app test key %d", i))
			key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(h[:]))
			if err != nil {
				t.Fatal(err)
			}
			host, err := mn.AddPeer(key, ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/4777", i+1)))
			if err != nil {
				t.Fatal(err)
			}
			app := &rider{state: fmt.Appendf(nil, "heads of node %d", i)}
			other := &rider{state: fmt.Appendf(nil, "other state of node %d", i)}
			topics := gossip.NewTopics()
			if err := topics.Register("heads", app, 100); err != nil {
				t.Fatal(err)
			}
			if err := topics.Register("other", other, 0); err != nil {
				t.Fatal(err)
			}
			s, err := cell.New(cell.Options{
				Host: host, Key: key, Datastore: dssync.MutexWrap(ds.NewMapDatastore()),
				Config: cell.Config{Name: fmt.Sprintf("node-%d", i)},
				Topics: topics,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := s.Close(); err != nil {
					t.Errorf("node %d: Close: %v", i, err)
				}
			}()
			svcs, apps, others = append(svcs, s), append(apps, app), append(others, other)
		}
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		if err := mn.ConnectAllButSelf(); err != nil {
			t.Fatal(err)
		}

		// In no cell yet: nothing to broadcast to.
		if err := svcs[0].Broadcast("heads", []byte("early")); !errors.Is(err, cell.ErrNoCell) {
			t.Errorf("Broadcast in no cell: %v, want ErrNoCell", err)
		}

		if _, err := svcs[0].Create(ctx, "home", "node-0"); err != nil {
			t.Fatalf("Create: %v", err)
		}
		code, _, err := svcs[0].Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatalf("Invite: %v", err)
		}
		jctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if _, err := svcs[1].Join(jctx, code.String(), "node-1"); err != nil {
			t.Fatalf("Join: %v", err)
		}
		alive := func(s *cell.Service) bool {
			m := s.Gossip()
			if m == nil {
				return false
			}
			n := 0
			for _, g := range m.Members() {
				if g.State == gossip.StateAlive {
					n++
				}
			}
			return n == 2
		}
		if !waitFor(time.Minute, func() bool { return alive(svcs[0]) && alive(svcs[1]) }) {
			t.Fatal("the two members do not see each other alive after a minute")
		}

		// The join's push/pull, or the next one, carries each node's state
		// on each topic to that topic's rider.
		for i, j := range []int{1, 0} {
			for _, r := range []struct{ mine, theirs *rider }{{apps[i], apps[j]}, {others[i], others[j]}} {
				want := string(r.theirs.state)
				if !waitFor(time.Minute, func() bool { return r.mine.gotState(want) }) {
					t.Errorf("node %d did not merge %q", i, want)
				}
			}
		}
		for i := range 2 {
			heads, other := apps[i].states(), others[i].states()
			if slices.ContainsFunc(heads, func(s string) bool { return strings.HasPrefix(s, "other") }) ||
				slices.ContainsFunc(other, func(s string) bool { return strings.HasPrefix(s, "heads") }) {
				t.Errorf("node %d: a rider merged another topic's state: %q, %q", i, heads, other)
			}
		}

		// Broadcasts, both ways; a node does not hear its own, and the
		// rider of the other topic hears nothing.
		for i, j := range []int{1, 0} {
			msg := fmt.Sprintf("head from node %d", i)
			if err := svcs[i].Broadcast("heads", []byte(msg)); err != nil {
				t.Fatalf("node %d: Broadcast: %v", i, err)
			}
			if !waitFor(30*time.Second, func() bool { return apps[j].got(msg) }) {
				t.Errorf("node %d did not get %q", j, msg)
			}
			if apps[i].got(msg) {
				t.Errorf("node %d heard its own broadcast", i)
			}
			if others[j].got(msg) {
				t.Errorf("node %d's rider of another topic got %q", j, msg)
			}
		}
		if err := svcs[0].Broadcast("heads", make([]byte, 101)); !errors.Is(err, gossip.ErrTooLarge) {
			t.Errorf("a broadcast over the topic's limit: %v, want gossip.ErrTooLarge", err)
		}
		if err := svcs[0].Broadcast("nobody", []byte("x")); !errors.Is(err, gossip.ErrUnknownTopic) {
			t.Errorf("a broadcast on a topic not registered: %v, want gossip.ErrUnknownTopic", err)
		}

		// A topic registered while the cell's gossip runs rides at once.
		late := &rider{}
		if err := svcs[1].Topics().Register("late", late, 0); err != nil {
			t.Fatal(err)
		}
		if err := svcs[0].Topics().Register("late", &rider{}, 0); err != nil {
			t.Fatal(err)
		}
		if err := svcs[0].Broadcast("late", []byte("late news")); err != nil {
			t.Fatal(err)
		}
		if !waitFor(30*time.Second, func() bool { return late.got("late news") }) {
			t.Error("the rider registered late did not get its message")
		}
		if st := svcs[1].Topics().Stats(); st.Topics["heads"].MessagesIn != 1 || st.Topics["late"].MessagesIn != 1 || st.Topics["other"].MessagesIn != 0 {
			t.Errorf("node 1's topic counters: %+v", st)
		}
	})
}
