package gossip

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
)

// noDirect is a connection gater that lets a host reach other only
// through a circuit relay, as if both sat behind NATs that no hole punch
// passes.
type noDirect struct{ other peer.ID }

func relayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

func (g noDirect) InterceptPeerDial(peer.ID) bool { return true }
func (g noDirect) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	return p != g.other || relayed(a)
}
func (g noDirect) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (g noDirect) InterceptSecured(_ network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	return p != g.other || relayed(c.RemoteMultiaddr())
}
func (g noDirect) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// newGatedHost is newRealHost with the relay client on and gater g.
func newGatedHost(t *testing.T, key crypto.PrivKey, g noDirect) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.EnableRelay(),
		libp2p.ConnectionGater(g),
	)
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

// TestRelayOnlyMemberNotFailed: two members that reach each other only
// through a circuit relay with libp2p's default limits (so the
// connection is Limited) join, probe and gossip over it, and neither is
// ever seen dead. With two members nobody probes indirectly: only
// streams on the limited connection keep them alive. Real hosts on
// loopback, real time.
func TestRelayOnlyMemberNotFailed(t *testing.T) {
	const seed = 40
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	r := newRealHost(t, testKey(seed, 9))
	rl, err := relay.New(r)
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	defer rl.Close()
	ka, kv := testKey(seed, 0), testKey(seed, 1)
	ida, _ := peer.IDFromPrivateKey(ka)
	idv, _ := peer.IDFromPrivateKey(kv)
	a := newGatedHost(t, ka, noDirect{other: idv})
	v := newGatedHost(t, kv, noDirect{other: ida})
	rinfo := peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	if err := v.Connect(ctx, rinfo); err != nil {
		t.Fatalf("V to the relay: %v", err)
	}
	if _, err := client.Reserve(ctx, v, rinfo); err != nil {
		t.Fatalf("reservation: %v", err)
	}
	circuit := ma.StringCast("/p2p/" + r.ID().String() + "/p2p-circuit")
	var addrs []ma.Multiaddr
	for _, ra := range r.Addrs() {
		addrs = append(addrs, ra.Encapsulate(circuit))
	}
	a.Peerstore().AddAddrs(v.ID(), addrs, time.Hour)
	introduce(a, r)
	// Both ends see a direct dial refused.
	a.Peerstore().AddAddrs(v.ID(), v.Addrs(), time.Hour)

	ros := newRoster(ida, idv)
	ma0 := startMembership(t, a, testConfig(seed, ka, ros, fastTiming()))
	mv := startMembership(t, v, testConfig(seed, kv, ros, fastTiming()))
	if _, err := ma0.Join(ctx, []peer.ID{idv}); err != nil {
		t.Fatalf("join over the relay: %v", err)
	}
	if cn := a.Network().Connectedness(idv); cn != network.Limited {
		t.Fatalf("A sees V %v, want Limited (relayed only)", cn)
	}
	if _, ok := waitUntil(10*time.Second, 50*time.Millisecond, func() bool {
		return sees(ma0, ida, idv) && sees(mv, ida, idv)
	}); !ok {
		t.Fatalf("no convergence over the relay: A sees %v, V sees %v", ma0.Members(), mv.Members())
	}
	// 25 probe rounds each way; a member probed over nothing but failed
	// streams is declared dead within 4 s here (6 × 3 × 200 ms).
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if st, _ := stateOf(ma0, idv); st == StateDead {
			t.Fatalf("A saw V, reachable through the relay, dead")
		}
		if st, _ := stateOf(mv, ida); st == StateDead {
			t.Fatalf("V saw A, reachable through the relay, dead")
		}
	}
	if cn := a.Network().Connectedness(idv); cn != network.Limited {
		t.Errorf("A sees V %v at the end, want Limited", cn)
	}
	// Probes went as packets over the relay, not only as memberlist's
	// fallback pings over streams.
	for name, m := range map[string]*Membership{"A": ma0, "V": mv} {
		if st := m.Stats(); st.PacketsReceived == 0 || st.PacketsFailed != 0 {
			t.Errorf("%s: %d packets received, %d failed over the relay; want some, and none failed", name, st.PacketsReceived, st.PacketsFailed)
		}
	}
}
