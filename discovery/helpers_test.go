package discovery

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests. Nothing is
// ignored: closed libp2p hosts listening on loopback TCP only stop all
// their goroutines, and a Service waits for its own in Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// verifyNoLeaks checks, when the test ends and after every cleanup
// registered later (so after the hosts and services are closed), that the
// test left no goroutine behind. Call it first in a test that does not run
// in parallel with others.
func verifyNoLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// testConfig is a Config with durations short enough for tests on
// loopback: a failed dial is retried after about 50 ms, pings run every
// 200 ms.
func testConfig() Config {
	return Config{
		BackoffMin:         50 * time.Millisecond,
		BackoffMax:         200 * time.Millisecond,
		MaxFailures:        3,
		DialTimeout:        5 * time.Second,
		PingInterval:       200 * time.Millisecond,
		IdentifyGrace:      time.Second,
		IgnoreFor:          time.Hour,
		RendezvousEpoch:    time.Hour,
		RendezvousInterval: 50 * time.Millisecond,
	}
}

// newHost returns a libp2p host listening on loopback TCP only, with no
// relay and no NAT port mapping (libp2p's default), closed at cleanup.
func newHost(t testing.TB, opts ...libp2p.Option) host.Host {
	t.Helper()
	opts = append([]libp2p.Option{
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
	}, opts...)
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatalf("libp2p.New: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("closing host: %v", err)
		}
	})
	return h
}

// node is a host with a discovery service.
type node struct {
	h   host.Host
	svc *Service
}

// newNode returns a host and a started Service on it, both closed at
// cleanup (the service first).
func newNode(t testing.TB, cfg Config, lan LAN, router Router) *node {
	t.Helper()
	h := newHost(t)
	svc, err := New(h, cfg, lan, router, testLogger(h))
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

// testLogger returns nil (discard), or, with DISCOVERY_TEST_LOG=1 in the
// environment, a debug logger to stderr that names the node by the end of
// its peer ID: go test prints it for a failing package.
func testLogger(h host.Host) *slog.Logger {
	if os.Getenv("DISCOVERY_TEST_LOG") != "1" {
		return nil
	}
	id := h.ID().String()
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).
		With("self", id[max(0, len(id)-8):])
}

// info returns h's peer ID and listen addresses.
func info(h host.Host) peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

// deadAddrInfo returns a fresh peer ID with a loopback TCP address that
// nothing listens on: a dial fails at once with "connection refused".
func deadAddrInfo(t testing.TB) peer.AddrInfo {
	t.Helper()
	h := newHost(t)
	ai := info(h)
	if err := h.Close(); err != nil {
		t.Fatalf("closing host: %v", err)
	}
	return ai
}

// eventually polls cond every 10 ms until it holds, and fails the test if
// it still does not after d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still not %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// findPeer returns the entry of Peers for id, if listed.
func findPeer(s *Service, id peer.ID) (PeerInfo, bool) {
	for _, p := range s.Peers() {
		if p.ID == id {
			return p, true
		}
	}
	return PeerInfo{}, false
}

// entryOf returns a copy of the service's entry for id, if it has one.
func entryOf(s *Service, id peer.ID) (entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.peers[id]
	if e == nil {
		return entry{}, false
	}
	c := *e
	c.sources = slices.Clone(e.sources)
	return c, true
}

// connCounter counts the connections a host accepts, through
// network.Notifiee.
type connCounter struct {
	network.NoopNotifiee
	inbound atomic.Int64
}

func countInbound(t testing.TB, h host.Host) *connCounter {
	c := &connCounter{}
	h.Network().Notify(c)
	t.Cleanup(func() { h.Network().StopNotify(c) })
	return c
}

func (c *connCounter) Connected(_ network.Network, conn network.Conn) {
	if conn.Stat().Direction == network.DirInbound {
		c.inbound.Add(1)
	}
}

// fakeLAN is a LAN that, on Start, reports a fixed list of peers, and
// records what it was asked to do.
type fakeLAN struct {
	report []peer.AddrInfo

	mu     sync.Mutex
	host   host.Host
	found  func(peer.AddrInfo)
	starts int
	closes int
	on     bool // started and not closed since
}

func (l *fakeLAN) Start(h host.Host, found func(peer.AddrInfo)) error {
	l.mu.Lock()
	l.host, l.found = h, found
	l.starts++
	l.on = true
	l.mu.Unlock()
	for _, ai := range l.report {
		found(ai)
	}
	return nil
}

func (l *fakeLAN) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closes++
	l.on = false
	return nil
}

