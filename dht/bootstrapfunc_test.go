package dht

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"
)

// TestBootstrapPeersUnion: the bootstrap peers are the configured ones,
// then those of BootstrapFunc that are new, dialable and not this node.
func TestBootstrapPeersUnion(t *testing.T) {
	h, priv := loopbackHost(t)
	defer h.Close()
	_, p1 := newKey(t)
	_, p2 := newKey(t)
	_, p3 := newKey(t)
	addrs := h.Addrs()
	d, err := New(h, priv, nil, Config{
		Bootstrap: []peer.AddrInfo{{ID: p1, Addrs: addrs}},
		BootstrapFunc: func() []peer.AddrInfo {
			return []peer.AddrInfo{{ID: p1, Addrs: addrs}, {ID: p2, Addrs: addrs}, {ID: h.ID(), Addrs: addrs}, {ID: p3}}
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []peer.ID
	for _, ai := range d.BootstrapPeers() {
		ids = append(ids, ai.ID)
	}
	if want := []peer.ID{p1, p2}; !slices.Equal(ids, want) {
		t.Fatalf("bootstrap peers %v, want %v", ids, want)
	}
}

// TestBootstrapFuncUsed: a DHT with no configured bootstrap peer joins
// the peer BootstrapFunc gives, read when kad-dht needs peers (here set
// after New), as the node's known public members are.
func TestBootstrapFuncUsed(t *testing.T) {
	defer goleak.VerifyNone(t)
	hb, privb := loopbackHost(t)
	defer hb.Close()
	b, err := New(hb, privb, nil, Config{Mode: ModeServer}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	ha, priva := loopbackHost(t)
	defer ha.Close()
	var known atomic.Pointer[peer.AddrInfo]
	a, err := New(ha, priva, nil, Config{Mode: ModeServer, BootstrapFunc: func() []peer.AddrInfo {
		if ai := known.Load(); ai != nil {
			return []peer.AddrInfo{*ai}
		}
		return nil
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	known.Store(&peer.AddrInfo{ID: hb.ID(), Addrs: hb.Addrs()})
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	waitFor(t, 10*time.Second, "b in a's routing table", func() bool { return a.RoutingTableSize() > 0 })
}
