package peer

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/discovery"
)

// memberAlive reports whether n's cell sees member id alive.
func memberAlive(n *Node, id peer.ID) bool {
	info, err := n.Cell().Members()
	return err == nil && slices.ContainsFunc(info.Members, func(m cell.MemberStatus) bool {
		return m.Peer == id && m.State == "alive"
	})
}

// TestNodeFindsCellAfterRestart: b joins a's cell (bootstrapped to a), then
// restarts on its datastore with no bootstrap peer and no mDNS; it finds
// a again from its known table (a listens on the same fixed port), and the
// cell's gossip sees both alive.
func TestNodeFindsCellAfterRestart(t *testing.T) {
	ctx := t.Context()
	off := false
	aopts := loopbackOptions(t, 41)
	aopts.Cell = fastCell
	aopts.Network = RealNetwork(datadir.NetworkConfig{Port: freeLoopbackPort(t), ListenIPs: []string{"127.0.0.1"}, MDNS: &off}, aopts.Logger)
	a := startNode(t, aopts)
	bopts := loopbackOptions(t, 42, addrInfo(a))
	bopts.Cell = fastCell
	b := startNode(t, bopts)
	if _, err := a.Cell().Create(ctx, "home", "a"); err != nil {
		t.Fatal(err)
	}
	code, _, err := a.Cell().Invite(cell.InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := b.Cell().Join(jctx, code.String(), "b"); err != nil {
		t.Fatalf("Join: %v", err)
	}
	key := ds.NewKey(discovery.KnownPrefix).ChildString(a.ID().String())
	eventually(t, 20*time.Second, "a in b's known table", func() bool {
		ok, _ := bopts.Datastore.Has(ctx, key)
		return ok
	})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	ropts := bopts
	ropts.Discovery.Bootstrap, ropts.DHT.Bootstrap = nil, nil
	ropts.Network = RealNetwork(datadir.NetworkConfig{Port: -1, ListenIPs: []string{"127.0.0.1"}, MDNS: &off}, ropts.Logger)
	r := startNode(t, ropts)
	eventually(t, 30*time.Second, "restarted b connected to a from its known table", func() bool {
		return hasPeer(r, a.ID(), discovery.SourceKnown)
	})
	eventually(t, 30*time.Second, "a and b alive in each other's cell view", func() bool {
		return memberAlive(r, a.ID()) && memberAlive(a, r.ID())
	})
}

// knownEntry is a known-table entry of a public peer at addr, seen at
// seen, in the format discovery's package doc gives.
func knownEntry(addr ma.Multiaddr, seen time.Time) []byte {
	b := []byte{1}
	b = binary.BigEndian.AppendUint64(b, uint64(seen.UnixNano()))
	b = append(b, 1, 0, 0, 1) // public; no record; one address
	b = binary.BigEndian.AppendUint16(b, uint16(len(addr.Bytes())))
	return append(b, addr.Bytes()...)
}

// TestNodeDHTBootstrapsFromKnown: the known table's entry of a member of
// the node's cell, last seen at a public address, is among the DHT's
// bootstrap peers of the node restarted on that datastore (a stranger's,
// rejected by Interesting, is not: TestKnownRemovedNotBootstrap). The address is public by the table's rule
// (manet.IsPublicAddr) but webrtc-direct, which no transport of the node
// dials: no packet leaves loopback.
func TestNodeDHTBootstrapsFromKnown(t *testing.T) {
	ctx := t.Context()
	aopts := loopbackOptions(t, 43)
	aopts.Cell = fastCell
	a := startNode(t, aopts)
	bopts := loopbackOptions(t, 44, addrInfo(a))
	bopts.Cell = fastCell
	b := startNode(t, bopts)
	if _, err := a.Cell().Create(ctx, "home", "a"); err != nil {
		t.Fatal(err)
	}
	code, _, err := a.Cell().Invite(cell.InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := b.Cell().Join(jctx, code.String(), "b"); err != nil {
		t.Fatalf("Join: %v", err)
	}
	eventually(t, 20*time.Second, "b in a's roster", func() bool {
		r := a.Cell().Roster()
		return r != nil && r.Has(b.ID())
	})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	pub := ma.StringCast("/ip4/11.213.0.7/udp/4001/webrtc-direct")
	if err := aopts.Datastore.Put(ctx, ds.NewKey(discovery.KnownPrefix).ChildString(b.ID().String()),
		knownEntry(pub, time.Now())); err != nil {
		t.Fatal(err)
	}
	ropts := aopts
	ropts.Discovery.Bootstrap, ropts.DHT.Bootstrap = nil, nil
	r := startNode(t, ropts)
	eventually(t, 20*time.Second, "the roster read", func() bool { return r.Cell().Roster() != nil })
	bp := r.DHT().BootstrapPeers()
	if !slices.ContainsFunc(bp, func(ai peer.AddrInfo) bool {
		return ai.ID == b.ID() && slices.ContainsFunc(ai.Addrs, pub.Equal)
	}) {
		t.Fatalf("DHT bootstrap peers %v lack the known public member %s", bp, b.ID())
	}
}

// TestNodeFindsMovedMember: a and b are in one cell and use c, not a
// member, as their DHT (as clients). While b is down, a moves to another port; b,
// restarted, holds only a's old address, and finds a again through the
// cell's rendezvous on the DHT.
func TestNodeFindsMovedMember(t *testing.T) {
	ctx := t.Context()
	off := false
	onNewPort := func(o Options) Options {
		o.Network = RealNetwork(datadir.NetworkConfig{Port: -1, ListenIPs: []string{"127.0.0.1"}, MDNS: &off}, o.Logger)
		return o
	}
	c := startNode(t, loopbackOptions(t, 51))
	member := func(seed byte) Options {
		o := loopbackOptions(t, seed, addrInfo(c))
		o.Cell = fastCell
		o.Discovery.RendezvousInterval = 200 * time.Millisecond
		// DHT clients: c's routing table does not hold them, so that its
		// lookups do not lead one to the other; only the rendezvous's
		// provider records, stored on c, do.
		o.DHT.Mode = dht.ModeClient
		return o
	}
	aopts, bopts := member(52), member(53)
	a, b := startNode(t, aopts), startNode(t, bopts)
	if _, err := a.Cell().Create(ctx, "home", "a"); err != nil {
		t.Fatal(err)
	}
	// The invite's own rendezvous is advertised until it expires, and
	// would lead b to a too: it expires before the move.
	code, expires, err := a.Cell().Invite(cell.InviteOptions{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	jctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := b.Cell().Join(jctx, code.String(), "b"); err != nil {
		t.Fatalf("Join: %v", err)
	}
	key := ds.NewKey(discovery.KnownPrefix).ChildString(a.ID().String())
	eventually(t, 20*time.Second, "a in b's known table", func() bool {
		ok, _ := bopts.Datastore.Has(ctx, key)
		return ok
	})
	time.Sleep(time.Until(expires) + time.Second)
	old := a.Host().Addrs()
	for _, n := range []*Node{b, a} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}

	a2 := startNode(t, onNewPort(aopts))
	if slices.ContainsFunc(a2.Host().Addrs(), func(x ma.Multiaddr) bool { return slices.ContainsFunc(old, x.Equal) }) {
		t.Fatalf("a listens on %v again, not moved from %v", a2.Host().Addrs(), old)
	}
	b2 := startNode(t, onNewPort(bopts))
	eventually(t, 30*time.Second, "b connected to the moved a", func() bool {
		return slices.ContainsFunc(b2.Discovery().Peers(), func(p discovery.PeerInfo) bool { return p.ID == a2.ID() })
	})
	eventually(t, 30*time.Second, "a and b alive in each other's cell view", func() bool {
		return memberAlive(b2, a2.ID()) && memberAlive(a2, b2.ID())
	})
}
