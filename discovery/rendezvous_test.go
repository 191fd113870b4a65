package discovery

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// rendezvousNode returns a node whose service meets others through dht.
func rendezvousNode(t *testing.T, dht *fakeDHT, cfg Config) *node {
	t.Helper()
	h := newHost(t)
	svc, err := New(h, cfg, nil, dht.router(h), testLogger(h))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := svc.Close(); err != nil {
			t.Errorf("closing service: %v", err)
		}
	})
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return &node{h: h, svc: svc}
}

// longEpochs is testConfig with rendezvous epochs so long (about 42 days,
// aligned on the Unix epoch) that no test runs across a boundary.
func longEpochs() Config {
	cfg := testConfig()
	cfg.RendezvousEpoch = 1000 * time.Hour
	return cfg
}

func TestRendezvousMeetsOnlySameSecret(t *testing.T) {
	verifyNoLeaks(t)
	dht := newFakeDHT()
	cfg := longEpochs()
	a := rendezvousNode(t, dht, cfg)
	b := rendezvousNode(t, dht, cfg)
	c := rendezvousNode(t, dht, cfg)
	a.svc.Rendezvous([]byte("cell one"))
	b.svc.Rendezvous([]byte("cell one"))
	c.svc.Rendezvous([]byte("cell two"))

	for _, pair := range [][2]*node{{a, b}, {b, a}} {
		eventually(t, 10*time.Second, "met through the DHT", func() bool {
			p, ok := findPeer(pair[0].svc, pair[1].h.ID())
			return ok && slices.Contains(p.Sources, SourceDHT)
		})
	}
	// c advertised and looked up its own key the whole time; give it a few
	// more rounds, then check that it met nobody.
	key := RendezvousKey([]byte("cell two"), Epoch(time.Now(), cfg.RendezvousEpoch))
	if !dht.provides(c.h.ID(), key) {
		t.Errorf("c does not provide its rendezvous key %s", key)
	}
	n := dht.lookups(c.h.ID())
	eventually(t, 10*time.Second, "c looking up a few more times", func() bool { return dht.lookups(c.h.ID()) >= n+3 })
	if got := c.svc.Peers(); len(got) != 0 {
		t.Errorf("c lists %v, want nobody", idsOf(got))
	}
	for _, x := range []*node{a, b} {
		if x.h.Network().Connectedness(c.h.ID()) == network.Connected {
			t.Errorf("%s is connected to c", x.h.ID())
		}
	}
}

func TestRendezvousAdvertisesBlindedKey(t *testing.T) {
	verifyNoLeaks(t)
	dht := newFakeDHT()
	cfg := longEpochs()
	a := rendezvousNode(t, dht, cfg)
	secret := []byte("a secret")
	a.svc.Rendezvous(secret)
	epoch := Epoch(time.Now(), cfg.RendezvousEpoch)
	want := []routerCall{{"provide", a.h.ID(), RendezvousKey(secret, epoch)}}
	eventually(t, 10*time.Second, "advertising", func() bool { return len(dht.calls(a.h.ID())) > 0 })
	if diff := cmp.Diff(want, dht.calls(a.h.ID()), cmp.Comparer(func(x, y cid.Cid) bool { return x.Equals(y) })); diff != "" {
		t.Errorf("router calls (-want +got):\n%s", diff)
	}
	// It looks up the current and the previous epoch's keys.
	eventually(t, 10*time.Second, "looking up both epochs' keys", func() bool {
		got := dht.lookedUp(a.h.ID())
		return got[RendezvousKey(secret, epoch)] > 0 && got[RendezvousKey(secret, epoch-1)] > 0
	})
	// The secret itself is never handed to the router: the same secret
	// twice is one key, provided once.
	a.svc.Rendezvous(append([]byte(nil), secret...))
	n := dht.lookups(a.h.ID())
	eventually(t, 10*time.Second, "a few more rounds", func() bool { return dht.lookups(a.h.ID()) >= n+4 })
	if got := len(dht.calls(a.h.ID())); got != 1 {
		t.Errorf("%d Provide/Unprovide calls, want the one Provide", got)
	}
}

func TestRendezvousFindsPeerOneEpochBehind(t *testing.T) {
	verifyNoLeaks(t)
	dht := newFakeDHT()
	cfg := longEpochs()
	a := rendezvousNode(t, dht, cfg)
	lagging := newNode(t, testConfig(), nil, nil)
	secret := []byte("shared")
	prev := RendezvousKey(secret, Epoch(time.Now(), cfg.RendezvousEpoch)-1)
	if err := dht.router(lagging.h).Provide(t.Context(), prev); err != nil {
		t.Fatalf("Provide: %v", err)
	}
	a.svc.Rendezvous(secret)
	listedWith(t, a.svc, lagging.h.ID(), SourceDHT)
}

