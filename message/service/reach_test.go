package service

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// fakeFinder answers FindPeer with ai, or err; it counts the calls.
type fakeFinder struct {
	mu    sync.Mutex
	ai    peer.AddrInfo
	err   error
	calls int
}

func (f *fakeFinder) FindPeer(_ context.Context, id peer.ID) (peer.AddrInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return peer.AddrInfo{}, f.err
	}
	if f.ai.ID != id {
		return peer.AddrInfo{}, errors.New("fake finder: not found")
	}
	return f.ai, nil
}

// TestReach: before a handshake the device is connected to through the
// peerstore's addresses, else the Finder's; a device already connected
// is left as it is, and one with no address and no Finder is
// errNoAddress.
func TestReach(t *testing.T) {
	for _, tc := range []struct {
		name      string
		connected bool // a and b connected before
		known     bool // a's peerstore has b's address
		finder    *fakeFinder
		wantErr   error
		calls     int
	}{
		{name: "connected", connected: true, finder: &fakeFinder{}},
		{name: "peerstore", known: true, finder: &fakeFinder{}},
		{name: "peerstore, no finder", known: true},
		{name: "finder", finder: &fakeFinder{}, calls: 1},
		{name: "not found", finder: &fakeFinder{err: errFinder}, wantErr: errFinder, calls: 1},
		{name: "no address, no finder", wantErr: errNoAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mn := mocknet.New()
			t.Cleanup(func() { _ = mn.Close() })
			var hosts []peer.AddrInfo
			for i := range 2 {
				seed := make([]byte, 32)
				seed[0] = byte(i + 1)
				key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
				if err != nil {
					t.Fatal(err)
				}
				addr := ma.StringCast("/ip4/10.0.0." + string(rune('1'+i)) + "/tcp/4001")
				h, err := mn.AddPeer(key, addr)
				if err != nil {
					t.Fatal(err)
				}
				hosts = append(hosts, peer.AddrInfo{ID: h.ID(), Addrs: []ma.Multiaddr{addr}})
			}
			if err := mn.LinkAll(); err != nil {
				t.Fatal(err)
			}
			a, b := mn.Host(hosts[0].ID), hosts[1]
			if tc.connected {
				if _, err := mn.ConnectPeers(a.ID(), b.ID); err != nil {
					t.Fatal(err)
				}
			}
			if tc.known {
				a.Peerstore().AddAddrs(b.ID, b.Addrs, time.Hour)
			}
			s := &Service{h: a}
			if tc.finder != nil {
				tc.finder.ai = b
				s.finder = tc.finder
			}
			err := s.reach(t.Context(), b.ID)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("reach: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("reach: %v, want %v", err, tc.wantErr)
			}
			if got := a.Network().Connectedness(b.ID) == network.Connected; got != (tc.wantErr == nil) {
				t.Fatalf("connected %v after reach (%v)", got, err)
			}
			if tc.finder != nil && tc.finder.calls != tc.calls {
				t.Fatalf("the finder was asked %d times, want %d", tc.finder.calls, tc.calls)
			}
		})
	}
}

// errFinder is a lookup that found nothing.
var errFinder = errors.New("fake finder: no such peer")
