package discovery

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestConnect(t *testing.T) {
	verifyNoLeaks(t)
	a := newNode(t, testConfig(), nil, nil)
	b := newNode(t, testConfig(), nil, nil)
	if err := a.svc.Connect(t.Context(), info(b.h)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	listedWith(t, a.svc, b.h.ID(), SourceManual)
	listedWith(t, b.svc, a.h.ID(), SourceInbound)
}

func TestConnectErrors(t *testing.T) {
	verifyNoLeaks(t)
	a := newNode(t, testConfig(), nil, nil)
	tests := []struct {
		name    string
		ai      func(t *testing.T) peer.AddrInfo
		wantErr error // nil: any error
	}{
		{"this node", func(*testing.T) peer.AddrInfo { return info(a.h) }, nil},
		{"nothing listening", func(t *testing.T) peer.AddrInfo { return deadAddrInfo(t) }, nil},
		{"no address", func(t *testing.T) peer.AddrInfo { return peer.AddrInfo{ID: deadAddrInfo(t).ID} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ai := tt.ai(t)
			err := a.svc.Connect(t.Context(), ai)
			if err == nil {
				t.Fatal("Connect = nil, want an error")
			}
			if errors.Is(err, ErrNotExopeer) || errors.Is(err, ErrClosed) {
				t.Errorf("Connect = %v, want a dial error", err)
			}
			if _, ok := findPeer(a.svc, ai.ID); ok {
				t.Error("the peer is listed")
			}
		})
	}
}

func TestConnectNotExopeer(t *testing.T) {
	verifyNoLeaks(t)
	a := newNode(t, testConfig(), nil, nil)
	plain := newHost(t) // a libp2p host without ProtocolPing
	err := a.svc.Connect(t.Context(), info(plain))
	if !errors.Is(err, ErrNotExopeer) {
		t.Fatalf("Connect = %v, want %v", err, ErrNotExopeer)
	}
	eventually(t, 5*time.Second, "disconnected from the plain host", func() bool {
		return a.h.Network().Connectedness(plain.ID()) != network.Connected
	})
	if _, ok := findPeer(a.svc, plain.ID()); ok {
		t.Error("a peer that does not speak exopeer is listed")
	}
	e, ok := entryOf(a.svc, plain.ID())
	if !ok {
		t.Fatal("a hand-added peer was forgotten")
	}
	if !e.sticky || time.Until(e.ignoredUntil) < 30*time.Minute {
		t.Errorf("entry sticky=%v ignoredUntil=%v, want sticky and ignored for IgnoreFor (1h)", e.sticky, e.ignoredUntil)
	}
}

func TestPeerConnectedBeforeStartIsListed(t *testing.T) {
	verifyNoLeaks(t)
	h := newHost(t)
	out := newNode(t, testConfig(), nil, nil) // we dial it
	in := newNode(t, testConfig(), nil, nil)  // it dials us
	plain := newHost(t)                       // not an exopeer peer
	if err := h.Connect(t.Context(), info(out.h)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if err := in.h.Connect(t.Context(), info(h)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if err := h.Connect(t.Context(), info(plain)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	// Identify has run on h's side for the outbound connections (Connect
	// waits for it); wait for the inbound one too.
	eventually(t, 5*time.Second, "identify of the inbound peer", func() bool {
		ok, _ := h.Peerstore().SupportsProtocols(in.h.ID(), ProtocolPing)
		return len(ok) > 0
	})

	svc, err := New(h, testConfig(), nil, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	listedWith(t, svc, out.h.ID(), SourceDHT)
	listedWith(t, svc, in.h.ID(), SourceInbound)
	if _, ok := findPeer(svc, plain.ID()); ok {
		t.Error("the plain host is listed")
	}
	// Connect to a peer already connected and listed is a no-op success.
	if err := svc.Connect(t.Context(), info(out.h)); err != nil {
		t.Errorf("Connect to a listed peer: %v", err)
	}
	listedWith(t, svc, out.h.ID(), SourceDHT, SourceManual)
}

// TestConnectWhileInboundIdentifyRuns connects by hand to a peer that has
// just connected to us, while our identify of that connection may still be
// in flight: Connect must wait for identify rather than judge the peer on
// an empty protocol list.
func TestConnectWhileInboundIdentifyRuns(t *testing.T) {
	verifyNoLeaks(t)
	a := newNode(t, testConfig(), nil, nil)
	for i := range 10 {
		b := newNode(t, testConfig(), nil, nil)
		// A bare swarm dial returns before identify, unlike host.Connect.
		b.h.Peerstore().AddAddrs(a.h.ID(), a.h.Addrs(), time.Minute)
		if _, err := b.h.Network().DialPeer(t.Context(), a.h.ID()); err != nil {
			t.Fatalf("round %d: DialPeer: %v", i, err)
		}
		if err := a.svc.Connect(t.Context(), info(b.h)); err != nil {
			t.Fatalf("round %d: Connect to an exopeer peer that just dialled us: %v", i, err)
		}
		// Listed as manual, and as inbound if identify won the race.
		eventually(t, 10*time.Second, "listing the peer as manual", func() bool {
			p, ok := findPeer(a.svc, b.h.ID())
			return ok && slices.Contains(p.Sources, SourceManual)
		})
	}
}

// TestFoundWhileInboundIdentifyRuns is the same race through the dial loop.
func TestFoundWhileInboundIdentifyRuns(t *testing.T) {
	verifyNoLeaks(t)
	a := newNode(t, testConfig(), nil, nil)
	for i := range 10 {
		b := newNode(t, testConfig(), nil, nil)
		b.h.Peerstore().AddAddrs(a.h.ID(), a.h.Addrs(), time.Minute)
		if _, err := b.h.Network().DialPeer(t.Context(), a.h.ID()); err != nil {
			t.Fatalf("round %d: DialPeer: %v", i, err)
		}
		a.svc.Found(SourceMDNS, info(b.h))
		eventually(t, 10*time.Second, "listing the peer", func() bool {
			_, ok := findPeer(a.svc, b.h.ID())
			return ok
		})
		if e, _ := entryOf(a.svc, b.h.ID()); !e.ignoredUntil.IsZero() {
			t.Fatalf("round %d: an exopeer peer was ignored", i)
		}
	}
}
