package cell_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
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

// appRecorder is one node's App: it announces its own state in push/pull
// and keeps what it hears.
type appRecorder struct {
	state []byte

	mu     sync.Mutex
	msgs   []string
	merged []string
}

func (a *appRecorder) app() cell.App {
	return cell.App{
		Notify: func(msg []byte) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.msgs = append(a.msgs, string(msg))
		},
		LocalState: func() []byte { return a.state },
		MergeState: func(buf []byte) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.merged = append(a.merged, string(buf)) // a copy: buf is memberlist's
		},
	}
}

func (a *appRecorder) got(msg string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.msgs, msg)
}

func (a *appRecorder) gotState(state string) bool {
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

// TestAppRidesOnGossip makes a cell of two cell services on a mocknet (no
// DHT, no discovery: they are connected) and checks that a Broadcast of
// one member reaches the other's App.Notify, both ways, and that each
// member's App.LocalState reaches the other's App.MergeState.
func TestAppRidesOnGossip(t *testing.T) {
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
			svcs []*cell.Service
			apps []*appRecorder
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
			app := &appRecorder{state: fmt.Appendf(nil, "heads of node %d", i)}
			s, err := cell.New(cell.Options{
				Host: host, Key: key, Datastore: dssync.MutexWrap(ds.NewMapDatastore()),
				Config: cell.Config{Name: fmt.Sprintf("node-%d", i)},
				App:    app.app(),
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
			svcs, apps = append(svcs, s), append(apps, app)
		}
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		if err := mn.ConnectAllButSelf(); err != nil {
			t.Fatal(err)
		}

		// In no cell yet: nothing to broadcast to.
		if err := svcs[0].Broadcast([]byte("early")); !errors.Is(err, cell.ErrNoCell) {
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

		// The join's push/pull, or the next one, carries each node's state.
		for i, j := range []int{1, 0} {
			want := string(apps[j].state)
			if !waitFor(time.Minute, func() bool { return apps[i].gotState(want) }) {
				t.Errorf("node %d did not merge %q", i, want)
			}
		}

		// Broadcasts, both ways; a node does not hear its own.
		for i, j := range []int{1, 0} {
			msg := fmt.Sprintf("head from node %d", i)
			if err := svcs[i].Broadcast([]byte(msg)); err != nil {
				t.Fatalf("node %d: Broadcast: %v", i, err)
			}
			if !waitFor(30*time.Second, func() bool { return apps[j].got(msg) }) {
				t.Errorf("node %d did not get %q", j, msg)
			}
			if apps[i].got(msg) {
				t.Errorf("node %d heard its own broadcast", i)
			}
		}
		if err := svcs[0].Broadcast(make([]byte, gossip.MaxBroadcastSize+1)); err == nil {
			t.Error("an oversized broadcast was accepted")
		}
	})
}
