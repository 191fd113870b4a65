package blocks

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/exopeer/exopeer/dht"
)

// startDHT runs the exopeer DHT on n's host in mode, bootstrapping from
// boot (if not nil); it is closed when the test ends, before the host.
func startDHT(t *testing.T, n *node, mode dht.Mode, boot *node) *dht.DHT {
	t.Helper()
	cfg := dht.DefaultConfig()
	cfg.Mode, cfg.LAN = mode, false
	if boot != nil {
		cfg.Bootstrap = []peer.AddrInfo{{ID: boot.host.ID(), Addrs: boot.host.Addrs()}}
	}
	d, err := dht.New(n.host, n.host.Peerstore().PrivKey(n.host.ID()), nil, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("closing DHT: %v", err)
		}
	})
	// Start returns before the bootstrap peer is in the routing table
	// (it is added once its DHT protocol is identified); a Provide before
	// that finds no peer, so the test waits for it (bounded).
	if boot != nil {
		deadline := time.Now().Add(fetchTimeout)
		for d.RoutingTableSize() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the bootstrap peer is not in the routing table after %v", fetchTimeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return d
}

// routerSpy passes provider searches to the DHT and records their keys.
type routerSpy struct {
	d *dht.DHT

	mu   sync.Mutex
	keys []cid.Cid
}

func (s *routerSpy) FindProvidersAsync(ctx context.Context, c cid.Cid, n int) <-chan peer.AddrInfo {
	s.mu.Lock()
	s.keys = append(s.keys, c)
	s.mu.Unlock()
	return s.d.Routing().FindProvidersAsync(ctx, c, n)
}

func (s *routerSpy) asked() []cid.Cid {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys)
}

// A fetcher that knows no holder of a public blob finds one through the
// DHT, asking for the root's providers; for a private block it asks the
// DHT nothing.
func TestProvidersPublicOnly(t *testing.T) {
	// The DHT: one server; the seeder and the fetcher are clients, so
	// neither learns of the other from the routing table.
	boot := newNode(t, Config{}, false)
	startDHT(t, boot, dht.ModeServer, nil)
	seeder := newNode(t, Config{}, true)
	seederDHT := startDHT(t, seeder, dht.ModeClient, boot)
	spy := &routerSpy{}
	provs := NewProviders(func() routing.ContentDiscovery { return spy })
	fetcher := newNode(t, Config{ProviderFinder: provs, ProviderSearchDelay: 50 * time.Millisecond}, true)
	spy.d = startDHT(t, fetcher, dht.ModeClient, boot)

	blks, cids := makeBlocks(9, 16<<10)
	root, rest := cids[0], cids[1:]
	private := NewBlock([]byte("a private blob's block"))
	if err := seeder.ex.PutMany(t.Context(), append(blks, private)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), fetchTimeout)
	defer cancel()
	if err := seederDHT.Provide(ctx, root); err != nil {
		t.Fatalf("Provide: %v", err)
	}
	if c := fetcher.host.Network().Connectedness(seeder.host.ID()); c == network.Connected {
		t.Fatal("the fetcher is connected to the seeder before the search")
	}

	t.Run("private", func(t *testing.T) {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		sess := fetcher.ex.NewSession(pctx, SessionOptions{})
		defer sess.Close()
		if _, err := sess.GetBlocks(pctx, []cid.Cid{private.Cid()}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("GetBlocks(private) err = %v, want context.DeadlineExceeded", err)
		}
		if got := spy.asked(); len(got) != 0 {
			t.Errorf("the DHT was asked for %v; want nothing", got)
		}
	})

	t.Run("public", func(t *testing.T) {
		untrack := provs.Track(root, rest)
		defer untrack()
		sess := fetcher.ex.NewSession(ctx, SessionOptions{})
		defer sess.Close()
		if _, err := sess.GetBlocks(ctx, []cid.Cid{root}); err != nil {
			t.Fatalf("GetBlocks(root): %v", err)
		}
		if _, err := sess.GetBlocks(ctx, rest); err != nil {
			t.Fatalf("GetBlocks(rest): %v", err)
		}
		if st := sess.Stats(); st.Peers[seeder.host.ID()].Blocks != int64(len(cids)) {
			t.Errorf("Stats = %+v, want all %d blocks from the seeder", st, len(cids))
		}
		for _, k := range spy.asked() {
			if k != root {
				t.Errorf("the DHT was asked for %s; want the root %s only", k, root)
			}
		}
		if len(spy.asked()) == 0 {
			t.Error("the DHT was never asked: the seeder was found some other way")
		}
	})

	t.Run("untracked", func(t *testing.T) {
		provs.Track(root, rest)()
		for _, c := range cids {
			if _, ok := <-provs.FindProvidersAsync(ctx, c, 0); ok {
				t.Errorf("providers of %s after untrack: got some", c)
			}
		}
		if len(provs.roots) != 0 {
			t.Errorf("%d CIDs still tracked", len(provs.roots))
		}
	})
}

// chanRouter answers each search with a channel the test feeds.
type chanRouter struct {
	mu       sync.Mutex
	searches []cid.Cid
	ch       chan peer.AddrInfo
}

func (r *chanRouter) FindProvidersAsync(_ context.Context, c cid.Cid, _ int) <-chan peer.AddrInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.searches = append(r.searches, c)
	return r.ch
}

// Bitswap asks for every block a fetch is stuck on: one search of the
// root runs at a time, and the next can start once it is over.
func TestProvidersOneSearchPerRoot(t *testing.T) {
	r := &chanRouter{ch: make(chan peer.AddrInfo, 1)}
	p := NewProviders(func() routing.ContentDiscovery { return r })
	_, cids := makeBlocks(3, 16)
	defer p.Track(cids[0], cids[1:])()

	first := p.FindProvidersAsync(t.Context(), cids[1], 0)
	if _, ok := <-p.FindProvidersAsync(t.Context(), cids[2], 0); ok {
		t.Error("a second search while the first runs gave a provider")
	}
	r.ch <- peer.AddrInfo{ID: "seeder"}
	if ai := <-first; ai.ID != "seeder" {
		t.Errorf("first search gave %v, want the seeder", ai)
	}
	close(r.ch)
	if _, ok := <-first; ok {
		t.Error("first search: channel not closed after the router's")
	}
	r.mu.Lock()
	got := slices.Clone(r.searches)
	r.mu.Unlock()
	if len(got) != 1 || got[0] != cids[0] {
		t.Errorf("router asked for %v, want the root %s once", got, cids[0])
	}
	// Over: the next ask searches again.
	r.ch = make(chan peer.AddrInfo)
	close(r.ch)
	for range p.FindProvidersAsync(t.Context(), cids[2], 0) {
	}
	if r.mu.Lock(); len(r.searches) != 2 {
		t.Errorf("after the first search ended, %d searches, want 2", len(r.searches))
	}
	r.mu.Unlock()
}
