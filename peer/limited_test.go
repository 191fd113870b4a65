package peer

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"

	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/discovery"
)

// TestLimitedRelayKeepsPeer: two nodes that meet only through a relay
// that limits its circuits (a third party's, with go-libp2p's default
// limits: the connection is Limited at both ends) still see each other
// as exopeer peers: discovery's ping opens its stream over the limited
// connection, and the Limited connectedness is not taken for a lost peer.
// Node A listens nowhere (it is behind NAT): no direct connection can
// replace the relayed one.
func TestLimitedRelayKeepsPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr := loopbackHost(t, 1)
	open := func(peer.ID) bool { return true }
	r, err := relay.New(hr, relay.WithResources(relay.DefaultResources()), relay.WithACL(relayACL{
		self: hr.ID(), member: open, contactDevice: func(peer.ID) (bool, error) { return true, nil },
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	aOpts := loopbackOptions(t, 2)
	aOpts.Network.NewHost = func(priv crypto.PrivKey) (host.Host, error) {
		return buildHost(priv, datadir.NetworkConfig{}, nil)
	}
	a := startNode(t, aOpts)
	b := startNode(t, loopbackOptions(t, 3))
	if len(a.Host().Addrs()) != 0 {
		t.Fatalf("A listens on %v, want nowhere", a.Host().Addrs())
	}
	if _, err := client.Reserve(ctx, a.Host(), peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := b.Host().Connect(ctx, circuitTo(t, hr, a.ID())); err != nil {
		t.Fatal(err)
	}
	if c := b.Host().Network().ConnsToPeer(a.ID()); len(c) != 1 || !c[0].Stat().Limited {
		t.Fatalf("B's connections to A: %v, want one, limited", c)
	}
	pinged := func() bool {
		return slices.ContainsFunc(b.Discovery().Peers(), func(p discovery.PeerInfo) bool {
			return p.ID == a.ID() && p.RTT > 0
		})
	}
	eventually(t, 10*time.Second, "B pings A through the limited relay", pinged)

	// A dials B directly (B listens), then that connection closes: B is
	// left with the limited one (connectedness Limited), and keeps A.
	if err := a.Host().Connect(network.WithForceDirectDial(ctx, "test"), addrInfo(b)); err != nil {
		t.Fatal(err)
	}
	var direct network.Conn
	eventually(t, 10*time.Second, "B sees A's direct connection", func() bool {
		for _, c := range b.Host().Network().ConnsToPeer(a.ID()) {
			if !c.Stat().Limited {
				direct = c
				return true
			}
		}
		return false
	})
	if err := direct.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "B is left with the limited connection", func() bool {
		return b.Host().Network().Connectedness(a.ID()) == network.Limited
	})
	// Discovery hears of the change asynchronously, and pings every
	// 200 ms here: a second later A must still be listed, pinged.
	time.Sleep(time.Second)
	if !pinged() {
		t.Fatal("B dropped A, still connected through the limited relay")
	}
}
