package blocks

import (
	"crypto/rand"
	"testing"

	"github.com/exopeer/exopeer/internal/leaktest"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	leveldb "github.com/ipfs/go-ds-leveldb"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestMain fails the run if any goroutine outlives the tests.
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

// datastoreKinds are the go-ds-leveldb set-ups the store tests run on.
var datastoreKinds = []string{"memory", "disk"}

// newDatastore returns a go-ds-leveldb datastore, in memory (path "") or in
// a fresh directory, closed when the test ends.
func newDatastore(tb testing.TB, kind string) *leveldb.Datastore {
	tb.Helper()
	path := ""
	if kind == "disk" {
		path = tb.TempDir()
	}
	d, err := leveldb.NewDatastore(path, nil)
	if err != nil {
		tb.Fatalf("leveldb.NewDatastore(%q): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Errorf("closing datastore: %v", err)
		}
	})
	return d
}

// randomBlock returns a raw CIDv1 block of n random bytes.
func randomBlock(tb testing.TB, n int) blockformat.Block {
	tb.Helper()
	data := make([]byte, n)
	rand.Read(data)
	return NewBlock(data)
}

// node is one peer of an exchange test: a loopback libp2p host, a store
// on an in-memory leveldb, and an exchange that serves every block to
// every peer.
type node struct {
	host  host.Host
	store *Store
	ex    *Exchange
}

// newNode returns a node listening on loopback TCP and QUIC only, with no
// NAT port mapping (libp2p's default), no relay and no bootstrap peers,
// storing blocks in memory. If start, the exchange is started before the
// function returns. The host and exchange are closed when the test ends,
// the exchange first.
func newNode(tb testing.TB, cfg Config, start bool) *node {
	tb.Helper()
	return newNodeOn(tb, "memory", cfg, start)
}

// newNodeOn is newNode with a datastore of the given kind ("memory" or
// "disk").
func newNodeOn(tb testing.TB, kind string, cfg Config, start bool) *node {
	tb.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.DisableRelay(),
	)
	if err != nil {
		tb.Fatalf("libp2p.New: %v", err)
	}
	tb.Cleanup(func() {
		if err := h.Close(); err != nil {
			tb.Errorf("closing host: %v", err)
		}
	})
	s := NewStore(newDatastore(tb, kind))
	ex, err := NewExchange(h, s, cfg)
	if err != nil {
		tb.Fatalf("NewExchange: %v", err)
	}
	tb.Cleanup(func() {
		if err := ex.Close(); err != nil {
			tb.Errorf("closing exchange: %v", err)
		}
	})
	// These tests exchange public blocks: any peer may read any of them
	// (the gate itself is tested in gate_test.go).
	ex.Gate().Register(OwnerFunc(func(peer.ID, cid.Cid) bool { return true }))
	ex.Gate().RegisterAsker(AskerFunc(func(peer.ID, cid.Cid) bool { return true }))
	if start {
		if err := ex.Start(tb.Context()); err != nil {
			tb.Fatalf("Start: %v", err)
		}
	}
	return &node{host: h, store: s, ex: ex}
}

// connect dials b from a over the transport whose multiaddr protocol name
// is transport ("tcp" or "quic-v1"; "" for any).
func connect(tb testing.TB, a, b *node, transport string) {
	tb.Helper()
	info := peer.AddrInfo{ID: b.host.ID()}
	for _, addr := range b.host.Addrs() {
		if transport == "" || hasProtocol(addr.Protocols(), transport) {
			info.Addrs = append(info.Addrs, addr)
		}
	}
	if len(info.Addrs) == 0 {
		tb.Fatalf("peer has no %s address among %v", transport, b.host.Addrs())
	}
	if err := a.host.Connect(tb.Context(), info); err != nil {
		tb.Fatalf("connect: %v", err)
	}
}
