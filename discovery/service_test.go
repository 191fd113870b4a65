package discovery

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// listedWith waits until s lists id with exactly the sources want and a
// measured round trip, and returns the entry.
func listedWith(t *testing.T, s *Service, id peer.ID, want ...Source) PeerInfo {
	t.Helper()
	var got PeerInfo
	var listed bool
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, listed = findPeer(s, id)
		if listed && got.RTT > 0 && slices.Equal(got.Sources, want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s not listed with %s and an RTT: listed=%v sources=%s rtt=%v; connectedness %v",
				id, fmtSources(want), listed, fmtSources(got.Sources), got.RTT, s.h.Network().Connectedness(id))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fmtSources(s []Source) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += string(x)
	}
	return out + "]"
}

func TestFoundPeerIsConnectedAndListed(t *testing.T) {
	tests := []struct {
		name string
		src  Source
	}{
		{"lan", SourceMDNS},
		{"dht", SourceDHT},
		{"manual", SourceManual},
		{"bootstrap", SourceBootstrap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifyNoLeaks(t)
			a := newNode(t, testConfig(), nil, nil)
			b := newNode(t, testConfig(), nil, nil)
			before := time.Now()
			a.svc.Found(tt.src, info(b.h))

			got := listedWith(t, a.svc, b.h.ID(), tt.src)
			if got.Addr == nil || !slices.ContainsFunc(b.h.Addrs(), got.Addr.Equal) {
				t.Errorf("Addr = %v, want one of %v", got.Addr, b.h.Addrs())
			}
			if got.ConnectedSince.Before(before) || got.ConnectedSince.After(time.Now()) {
				t.Errorf("ConnectedSince = %v, want between %v and now", got.ConnectedSince, before)
			}
			// The other side lists us as having connected to it.
			listedWith(t, b.svc, a.h.ID(), SourceInbound)
		})
	}
}

