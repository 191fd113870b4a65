package peer

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// interestingTimeout bounds the read of the contacts behind one
// interesting call (their index is cached; the first read builds it).
const interestingTimeout = 5 * time.Second

// interesting says whether discovery's known table keeps id: a member of
// the node's cell, or a device of one of its contacts. It reads the roster
// and the contacts when called, so that discovery, built before them, can
// be given it; before they run it says no.
func (n *Node) interesting(id peer.ID) bool {
	if r := n.cell.Roster(); r != nil && r.Has(id) {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), interestingTimeout)
	defer cancel()
	cs, err := n.cons.ByDevice(ctx, id)
	return err == nil && len(cs) > 0
}

// knownBootstrap is the DHT's bootstrap peers beyond its configured ones:
// the known table's public members and contacts (read when kad-dht asks,
// so discovery, built after the DHT, is there by then).
func (n *Node) knownBootstrap() []peer.AddrInfo {
	if n.disc == nil {
		return nil
	}
	return n.disc.BootstrapPeers()
}
