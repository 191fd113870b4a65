package discovery

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// countingDS counts the writes to a datastore.
type countingDS struct {
	ds.Datastore
	puts atomic.Int64
}

func (c *countingDS) Put(ctx context.Context, k ds.Key, v []byte) error {
	c.puts.Add(1)
	return c.Datastore.Put(ctx, k, v)
}

func knownKey(id peer.ID) ds.Key { return ds.NewKey(KnownPrefix).ChildString(id.String()) }

func sameAddrs(a, b []ma.Multiaddr) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(x ma.Multiaddr) bool { return !slices.ContainsFunc(b, x.Equal) })
}

// TestKnownWrittenOnIdentify: a peer Interesting accepts is written to the
// table once identified, with its signed peer record, which verifies and
// gives its addresses; a peer it refuses is not written.
func TestKnownWrittenOnIdentify(t *testing.T) {
	ctx := t.Context()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	b := newNode(t, testConfig(), nil, nil)
	c := newNode(t, testConfig(), nil, nil)
	var asked sync.Map
	cfg := testConfig()
	cfg.PingInterval = time.Hour // no ping round writes: identify alone
	cfg.Known = d
	cfg.Interesting = func(id peer.ID) Interest { asked.Store(id, true); return interest(id == b.h.ID()) }
	a := newNode(t, cfg, nil, nil)

	if err := a.svc.Connect(ctx, info(c.h)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "c asked about", func() bool { _, ok := asked.Load(c.h.ID()); return ok })
	if err := a.svc.Connect(ctx, info(b.h)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "b written", func() bool { ok, _ := d.Has(ctx, knownKey(b.h.ID())); return ok })
	v, err := d.Get(ctx, knownKey(b.h.ID()))
	if err != nil {
		t.Fatal(err)
	}
	e, err := decodeKnown(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Record) == 0 {
		t.Fatal("b's entry has no signed peer record")
	}
	id, row, err := checkKnown(ds.NewKey(b.h.ID().String()), v)
	if err != nil || id != b.h.ID() || !sameAddrs(row.addrs, b.h.Addrs()) {
		t.Fatalf("b's entry: %s %v %v; want %s with %v", id, row.addrs, err, b.h.ID(), b.h.Addrs())
	}
	if ok, _ := d.Has(ctx, knownKey(c.h.ID())); ok {
		t.Fatal("c, not interesting, was written")
	}
}

// TestKnownDebounced: an entry written is not written again for the same
// addresses before KnownDebounce has passed, and is at once after.
func TestKnownDebounced(t *testing.T) {
	ctx := t.Context()
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	d := &countingDS{Datastore: dssync.MutexWrap(ds.NewMapDatastore())}
	b := newNode(t, testConfig(), nil, nil)
	cfg := testConfig()
	cfg.Known = d
	cfg.Interesting = func(id peer.ID) Interest { return interest(id == b.h.ID()) }
	cfg.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	a := newNode(t, cfg, nil, nil)
	if err := a.svc.Connect(ctx, info(b.h)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "b written", func() bool { return d.puts.Load() == 1 })
	a.svc.noteConnected(b.h.ID())
	if n := d.puts.Load(); n != 1 {
		t.Fatalf("%d writes within the debounce, want 1", n)
	}
	clock.Add(int64(KnownDebounce))
	a.svc.noteConnected(b.h.ID()) // or the ping round did
	if n := d.puts.Load(); n != 2 {
		t.Fatalf("%d writes after the debounce, want 2", n)
	}
	v, err := d.Get(ctx, knownKey(b.h.ID()))
	if err != nil {
		t.Fatal(err)
	}
	if e, err := decodeKnown(v); err != nil || !e.Seen.Equal(t0.Add(KnownDebounce)) {
		t.Fatalf("entry seen %v (%v), want %v", e.Seen, err, t0.Add(KnownDebounce))
	}
}