// running reports whether the LAN was started and not closed since.
func (l *fakeLAN) running() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.on
}

// counts returns how often Start and Close were called.
func (l *fakeLAN) counts() (starts, closes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.starts, l.closes
}

// hear calls the found callback that the service gave to Start, as a LAN
// does when it hears a peer.
func (l *fakeLAN) hear(ai peer.AddrInfo) {
	l.mu.Lock()
	found := l.found
	l.mu.Unlock()
	found(ai)
}

// fakeDHT is an in-memory provider table shared by the fakeRouters of a
// test: key → providers. Safe for concurrent use.
type fakeDHT struct {
	mu        sync.Mutex
	providers map[cid.Cid]map[peer.ID]peer.AddrInfo
	log       []routerCall
	finds     []routerCall // FindProviders calls, Op "find"
}

// routerCall is one Provide or Unprovide, in the order they happened.
type routerCall struct {
	Op   string // "provide" or "unprovide"
	Peer peer.ID
	Key  cid.Cid
}

func newFakeDHT() *fakeDHT {
	return &fakeDHT{providers: make(map[cid.Cid]map[peer.ID]peer.AddrInfo)}
}

// router returns the Router of one node of the fake DHT: it provides as
// h, with h's current addresses.
func (d *fakeDHT) router(h host.Host) *fakeRouter { return &fakeRouter{dht: d, h: h} }

// calls returns the Provide and Unprovide calls of id so far.
func (d *fakeDHT) calls(id peer.ID) []routerCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []routerCall
	for _, c := range d.log {
		if c.Peer == id {
			out = append(out, c)
		}
	}
	return out
}

// lookups returns how many FindProviders calls id made so far.
func (d *fakeDHT) lookups(id peer.ID) int { return len(d.findsOf(id)) }

// lookedUp counts id's lookups per key.
func (d *fakeDHT) lookedUp(id peer.ID) map[cid.Cid]int { return d.lookedUpSince(id, 0) }

// lookedUpSince counts id's lookups per key, leaving out its first n.
func (d *fakeDHT) lookedUpSince(id peer.ID, n int) map[cid.Cid]int {
	out := make(map[cid.Cid]int)
	for _, c := range d.findsOf(id)[n:] {
		out[c.Key]++
	}
	return out
}

func (d *fakeDHT) findsOf(id peer.ID) []routerCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []routerCall
	for _, c := range d.finds {
		if c.Peer == id {
			out = append(out, c)
		}
	}
	return out
}

// addProvider records ai as a provider of key, as if it had called Provide.
func (d *fakeDHT) addProvider(key cid.Cid, ai peer.AddrInfo) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.providers[key] == nil {
		d.providers[key] = make(map[peer.ID]peer.AddrInfo)
	}
	d.providers[key][ai.ID] = ai
}

// provides reports whether id currently provides key.
func (d *fakeDHT) provides(id peer.ID, key cid.Cid) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.providers[key][id]
	return ok
}

type fakeRouter struct {
	dht *fakeDHT
	h   host.Host
}

func (r *fakeRouter) Provide(ctx context.Context, key cid.Cid) error {
	r.dht.addProvider(key, info(r.h))
	r.dht.mu.Lock()
	defer r.dht.mu.Unlock()
	r.dht.log = append(r.dht.log, routerCall{"provide", r.h.ID(), key})
	return nil
}

func (r *fakeRouter) Unprovide(key cid.Cid) {
	d := r.dht
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.providers[key], r.h.ID())
	d.log = append(d.log, routerCall{"unprovide", r.h.ID(), key})
}

func (r *fakeRouter) FindProviders(ctx context.Context, key cid.Cid, limit int) <-chan peer.AddrInfo {
	d := r.dht
	d.mu.Lock()
	d.finds = append(d.finds, routerCall{"find", r.h.ID(), key})
	var found []peer.AddrInfo
	for _, ai := range d.providers[key] {
		if len(found) < limit {
			found = append(found, ai)
		}
	}
	d.mu.Unlock()
	out := make(chan peer.AddrInfo, len(found))
	for _, ai := range found {
		out <- ai
	}
	close(out)
	return out
}

// mustAddr parses a multiaddr or fails the test.
func mustAddr(t testing.TB, s string) ma.Multiaddr {
	t.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatalf("multiaddr %q: %v", s, err)
	}
	return a
}

// interest is Config.Interesting's verdict for a peer known to be, or not
// to be, of the cell or a contact's.
func interest(yes bool) Interest {
	if yes {
		return InterestYes
	}
	return InterestNo
}
