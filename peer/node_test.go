package peer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/datastore/dshelp"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	flatfs "github.com/ipfs/go-ds-flatfs"
	leveldb "github.com/ipfs/go-ds-leveldb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/discovery"
	"github.com/exopeer/exopeer/gossip"
	"github.com/exopeer/exopeer/internal/leaktest"
	storeservice "github.com/exopeer/exopeer/store/service"
)

// TestMain fails the run if a goroutine outlives the tests: a node must
// stop everything it started. goleveldb v1.0.0's (*DB).mpoolDrain stops up
// to a second after DB.Close, so the check waits that second out rather
// than ignoring it (which would hide a datastore left open).
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

// loopbackOptions returns Options for a node on loopback: no mDNS (the
// network rule for nodes a test starts on the host), one DHT table in
// server mode, a free port, an on-disk leveldb in a temporary dir.
func loopbackOptions(t *testing.T, seed byte, bootstrap ...peer.AddrInfo) Options {
	t.Helper()
	priv, err := crypto.UnmarshalEd25519PrivateKey(testKey(seed))
	if err != nil {
		t.Fatal(err)
	}
	store, err := leveldb.NewDatastore(filepath.Join(t.TempDir(), "ds"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	off := false
	dcfg := dht.DefaultConfig()
	dcfg.LAN, dcfg.Mode, dcfg.Bootstrap = false, dht.ModeServer, bootstrap
	disc := discovery.DefaultConfig()
	disc.Bootstrap = bootstrap
	disc.PingInterval = 200 * time.Millisecond
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return Options{
		Key:       priv,
		Datastore: store,
		Network:   RealNetwork(datadir.NetworkConfig{Port: -1, ListenIPs: []string{"127.0.0.1"}, MDNS: &off}, log),
		DHT:       dcfg,
		Discovery: disc,
		Logger:    log,
	}
}

func startNode(t *testing.T, opts Options) *Node {
	t.Helper()
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func addrInfo(n *Node) peer.AddrInfo {
	return peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}
}

func hasPeer(n *Node, id peer.ID, src discovery.Source) bool {
	return slices.ContainsFunc(n.Discovery().Peers(), func(p discovery.PeerInfo) bool {
		return p.ID == id && slices.Contains(p.Sources, src)
	})
}

func TestNewRejectsMissingParts(t *testing.T) {
	good := loopbackOptions(t, 1)
	tests := []struct {
		name string
		mod  func(*Options)
	}{
		{"no key", func(o *Options) { o.Key = nil }},
		{"no datastore", func(o *Options) { o.Datastore = nil }},
		{"no host", func(o *Options) { o.Network.NewHost = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.mod(&o)
			if _, err := New(o); err == nil {
				t.Error("New accepted incomplete options")
			}
		})
	}
}

// Three nodes on loopback: B and C know only A (bootstrap). All find each
// other through the DHT, and C fetches by bitswap a block only B has.
func TestNodesConnectAndExchangeBlocks(t *testing.T) {
	a := startNode(t, loopbackOptions(t, 1))
	b := startNode(t, loopbackOptions(t, 2, addrInfo(a)))
	c := startNode(t, loopbackOptions(t, 3, addrInfo(a)))

	eventually(t, 10*time.Second, "B and C list A as a bootstrap peer", func() bool {
		return hasPeer(b, a.ID(), discovery.SourceBootstrap) && hasPeer(c, a.ID(), discovery.SourceBootstrap)
	})
	eventually(t, 10*time.Second, "A lists B and C as inbound", func() bool {
		return hasPeer(a, b.ID(), discovery.SourceInbound) && hasPeer(a, c.ID(), discovery.SourceInbound)
	})
	// C finds B through the DHT.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.DHT().Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "C's routing table holds a peer", func() bool { return c.DHT().RoutingTableSize() > 0 })
	ai, err := c.DHT().FindPeer(ctx, b.ID())
	if err != nil {
		t.Fatalf("C FindPeer(B): %v", err)
	}
	if _, err := c.Connect(ctx, mustP2pAddr(t, ai)); err != nil {
		t.Fatalf("C connect B: %v", err)
	}

	blk := blocks.NewBlock([]byte("exopeer block only B has"))
	if err := b.Blocks().Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	// B serves no block nobody vouches for: it lets C read this one.
	b.Exchange().Gate().Register(blocks.OwnerFunc(func(p peer.ID, k cid.Cid) bool {
		return p == c.ID() && k == blk.Cid()
	}))
	// C asks B for it: raw blocks are asked of cell members only (none
	// here), unless an asker allows.
	c.Exchange().Gate().RegisterAsker(blocks.AskerFunc(func(p peer.ID, k cid.Cid) bool {
		return p == b.ID() && k == blk.Cid()
	}))
	got, err := c.Exchange().Get(ctx, blk.Cid())
	if err != nil {
		t.Fatalf("C fetch from B: %v", err)
	}
	if string(got.RawData()) != string(blk.RawData()) {
		t.Error("fetched block has other bytes")
	}
	if ok, _ := c.Blocks().Has(ctx, blk.Cid()); !ok {
		t.Error("fetched block is not stored in C")
	}

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != c.ID().String() || st.Peers < 2 || st.DHTTable < 1 || st.Blocks != 1 || len(st.Addrs) == 0 {
		t.Errorf("status = %+v", st)
	}
	eventually(t, 5*time.Second, "an RTT is measured", func() bool {
		for _, p := range c.Discovery().Peers() {
			if p.RTT > 0 {
				return true
			}
		}
		return false
	})
}

func mustP2pAddr(t *testing.T, ai peer.AddrInfo) ma.Multiaddr {
	t.Helper()
	addrs, err := peer.AddrInfoToP2pAddrs(&ai)
	if err != nil || len(addrs) == 0 {
		t.Fatalf("no address for %s: %v", ai.ID, err)
	}
	return addrs[0]
}

func TestNodeLifecycle(t *testing.T) {
	opts := loopbackOptions(t, 4)
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := n.Start(t.Context()); !errors.Is(err, ErrNodeClosed) {
		t.Errorf("Start after Close = %v, want ErrNodeClosed", err)
	}
	// The datastore belongs to the caller and is still usable; a new node
	// on it keeps the blocks of the old one.
	blk := blocks.NewBlock([]byte("kept across restarts"))
	if err := blocks.NewStore(opts.Datastore).Put(t.Context(), blk); err != nil {
		t.Fatalf("datastore closed by the node: %v", err)
	}
	n2 := startNode(t, opts)
	if ok, _ := n2.Blocks().Has(t.Context(), blk.Cid()); !ok {
		t.Error("restarted node lost a block")
	}
}

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// TestNodeStartFailure: a part that fails to start is named in Start's
// error, every part started before it is stopped (the leak check of
// TestMain sees any goroutine left), and the node is closed.
func TestNodeStartFailure(t *testing.T) {
	t.Run("host", func(t *testing.T) {
		opts := loopbackOptions(t, 5)
		opts.Network.NewHost = func(crypto.PrivKey) (host.Host, error) { return nil, errors.New("port taken") }
		n, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(t.Context()); err == nil || err.Error() != "peer: start host: port taken" {
			t.Errorf("Start = %v, want the host's failure", err)
		}
		if err := n.Start(t.Context()); !errors.Is(err, ErrNodeClosed) {
			t.Errorf("Start after a failed Start = %v, want ErrNodeClosed", err)
		}
		if err := n.Close(); err != nil {
			t.Errorf("Close after a failed Start: %v", err)
		}
	})
	t.Run("cell", func(t *testing.T) {
		opts := loopbackOptions(t, 6)
		// A corrupt box key: the cell refuses to start, after the host,
		// the exchange, discovery and the DHT have started.
		if err := opts.Datastore.Put(t.Context(), ds.NewKey("/cell/box"), []byte("not a key")); err != nil {
			t.Fatal(err)
		}
		n, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		err = n.Start(t.Context())
		if !errors.Is(err, cell.ErrCorruptState) || !strings.HasPrefix(err.Error(), "peer: start cell: ") {
			t.Fatalf("Start = %v, want the cell's failure, naming it", err)
		}
		if addrs := n.Host().Network().ListenAddresses(); len(addrs) != 0 {
			t.Errorf("the host still listens on %v after a failed Start", addrs)
		}
		if err := n.Close(); err != nil {
			t.Errorf("Close after a failed Start: %v", err)
		}
	})
	t.Run("blobs", func(t *testing.T) {
		opts := loopbackOptions(t, 8)
		// The blobs, the last part, cannot read their records: every
		// other part has started, the store too, and is stopped again.
		failed := errors.New("disk says no")
		opts.Datastore = failQuery{Batching: opts.Datastore, prefix: "/blobservice/public", err: failed}
		n, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		err = n.Start(t.Context())
		if !errors.Is(err, failed) || !strings.HasPrefix(err.Error(), "peer: start blobs: ") {
			t.Fatalf("Start = %v, want the blobs' failure, naming them", err)
		}
		if n.Store() == nil {
			t.Fatal("the store was not built before the blobs")
		}
		// Closed, not merely never started: it was started before the
		// blobs, and stopped after them.
		if _, err := n.Store().Status(t.Context()); !errors.Is(err, storeservice.ErrClosed) {
			t.Errorf("the store after a failed Start: %v, want it closed", err)
		}
		if addrs := n.Host().Network().ListenAddresses(); len(addrs) != 0 {
			t.Errorf("the host still listens on %v after a failed Start", addrs)
		}
		if err := n.Close(); err != nil {
			t.Errorf("Close after a failed Start: %v", err)
		}
	})
}

// failQuery is a datastore whose queries under prefix fail with err.
type failQuery struct {
	ds.Batching
	prefix string
	err    error
}

func (f failQuery) Query(ctx context.Context, q query.Query) (query.Results, error) {
	if strings.HasPrefix(q.Prefix, f.prefix) {
		return nil, f.err
	}
	return f.Batching.Query(ctx, q)
}

// TestNodeRiders: the node's wiring registers the chain as a rider on its
// cell's gossip, under its topic and the announcement's limit; another
// rider registers beside it, and the chain's topic cannot be taken twice.
func TestNodeRiders(t *testing.T) {
	n := startNode(t, loopbackOptions(t, 7))
	st := n.Topics().Stats()
	if got, ok := st.Topics[replica.Topic]; !ok || got.Limit != chain.MaxAnnounce {
		t.Errorf("topics after Start: %+v, want %q with limit %d", st.Topics, replica.Topic, chain.MaxAnnounce)
	}
	if err := n.Topics().Register(replica.Topic, gossip.HandlerFunc(func([]byte) {}), 0); !errors.Is(err, gossip.ErrTopicExists) {
		t.Errorf("a second rider on the chain's topic: %v, want gossip.ErrTopicExists", err)
	}
	if err := n.Topics().Register("presence", gossip.HandlerFunc(func([]byte) {}), 64); err != nil {
		t.Errorf("another rider: %v", err)
	}
	// In no cell, nothing is broadcast.
	if err := n.Cell().Broadcast("presence", []byte("here")); !errors.Is(err, cell.ErrNoCell) {
		t.Errorf("Broadcast in no cell: %v, want cell.ErrNoCell", err)
	}
}

// With Options.Blobs, the node keeps blob blocks there and the chain's
// blocks in Datastore.
func TestNodeKeepsBlobBlocksApart(t *testing.T) {
	opts := loopbackOptions(t, 9)
	blobs, err := flatfs.CreateOrOpen(t.TempDir(), flatfs.NextToLast(2), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	opts.Blobs = blobs
	n := startNode(t, opts)
	leaf := blocks.NewBlock([]byte("a leaf of a file"))
	entryCID, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: multihash.SHA2_256, MhLength: -1}.Sum([]byte("entry"))
	if err != nil {
		t.Fatal(err)
	}
	entry, err := blockformat.NewBlockWithCid([]byte("entry"), entryCID)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Blocks().PutMany(t.Context(), []blockformat.Block{leaf, entry}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		d   ds.Datastore
		key ds.Key
	}{
		{blobs, dshelp.MultihashToDsKey(leaf.Cid().Hash())},
		{opts.Datastore, ds.NewKey("/blocks").Child(dshelp.MultihashToDsKey(entry.Cid().Hash()))},
	} {
		if has, err := w.d.Has(t.Context(), w.key); err != nil || !has {
			t.Errorf("Has(%s) = %v, %v; want true", w.key, has, err)
		}
	}
	if u, err := n.Blocks().Usage(t.Context()); err != nil || u != (blocks.Usage{Blocks: 1, Bytes: int64(len(leaf.RawData()))}) {
		t.Errorf("Usage = %+v, %v; want the leaf alone", u, err)
	}
}

// TestNodePinsReadTheNodesClock: the node's pins take its clock (Options.Now),
// like every other part: a pin made on a node whose clock reads 2030 was
// made in 2030, not at the machine's time.
func TestNodePinsReadTheNodesClock(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	opts := loopbackOptions(t, 10)
	opts.Now = func() time.Time { return at }
	n := startNode(t, opts)
	root := blocks.NewBlock([]byte("a pinned leaf")).Cid()
	if err := n.Pins().Pin(t.Context(), root, "test"); err != nil {
		t.Fatal(err)
	}
	p, ok, err := n.Pins().Get(t.Context(), root)
	if err != nil || !ok {
		t.Fatalf("Get = %+v, %v, %v; want the pin", p, ok, err)
	}
	if !p.Since.Equal(at) {
		t.Errorf("pin made at %v, want the node's clock's %v", p.Since, at)
	}
}
