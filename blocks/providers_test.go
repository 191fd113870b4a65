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