func TestStopRendezvousUnprovides(t *testing.T) {
	verifyNoLeaks(t)
	dht := newFakeDHT()
	cfg := longEpochs()
	a := rendezvousNode(t, dht, cfg)
	keep, stop := []byte("keep"), []byte("stop")
	a.svc.Rendezvous(keep)
	a.svc.Rendezvous(stop)
	epoch := Epoch(time.Now(), cfg.RendezvousEpoch)
	keepKey, stopKey := RendezvousKey(keep, epoch), RendezvousKey(stop, epoch)
	eventually(t, 10*time.Second, "advertising both keys", func() bool {
		return dht.provides(a.h.ID(), keepKey) && dht.provides(a.h.ID(), stopKey)
	})
	a.svc.StopRendezvous(stop)
	eventually(t, 10*time.Second, "withdrawing the stopped key", func() bool { return !dht.provides(a.h.ID(), stopKey) })
	if !dht.provides(a.h.ID(), keepKey) {
		t.Error("the other key was withdrawn too")
	}
	n := dht.lookups(a.h.ID())
	eventually(t, 10*time.Second, "a few more rounds", func() bool { return dht.lookups(a.h.ID()) >= n+4 })
	if dht.lookedUpSince(a.h.ID(), n)[stopKey] != 0 {
		t.Error("the stopped key is still looked up")
	}
	unprovides := 0
	for _, c := range dht.calls(a.h.ID()) {
		if c.Op == "unprovide" {
			unprovides++
			if !c.Key.Equals(stopKey) {
				t.Errorf("unprovided %s, want only %s", c.Key, stopKey)
			}
		}
	}
	if unprovides != 1 {
		t.Errorf("%d Unprovide calls, want 1", unprovides)
	}
}

func TestRendezvousKeyRotatesWithEpoch(t *testing.T) {
	verifyNoLeaks(t)
	dht := newFakeDHT()
	cfg := testConfig()
	cfg.RendezvousEpoch, cfg.RendezvousInterval = 200*time.Millisecond, 50*time.Millisecond
	a := rendezvousNode(t, dht, cfg)
	secret := []byte("rotating")
	first := Epoch(time.Now(), cfg.RendezvousEpoch)
	a.svc.Rendezvous(secret)

	// Wait for two rotations: provide k1, unprovide k1, provide k2,
	// unprovide k2, provide k3.
	eventually(t, 10*time.Second, "two rotations", func() bool {
		n := 0
		for _, c := range dht.calls(a.h.ID()) {
			if c.Op == "unprovide" {
				n++
			}
		}
		return n >= 2
	})
	calls := dht.calls(a.h.ID())
	// Each provided key is the key of a later epoch than the one before,
	// and is unprovided before the next is provided.
	epochOf := func(k cid.Cid) (uint64, bool) {
		for e := first; e < first+1000; e++ {
			if RendezvousKey(secret, e).Equals(k) {
				return e, true
			}
		}
		return 0, false
	}
	var current cid.Cid
	var last uint64
	for i, c := range calls[:5] {
		switch {
		case i%2 == 0 && c.Op == "provide":
			e, ok := epochOf(c.Key)
			if !ok || (i > 0 && e <= last) {
				t.Fatalf("call %d provides %s, not the key of an epoch after %d (calls %v)", i, c.Key, last, calls)
			}
			current, last = c.Key, e
		case i%2 == 1 && c.Op == "unprovide":
			if !c.Key.Equals(current) {
				t.Fatalf("call %d unprovides %s, want the old key %s", i, c.Key, current)
			}
		default:
			t.Fatalf("call %d is %s, want provide and unprovide alternating: %v", i, c.Op, calls)
		}
	}
}

func TestRendezvousRetriesFailedAdvertise(t *testing.T) {
	verifyNoLeaks(t)
	dht := newFakeDHT()
	h := newHost(t)
	r := &flakyRouter{fakeRouter: dht.router(h)}
	r.failures.Store(2)
	svc, err := New(h, longEpochs(), nil, r, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	secret := []byte("retry")
	svc.Rendezvous(secret)
	key := RendezvousKey(secret, Epoch(time.Now(), longEpochs().RendezvousEpoch))
	eventually(t, 10*time.Second, "advertised after two failures", func() bool { return dht.provides(h.ID(), key) })
	if got := r.attempts.Load(); got != 3 {
		t.Errorf("%d Provide attempts, want 3", got)
	}
}

// flakyRouter fails its first few Provide calls.
type flakyRouter struct {
	*fakeRouter
	failures atomic.Int64 // how many more Provide calls fail
	attempts atomic.Int64
}

func (r *flakyRouter) Provide(ctx context.Context, key cid.Cid) error {
	r.attempts.Add(1)
	if r.failures.Add(-1) >= 0 {
		return errors.New("no DHT peers yet")
	}
	return r.fakeRouter.Provide(ctx, key)
}

func TestRendezvousSkipsProvidersWithoutAddresses(t *testing.T) {
	verifyNoLeaks(t)
	dht := newFakeDHT()
	a := rendezvousNode(t, dht, longEpochs())
	secret := []byte("s")
	key := RendezvousKey(secret, Epoch(time.Now(), longEpochs().RendezvousEpoch))
	ghost := deadAddrInfo(t).ID
	dht.addProvider(key, peer.AddrInfo{ID: ghost})
	a.svc.Rendezvous(secret)
	n := dht.lookups(a.h.ID())
	eventually(t, 10*time.Second, "a few lookups", func() bool { return dht.lookups(a.h.ID()) >= n+4 })
	if _, ok := entryOf(a.svc, ghost); ok {
		t.Error("a provider without addresses was recorded")
	}
}