func TestPeersIsSortedAndOnlyExopeer(t *testing.T) {
	verifyNoLeaks(t)
	a := newNode(t, testConfig(), nil, nil)
	var want []peer.ID
	for range 4 {
		b := newNode(t, testConfig(), nil, nil)
		a.svc.Found(SourceDHT, info(b.h))
		want = append(want, b.h.ID())
	}
	// Connected but not an exopeer peer: never listed.
	plain := newHost(t)
	if err := plain.Connect(t.Context(), info(a.h)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	slices.Sort(want)
	eventually(t, 10*time.Second, "listing the 4 exopeer peers", func() bool { return len(a.svc.Peers()) == 4 })
	var got []peer.ID
	for _, p := range a.svc.Peers() {
		got = append(got, p.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Peers() IDs (-want +got):\n%s", diff)
	}
}

func TestSourcesAccumulateInOrder(t *testing.T) {
	verifyNoLeaks(t)
	a := newNode(t, testConfig(), nil, nil)
	b := newNode(t, testConfig(), nil, nil)
	a.svc.Found(SourceMDNS, info(b.h))
	listedWith(t, a.svc, b.h.ID(), SourceMDNS)
	if err := a.svc.Connect(t.Context(), info(b.h)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	a.svc.Found(SourceDHT, info(b.h))
	a.svc.Found(SourceMDNS, info(b.h)) // a source is listed once
	listedWith(t, a.svc, b.h.ID(), SourceMDNS, SourceManual, SourceDHT)
}

func TestFakeLAN(t *testing.T) {
	verifyNoLeaks(t)
	b := newNode(t, testConfig(), nil, nil)
	inbound := countInbound(t, b.h)
	// A LAN that hears b: the Service takes what a LAN reports as it is
	// (MDNS drops loopback addresses itself), so a simulated LAN segment
	// works on any addresses.
	lan := &fakeLAN{report: []peer.AddrInfo{info(b.h)}}
	a := newNode(t, testConfig(), lan, nil)

	if starts, _ := lan.counts(); starts != 1 {
		t.Fatalf("LAN started %d times, want 1", starts)
	}
	if lan.host != a.h {
		t.Error("LAN started with another host")
	}
	listedWith(t, a.svc, b.h.ID(), SourceMDNS)
	listedWith(t, b.svc, a.h.ID(), SourceInbound)
	if n := inbound.inbound.Load(); n != 1 {
		t.Errorf("b accepted %d connections, want 1", n)
	}

	if err := a.svc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, closes := lan.counts(); closes != 1 {
		t.Errorf("LAN closed %d times, want 1", closes)
	}
	// A LAN may report a peer shortly after Close: nothing happens.
	d := newNode(t, testConfig(), nil, nil)
	lan.hear(info(d.h))
	if _, ok := entryOf(a.svc, d.h.ID()); ok {
		t.Error("a peer heard after Close was recorded")
	}
}

func TestNonExopeerIsIgnored(t *testing.T) {
	verifyNoLeaks(t)
	a := newNode(t, testConfig(), nil, nil)
	plain := newHost(t)
	inbound := countInbound(t, plain)

	a.svc.Found(SourceMDNS, info(plain))
	eventually(t, 5*time.Second, "dialled once and disconnected", func() bool {
		e, _ := entryOf(a.svc, plain.ID())
		return inbound.inbound.Load() >= 1 && time.Now().Before(e.ignoredUntil) &&
			a.h.Network().Connectedness(plain.ID()) != network.Connected
	})
	// Found again and again while ignored: not dialled. The barrier is a
	// dead peer found at the same time: once it has been dialled
	// MaxFailures times and forgotten, the dial loop has run many times.
	for range 5 {
		a.svc.Found(SourceMDNS, info(plain))
	}
	dead := deadAddrInfo(t)
	a.svc.Found(SourceMDNS, dead)
	eventually(t, 10*time.Second, "forgetting the dead peer", func() bool {
		_, ok := entryOf(a.svc, dead.ID)
		return !ok
	})
	if n := inbound.inbound.Load(); n != 1 {
		t.Errorf("the ignored peer accepted %d connections, want 1", n)
	}
	if _, ok := findPeer(a.svc, plain.ID()); ok {
		t.Error("the ignored peer is listed")
	}

	// By hand, the user insists: dialled at once, and refused again.
	if err := a.svc.Connect(t.Context(), info(plain)); !errors.Is(err, ErrNotExopeer) {
		t.Errorf("Connect = %v, want %v", err, ErrNotExopeer)
	}
	if n := inbound.inbound.Load(); n < 2 {
		t.Errorf("after Connect the plain host accepted %d connections, want at least 2", n)
	}
}

func TestInboundNonExopeerIsNotListed(t *testing.T) {
	verifyNoLeaks(t)
	a := newNode(t, testConfig(), nil, nil)
	plain := newHost(t)
	if err := plain.Connect(t.Context(), info(a.h)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	// A control: an exopeer peer that connects. It answers pings but runs
	// no service, whose pings could dial us back after the close below.
	b := newHost(t)
	b.SetStreamHandler(ProtocolPing, servePing)
	if err := b.Connect(t.Context(), info(a.h)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	listedWith(t, a.svc, b.ID(), SourceInbound)
	if diff := cmp.Diff([]peer.ID{b.ID()}, idsOf(a.svc.Peers())); diff != "" {
		t.Errorf("Peers() (-want +got):\n%s", diff)
	}
	// The inbound exopeer peer leaves: it is forgotten, not redialled.
	if err := b.Network().ClosePeer(a.h.ID()); err != nil {
		t.Fatalf("ClosePeer: %v", err)
	}
	eventually(t, 5*time.Second, "forgetting the inbound peer", func() bool {
		_, ok := entryOf(a.svc, b.ID())
		return !ok
	})
	if got := a.svc.Peers(); len(got) != 0 {
		t.Errorf("Peers() = %v, want none", got)
	}
}

func idsOf(ps []PeerInfo) []peer.ID {
	var out []peer.ID
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func TestBootstrapIsRedialled(t *testing.T) {
	tests := []struct {
		name  string
		close func(a *node, b host.Host) error
	}{
		{"closed by us", func(a *node, b host.Host) error { return a.h.Network().ClosePeer(b.ID()) }},
		{"closed by them", func(a *node, b host.Host) error { return b.Network().ClosePeer(a.h.ID()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifyNoLeaks(t)
			// The bootstrap peer answers pings but runs no service, so only
			// a's redials connect the two again. (A service's pings would
			// dial back; see TestPingDoesNotDial.)
			b := newHost(t)
			b.SetStreamHandler(ProtocolPing, servePing)
			inbound := countInbound(t, b)
			cfg := testConfig()
			cfg.Bootstrap = []peer.AddrInfo{info(b)}
			a := newNode(t, cfg, nil, nil)

			prev := listedWith(t, a.svc, b.ID(), SourceBootstrap)
			for round := 2; round <= 3; round++ {
				if err := tt.close(a, b); err != nil {
					t.Fatalf("closing the connection: %v", err)
				}
				eventually(t, 10*time.Second, "redialled and listed again", func() bool {
					p, ok := findPeer(a.svc, b.ID())
					return inbound.inbound.Load() == int64(round) && ok && p.RTT > 0 &&
						p.ConnectedSince.After(prev.ConnectedSince)
				})
				got, _ := findPeer(a.svc, b.ID())
				if diff := cmp.Diff([]Source{SourceBootstrap}, got.Sources); diff != "" {
					t.Errorf("sources after redial (-want +got):\n%s", diff)
				}
				prev = got
			}
		})
	}
}

func TestDeadPeersForgottenUnlessSticky(t *testing.T) {
	tests := []struct {
		name      string
		src       Source
		forgotten bool
	}{
		{"lan", SourceMDNS, true},
		{"dht", SourceDHT, true},
		{"bootstrap", SourceBootstrap, false},
		{"manual", SourceManual, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifyNoLeaks(t)
			cfg := testConfig()
			cfg.MaxFailures = 2
			cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 40*time.Millisecond
			dead := deadAddrInfo(t)
			if tt.src == SourceBootstrap {
				cfg.Bootstrap = []peer.AddrInfo{dead}
			}
			a := newNode(t, cfg, nil, nil)
			if tt.src != SourceBootstrap {
				a.svc.Found(tt.src, dead)
			}
			if tt.forgotten {
				eventually(t, 10*time.Second, "forgotten", func() bool {
					_, ok := entryOf(a.svc, dead.ID)
					return !ok
				})
				// Found again, it is back with a fresh count (its first
				// dial may already have failed), and forgotten again.
				a.svc.Found(tt.src, dead)
				e, ok := entryOf(a.svc, dead.ID)
				if !ok || e.failures >= cfg.MaxFailures {
					t.Errorf("found again: recorded=%v failures=%d, want recorded with fewer than %d", ok, e.failures, cfg.MaxFailures)
				}
				eventually(t, 10*time.Second, "forgotten again", func() bool {
					_, ok := entryOf(a.svc, dead.ID)
					return !ok
				})
				return
			}
			// Never forgotten: still retried well past MaxFailures.
			eventually(t, 10*time.Second, "retried past MaxFailures", func() bool {
				e, ok := entryOf(a.svc, dead.ID)
				return ok && e.failures >= 3*cfg.MaxFailures
			})
			e, _ := entryOf(a.svc, dead.ID)
			if diff := cmp.Diff([]Source{tt.src}, e.sources); diff != "" {
				t.Errorf("sources (-want +got):\n%s", diff)
			}
		})
	}
}

func TestManyPeersWithOneDialAtATime(t *testing.T) {
	verifyNoLeaks(t)
	cfg := testConfig()
	cfg.MaxConcurrentDials = 1
	a := newNode(t, cfg, nil, nil)
	var want []peer.ID
	for range 3 {
		b := newNode(t, testConfig(), nil, nil)
		want = append(want, b.h.ID())
		a.svc.Found(SourceDHT, info(b.h))
	}
	a.svc.Found(SourceDHT, deadAddrInfo(t))
	slices.Sort(want)
	eventually(t, 10*time.Second, "connected to all three", func() bool {
		return cmp.Equal(want, idsOf(a.svc.Peers()), cmpopts.EquateEmpty())
	})
	a.svc.mu.Lock()
	inflight := a.svc.inflight
	a.svc.mu.Unlock()
	if inflight > 1 {
		t.Errorf("%d dials in flight, want at most 1", inflight)
	}
}
