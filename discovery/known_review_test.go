package discovery

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// keyOrderDS answers queries in key order, as leveldb does.
type keyOrderDS struct{ ds.Datastore }

func (o keyOrderDS) Query(ctx context.Context, q query.Query) (query.Results, error) {
	q.Orders = append(q.Orders, query.OrderByKey{})
	return o.Datastore.Query(ctx, q)
}

func randomPeer(t testing.TB) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// unstartedService returns a Service on a loopback host, not started:
// its known table can be loaded by hand.
func unstartedService(t testing.TB, cfg Config) *Service {
	t.Helper()
	s, err := New(newHost(t), cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestKnownLoadEvictsOldest: a datastore holding more than MaxKnown
// entries loses, at load, the entries seen longest ago, whatever the
// order the datastore answers in. loadKnown books the entries one by one
// with put, which never evicts the entry just put: the entry read last is
// kept even when it is the oldest of all, and a newer one (a cell member
// seen yesterday) is deleted in its place.
func TestKnownLoadEvictsOldest(t *testing.T) {
	ctx := t.Context()
	d := keyOrderDS{dssync.MutexWrap(ds.NewMapDatastore())}
	ids := make([]peer.ID, MaxKnown+1)
	for i := range ids {
		ids[i] = randomPeer(t)
	}
	slices.SortFunc(ids, func(a, b peer.ID) int { return cmpString(a.String(), b.String()) })
	now := time.Now()
	a := mustAddr(t, "/ip4/198.51.100.7/tcp/4001")
	oldest := ids[len(ids)-1] // read last
	for i, id := range ids {
		seen := now.Add(-time.Duration(i+1) * time.Minute)
		if id == oldest {
			seen = now.Add(-80 * 24 * time.Hour)
		}
		if err := d.Put(ctx, knownKey(id), encodeKnown(known{Addrs: []ma.Multiaddr{a}, Seen: seen})); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig()
	cfg.Known = d
	s := unstartedService(t, cfg)
	if _, err := s.loadKnown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.known.t.rows[oldest]; ok {
		t.Error("the entry seen longest ago is kept")
	}
	if ok, _ := d.Has(ctx, knownKey(oldest)); ok {
		t.Error("the entry seen longest ago is still in the datastore")
	}
	for _, id := range ids[:len(ids)-1] {
		if ok, _ := d.Has(ctx, knownKey(id)); !ok {
			t.Errorf("newer entry %s deleted", id)
		}
	}
}

// TestKnownRemovedNotBootstrap: a peer that Interesting no longer accepts
// (a device removed from the cell, maybe for being compromised; a contact
// deleted) is not offered to kad-dht as a bootstrap peer. The table keeps
// it (up to 90 days: nothing re-checks Interesting but the redial), and
// BootstrapPeers does not ask.
func TestKnownRemovedNotBootstrap(t *testing.T) {
	ctx := t.Context()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	removed := randomPeer(t)
	pub := mustAddr(t, "/ip4/11.213.0.7/tcp/4001") // public (anyPublic)
	if err := d.Put(ctx, knownKey(removed), encodeKnown(known{Addrs: []ma.Multiaddr{pub}, Seen: time.Now(), Public: true})); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Known = d
	cfg.Interesting = func(peer.ID) Interest { return InterestNo }
	s := unstartedService(t, cfg)
	if _, err := s.loadKnown(ctx); err != nil {
		t.Fatal(err)
	}
	if bp := s.BootstrapPeers(); len(bp) != 0 {
		t.Fatalf("bootstrap peers %v: a peer no longer interesting is offered to the DHT", bp)
	}
	s.cfg.Interesting = func(peer.ID) Interest { return InterestUnknown }
	if bp := s.BootstrapPeers(); len(bp) != 0 {
		t.Fatalf("bootstrap peers %v: an entry that cannot be judged (the contacts unreadable) is offered to the DHT", bp)
	}
	s.ctx = ctx
	s.cfg.Interesting = func(peer.ID) Interest { return InterestUnknown }
	s.sweepKnown()
	if ok, _ := d.Has(ctx, knownKey(removed)); !ok {
		t.Fatal("an entry the check could not judge (a failed read) was deleted")
	}
	s.cfg.Interesting = func(peer.ID) Interest { return InterestNo }
	s.sweepKnown()
	if ok, _ := d.Has(ctx, knownKey(removed)); ok {
		t.Fatal("the entry of a peer no longer of the cell or a contact's is kept")
	}
	if _, ok := s.known.t.rows[removed]; ok {
		t.Fatal("the row of a peer no longer of the cell or a contact's is kept")
	}
}

// TestKnownTableClockBack: an entry written while the clock was ahead
// (seen in the future) is written again, with the present time, when its
// peer is seen after the clock was set back; otherwise the debounce
// (row.seen - old.seen >= KnownDebounce) holds it until the clock catches
// up, and meanwhile it is never expired, never evicted, and always first
// among the bootstrap peers.
func TestKnownTableClockBack(t *testing.T) {
	id, _ := testPeer(t, 1)
	a := mustAddr(t, "/ip4/198.51.100.7/tcp/4001")
	tb := newKnownTable()
	tb.put(id, row(t0.Add(365*24*time.Hour), true, a))
	if !tb.due(id, row(t0, true, a)) {
		t.Fatal("an entry seen a year in the future is not due when its peer is seen now")
	}
	// Taken as seen now, it ages and expires like the others.
	if got := tb.expired(t0); len(got) != 0 {
		t.Fatalf("expired %v at once", got)
	}
	if got := tb.expired(t0.Add(KnownMaxAge + time.Hour)); !slices.Equal(got, []peer.ID{id}) {
		t.Fatalf("expired %v: an entry seen in the future never expires", got)
	}
}

// TestKnownLoadClockAhead: an entry stored with a last seen in the
// future is loaded as seen now: it is evicted before one seen a minute
// ago.
func TestKnownLoadClockAhead(t *testing.T) {
	ctx := t.Context()
	d := keyOrderDS{dssync.MutexWrap(ds.NewMapDatastore())}
	a := mustAddr(t, "/ip4/11.213.0.7/tcp/4001")
	now := time.Now()
	future := randomPeer(t)
	if err := d.Put(ctx, knownKey(future), encodeKnown(known{Addrs: []ma.Multiaddr{a}, Seen: now.Add(365 * 24 * time.Hour)})); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Known = d
	s := unstartedService(t, cfg)
	if _, err := s.loadKnown(ctx); err != nil {
		t.Fatal(err)
	}
	if r := s.known.t.rows[future]; r.seen.After(s.now()) {
		t.Fatalf("loaded as seen %v, after now", r.seen)
	}
}

// TestKnownLoadPublicChecked: the public flag read back is checked like
// the rest ("nothing read back is trusted"): an entry whose addresses are
// all loopback, flagged public on disk, is not a bootstrap peer.
func TestKnownLoadPublicChecked(t *testing.T) {
	ctx := t.Context()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	id := randomPeer(t)
	lo := mustAddr(t, "/ip4/127.0.0.1/tcp/4001")
	if err := d.Put(ctx, knownKey(id), encodeKnown(known{Addrs: []ma.Multiaddr{lo}, Seen: time.Now(), Public: true})); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Known = d
	cfg.Interesting = func(peer.ID) Interest { return InterestYes }
	s := unstartedService(t, cfg)
	if _, err := s.loadKnown(ctx); err != nil {
		t.Fatal(err)
	}
	if bp := s.BootstrapPeers(); len(bp) != 0 {
		t.Fatalf("bootstrap peers %v: a loopback-only entry flagged public on disk is trusted", bp)
	}
}

// TestKnownContactCannotEvictMembers: a contact names up to
// contact.MaxDevices devices per list and may change the list at will;
// each device it brings up once, with a fresh key, gets an entry, and
// MaxKnown of them, seen after a cell member, evict the member (eviction
// is by last seen alone, blind to whose peer it is).
func TestKnownContactCannotEvictMembers(t *testing.T) {
	d := dssync.MutexWrap(ds.NewMapDatastore())
	var clock time.Time = t0
	member := randomPeer(t)
	cfg := testConfig()
	cfg.Known = d
	cfg.Interesting = func(peer.ID) Interest { return InterestYes }
	cfg.Member = func(id peer.ID) bool { return id == member }
	cfg.Now = func() time.Time { return clock }
	s := unstartedService(t, cfg)
	s.ctx = t.Context()
	a := mustAddr(t, "/ip4/198.51.100.7/tcp/4001")
	s.noteKnown(member, nil, []ma.Multiaddr{a})
	for range MaxKnown {
		clock = clock.Add(time.Second)
		s.noteKnown(randomPeer(t), nil, []ma.Multiaddr{a})
	}
	if _, ok := s.known.t.rows[member]; !ok {
		t.Fatal("a contact's devices evicted the cell member from the known table")
	}
}

// TestKnownDisconnectDoesNotBlockEvents: the event loop never waits on
// Config.Interesting (doc.go: "so that the event loop never waits on
// Interesting"; peer's Interesting reads the contacts, up to 5 s). Yet
// disconnected, run by the event loop, calls keepKnown, which calls
// Interesting for every known peer lost: while it waits, no identify is
// handled (and go-libp2p's event bus blocks its emitters once the
// subscription's buffer is full).
func TestKnownDisconnectDoesNotBlockEvents(t *testing.T) {
	ctx := t.Context()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	b := newNode(t, testConfig(), nil, nil)
	c := newNode(t, testConfig(), nil, nil)
	if err := d.Put(ctx, knownKey(b.h.ID()), encodeKnown(known{Addrs: b.h.Addrs(), Seen: time.Now()})); err != nil {
		t.Fatal(err)
	}
	var block atomic.Bool
	release := make(chan struct{})
	cfg := testConfig()
	cfg.PingInterval = time.Hour
	cfg.Known = d
	cfg.Interesting = func(id peer.ID) Interest {
		if id == b.h.ID() && block.Load() {
			<-release // a slow contacts read
		}
		return InterestYes
	}
	a := newNode(t, cfg, nil, nil)
	t.Cleanup(func() { close(release) }) // before a is closed
	eventually(t, 10*time.Second, "b connected from the table", func() bool {
		p, ok := findPeer(a.svc, b.h.ID())
		return ok && slices.Contains(p.Sources, SourceKnown)
	})
	block.Store(true)
	if err := b.h.Network().ClosePeer(a.h.ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "b disconnected", func() bool {
		return a.h.Network().Connectedness(b.h.ID()) != network.Connected
	})
	if err := c.svc.Connect(ctx, info(a.h)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "c, inbound, seen by a's event loop", func() bool { _, ok := findPeer(a.svc, c.h.ID()); return ok })
}

// TestKnownChurnDebounced: a peer whose addresses change at every
// observation (a contact that reconnects each second, each time with
// another port in its signed record; a plain-address peer whose
// peerstore set flaps) is written at each one: the debounce only holds
// for the same set of addresses, so the leveldb writes are bounded by the
// peer's reconnect rate, not by KnownDebounce. An hour of flapping each
// second is 3,600 writes of up to 4 KiB, per peer.
func TestKnownChurnDebounced(t *testing.T) {
	d := &countingDS{Datastore: dssync.MutexWrap(ds.NewMapDatastore())}
	clock := t0
	cfg := testConfig()
	cfg.Known = d
	cfg.Interesting = func(peer.ID) Interest { return InterestYes }
	cfg.Now = func() time.Time { return clock }
	s := unstartedService(t, cfg)
	s.ctx = t.Context()
	id := randomPeer(t)
	x, y := mustAddr(t, "/ip4/198.51.100.7/tcp/4001"), mustAddr(t, "/ip4/198.51.100.7/tcp/4002")
	for i := range 600 { // ten minutes, one identify a second
		a := x
		if i%2 == 1 {
			a = y
		}
		s.noteKnown(id, nil, []ma.Multiaddr{a})
		clock = clock.Add(time.Second)
	}
	if n := d.puts.Load(); n > 10 {
		t.Fatalf("%d writes of one peer's entry in %v", n, KnownDebounce)
	}
	// The last change, not yet written, is in memory, and written by the
	// ping round's flush once KnownMinWrite has passed.
	last := []ma.Multiaddr{y}
	if got := s.known.t.rows[id].addrs; !slices.EqualFunc(got, last, ma.Multiaddr.Equal) {
		t.Fatalf("in memory %v, want %v", got, last)
	}
	clock = clock.Add(KnownMinWrite)
	s.flushKnown()
	v, err := d.Get(t.Context(), knownKey(id))
	if err != nil {
		t.Fatal(err)
	}
	e, err := decodeKnown(v)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(e.Addrs, last, ma.Multiaddr.Equal) {
		t.Fatalf("stored %v, want the last addresses %v", e.Addrs, last)
	}
	if s.known.t.rows[id].pending != nil {
		t.Fatal("still pending after the flush")
	}
}

// TestKnownRedialAfterAddrTTL: a known peer is "redialled, with
// back-off, whenever it is lost, and never forgotten for failing" — but
// dial takes its addresses from the peerstore, where the table's were put
// once, at Start, with peerstore.AddressTTL (1 h). A member offline for
// more than an hour after the node started is then redialled with no
// address at all, forever; back at its old address it is not reached
// from the table. (The hour is skipped by clearing the peerstore.)
func TestKnownRedialAfterAddrTTL(t *testing.T) {
	ctx := t.Context()
	bkey, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hb := newHost(t, libp2p.Identity(bkey))
	bid, baddrs := hb.ID(), hb.Addrs()
	if err := hb.Close(); err != nil {
		t.Fatal(err)
	}
	d := dssync.MutexWrap(ds.NewMapDatastore())
	if err := d.Put(ctx, knownKey(bid), encodeKnown(known{Addrs: baddrs, Seen: time.Now()})); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Known = d
	cfg.Interesting = func(peer.ID) Interest { return InterestYes }
	a := newNode(t, cfg, nil, nil)
	eventually(t, 10*time.Second, "b failing past MaxFailures", func() bool {
		e, ok := entryOf(a.svc, bid)
		return ok && e.failures > cfg.MaxFailures
	})
	a.h.Peerstore().ClearAddrs(bid) // an hour has passed: AddressTTL

	hb2 := newHost(t, libp2p.Identity(bkey), libp2p.ListenAddrs(baddrs...))
	b, err := New(hb2, testConfig(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	eventually(t, 10*time.Second, "b, back at its known address, redialled", func() bool {
		return a.h.Network().Connectedness(bid) == network.Connected
	})
}

// TestKnownTableEvictsMembersLast: past MaxKnown the oldest entry that is
// not a member goes, even when a member is older; among members only, the
// oldest member goes.
func TestKnownTableEvictsMembersLast(t *testing.T) {
	a := mustAddr(t, "/ip4/198.51.100.7/tcp/4001")
	members := map[peer.ID]bool{}
	tb := newKnownTable()
	tb.member = func(id peer.ID) bool { return members[id] }
	id := func(i int) peer.ID { return peer.ID(fmt.Sprintf("p%04d", i)) }
	for i := range MaxKnown {
		members[id(i)] = i != 5
		tb.put(id(i), row(t0.Add(time.Duration(i)*time.Second), false, a))
	}
	if ev := tb.put(id(MaxKnown), row(t0.Add(time.Hour), false, a)); !slices.Equal(ev, []peer.ID{id(5)}) {
		t.Fatalf("evicted %v, want the only non-member %s (members %s.. are older)", ev, id(5), id(0))
	}
	members[id(MaxKnown)] = true
	if ev := tb.put(id(MaxKnown+1), row(t0.Add(2*time.Hour), false, a)); !slices.Equal(ev, []peer.ID{id(0)}) {
		t.Fatalf("evicted %v, want the oldest member %s when all are members", ev, id(0))
	}
}

// TestKnownLostJudgedByWorker: a known peer lost after Interesting began
// to say no (a device removed from the cell) is forgotten, not redialled;
// the worker judges it, off the event loop.
func TestKnownLostJudgedByWorker(t *testing.T) {
	ctx := t.Context()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	b := newNode(t, testConfig(), nil, nil)
	if err := d.Put(ctx, knownKey(b.h.ID()), encodeKnown(known{Addrs: b.h.Addrs(), Seen: time.Now()})); err != nil {
		t.Fatal(err)
	}
	var removed atomic.Bool
	cfg := testConfig()
	cfg.PingInterval = time.Hour
	cfg.Known = d
	cfg.Interesting = func(peer.ID) Interest { return interest(!removed.Load()) }
	a := newNode(t, cfg, nil, nil)
	eventually(t, 10*time.Second, "b connected from the table", func() bool {
		p, ok := findPeer(a.svc, b.h.ID())
		return ok && slices.Contains(p.Sources, SourceKnown)
	})
	removed.Store(true)
	if err := b.h.Network().ClosePeer(a.h.ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "b forgotten", func() bool {
		_, ok := entryOf(a.svc, b.h.ID())
		return !ok
	})
}

// TestKnownUnknownAskedOnce: while Interesting cannot tell (no roster
// yet, the contacts unreadable: up to 5 s a read), the ping round's sweep
// and BootstrapPeers ask it once, not once per entry; the sweep keeps
// every entry, and BootstrapPeers offers the members only (Member, from
// memory).
func TestKnownUnknownAskedOnce(t *testing.T) {
	ctx := t.Context()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	pub := mustAddr(t, "/ip4/11.213.0.7/tcp/4001")
	for range 3 {
		if err := d.Put(ctx, knownKey(randomPeer(t)), encodeKnown(known{Addrs: []ma.Multiaddr{pub}, Seen: time.Now()})); err != nil {
			t.Fatal(err)
		}
	}
	var asked atomic.Int32
	cfg := testConfig()
	cfg.Known = d
	cfg.Interesting = func(peer.ID) Interest { asked.Add(1); return InterestUnknown }
	s := unstartedService(t, cfg)
	s.ctx = ctx
	ai, err := s.loadKnown(ctx)
	if err != nil {
		t.Fatal(err)
	}
	member := ai[0].ID
	s.cfg.Member = func(id peer.ID) bool { return id == member }
	if bp := s.BootstrapPeers(); len(bp) != 1 || bp[0].ID != member {
		t.Fatalf("bootstrap peers %v, want the member %s only", bp, member)
	}
	s.sweepKnown()
	if n := asked.Load(); n != 2 {
		t.Fatalf("Interesting asked %d times, want once by BootstrapPeers and once by the sweep", n)
	}
	if len(s.known.t.rows) != 3 {
		t.Fatalf("%d entries kept, want 3", len(s.known.t.rows))
	}
}