// TestKnownLoadedAtStart: at Start the table's peers are dialled (source
// known) and redialled when lost; entries that do not decode, are not
// keyed by a peer ID, have expired or carry a record that is not their
// peer's are deleted; the public entries are the bootstrap peers.
func TestKnownLoadedAtStart(t *testing.T) {
	ctx := t.Context()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	b := newNode(t, testConfig(), nil, nil)
	r := newNode(t, testConfig(), nil, nil)
	rpriv := r.h.Peerstore().PrivKey(r.h.ID())
	now := time.Now()
	put := func(k ds.Key, v []byte) {
		t.Helper()
		if err := d.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	put(knownKey(b.h.ID()), encodeKnown(known{Addrs: b.h.Addrs(), Seen: now}))
	put(knownKey(r.h.ID()), encodeKnown(known{Record: signedRecord(t, rpriv, r.h.ID(), r.h.Addrs()...), Seen: now}))
	x, _ := testPeer(t, 7)
	y, ypriv := testPeer(t, 8)
	garbage, _ := testPeer(t, 9)
	old, _ := testPeer(t, 10)
	pub, _ := testPeer(t, 11)
	pubAddr := mustAddr(t, "/ip4/127.0.0.1/tcp/9") // dialled in vain: nothing listens
	bad := []ds.Key{
		knownKey(x), knownKey(garbage), knownKey(old), ds.NewKey(KnownPrefix).ChildString("notapeer"),
	}
	put(bad[0], encodeKnown(known{Record: signedRecord(t, ypriv, y, pubAddr), Seen: now}))
	put(bad[1], []byte{1, 2, 3})
	put(bad[2], encodeKnown(known{Addrs: []ma.Multiaddr{pubAddr}, Seen: now.Add(-KnownMaxAge - time.Hour)}))
	put(bad[3], encodeKnown(known{Addrs: []ma.Multiaddr{pubAddr}, Seen: now}))
	put(knownKey(pub), encodeKnown(known{Addrs: []ma.Multiaddr{pubAddr}, Seen: now, Public: true}))

	inbound := countInbound(t, b.h)
	cfg := testConfig()
	cfg.Known = d
	cfg.Interesting = func(peer.ID) Interest { return InterestYes }
	a := newNode(t, cfg, nil, nil)
	for _, id := range []peer.ID{b.h.ID(), r.h.ID()} {
		eventually(t, 10*time.Second, "connected to "+id.String(), func() bool {
			p, ok := findPeer(a.svc, id)
			return ok && slices.Contains(p.Sources, SourceKnown)
		})
	}
	for _, k := range bad {
		if ok, err := d.Has(ctx, k); ok || err != nil {
			t.Errorf("bad entry %s kept (%v)", k, err)
		}
	}
	for _, id := range []peer.ID{b.h.ID(), r.h.ID(), pub} {
		if ok, err := d.Has(ctx, knownKey(id)); !ok || err != nil {
			t.Errorf("good entry of %s dropped (%v)", id, err)
		}
	}
	if _, ok := entryOf(a.svc, x); ok {
		t.Error("the peer of a forged record is dialled")
	}
	// pub's entry says public, but its address is loopback: the flag is
	// computed again on load, and the entries here are all loopback.
	if bp := a.svc.BootstrapPeers(); len(bp) != 0 {
		t.Errorf("bootstrap peers %v, want none (loopback only)", bp)
	}

	// Lost, it is dialled again.
	if err := b.h.Network().ClosePeer(a.h.ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "b redialled", func() bool {
		return inbound.inbound.Load() >= 2 && b.h.Network().Connectedness(a.h.ID()) == network.Connected
	})
}

// TestKnownNotForgotten: a known peer that keeps failing is dialled on
// past MaxFailures while Interesting accepts it, and forgotten like any
// other once it does not.
func TestKnownNotForgotten(t *testing.T) {
	ctx := t.Context()
	dead := deadAddrInfo(t)
	for _, keep := range []bool{true, false} {
		d := dssync.MutexWrap(ds.NewMapDatastore())
		if err := d.Put(ctx, knownKey(dead.ID), encodeKnown(known{Addrs: dead.Addrs, Seen: time.Now()})); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.Known = d
		cfg.Interesting = func(peer.ID) Interest { return interest(keep) }
		a := newNode(t, cfg, nil, nil)
		if keep {
			eventually(t, 20*time.Second, "dialled past MaxFailures", func() bool {
				e, ok := entryOf(a.svc, dead.ID)
				return ok && e.failures > cfg.MaxFailures+1
			})
		} else {
			eventually(t, 20*time.Second, "forgotten", func() bool {
				_, ok := entryOf(a.svc, dead.ID)
				return !ok
			})
		}
	}
}

// TestKnownQueueBounded: the identified peers waiting for the known
// table's worker are at most KnownQueue; past it queueKnown drops the
// peer (the next ping round books it) rather than hold the event loop.
func TestKnownQueueBounded(t *testing.T) {
	h := newHost(t)
	cfg := testConfig()
	cfg.Known = dssync.MutexWrap(ds.NewMapDatastore())
	s, err := New(h, cfg, nil, nil, nil) // not started: no worker drains the queue
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range KnownQueue + 10 {
			s.queueKnown(event.EvtPeerIdentificationCompleted{Peer: peer.ID(fmt.Sprintf("peer-%d", i))})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("queueKnown blocked on a full queue")
	}
	if n := len(s.noteq); n != KnownQueue {
		t.Fatalf("%d peers queued, want the bound %d", n, KnownQueue)
	}
}
