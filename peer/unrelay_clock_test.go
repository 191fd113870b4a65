package peer

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/internal/ambient"
)

// fakeConn is a connection as unrelay's sweep reads it.
type fakeConn struct {
	network.Conn
	remote peer.ID
	addr   ma.Multiaddr
	opened time.Time
	closed bool
}

func (c *fakeConn) RemotePeer() peer.ID           { return c.remote }
func (c *fakeConn) RemoteMultiaddr() ma.Multiaddr { return c.addr }
func (c *fakeConn) Stat() network.ConnStats {
	return network.ConnStats{Stats: network.Stats{Opened: c.opened}}
}
func (c *fakeConn) Close() error { c.closed = true; return nil }

type fakeConnsNet struct {
	network.Network
	conns []network.Conn
}

func (n *fakeConnsNet) Conns() []network.Conn { return n.conns }

// TestUnrelayNodeClockAhead: go-libp2p stamps a connection's Opened with
// the machine's clock, unrelay compares it with the node's (Options.Now).
// On a node whose clock reads an hour ahead (a node may run on any clock:
// TestNodePinsReadTheNodesClock), a direct connection opened this instant
// already counts as open for the grace, and the relayed connection is
// closed at once, before the punched connection proved itself.
func TestUnrelayNodeClockAhead(t *testing.T) {
	const relay = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
	const dst = "12D3KooWLrDD4BURmWvfbHc1YYP5QNyaTpWfTgc9wwQGXxqKDfKR"
	id, _ := peer.Decode(dst)
	opened := ambient.Now() // as go-libp2p stamps it
	rel := &fakeConn{remote: id, opened: opened.Add(-time.Minute),
		addr: ma.StringCast("/ip4/1.2.0.1/udp/8000/quic-v1/p2p/" + relay + "/p2p-circuit")}
	dir := &fakeConn{remote: id, opened: opened, addr: ma.StringCast("/ip4/2.2.0.1/udp/8000/quic-v1")}
	nodeNow := func() time.Time { return ambient.Now().Add(time.Hour) }
	u := newUnrelay(&fakeConnsNet{conns: []network.Conn{rel, dir}}, nodeNow, nil)
	if n := u.sweep(); n != 0 || rel.closed {
		t.Fatalf("unrelay closed %d connections the instant the direct one opened (node clock an hour ahead)", n)
	}
}
