package peer

import (
	"context"
	"time"

	"github.com/exopeer/exopeer/discovery"
	"github.com/libp2p/go-libp2p/core/peer"
)

// interestingTimeout bounds the read of the contacts behind one
// interesting call (their index is cached; the first read builds it).
const interestingTimeout = 5 * time.Second

// interesting says whether discovery's known table keeps id: a member of
// the node's cell, or a device of one of its contacts. It reads the roster
// and the contacts when called, so that discovery, built before them, can
// be given it. It says unknown while the roster is not there yet or the
// contacts cannot be read, and no only when the roster does not name id
// and a successful read of the contacts names it on no device list.
func (n *Node) interesting(id peer.ID) discovery.Interest {
	r := n.cell.Roster()
	if r != nil && r.Has(id) {
		return discovery.InterestYes
	}
	ctx, cancel := context.WithTimeout(context.Background(), interestingTimeout)
	defer cancel()
	cs, err := n.cons.ByDevice(ctx, id)
	switch {
	case err == nil && len(cs) > 0:
		return discovery.InterestYes
	case err != nil || r == nil:
		return discovery.InterestUnknown
	default:
		return discovery.InterestNo
	}
}

// member says, from the roster in memory, whether id is a member of the
// node's cell (the known table evicts other peers first).
func (n *Node) member(id peer.ID) bool {
	r := n.cell.Roster()
	return r != nil && r.Has(id)
}

// owner says which contact id is a device of, for the known table's cap
// per contact (discovery.MaxKnownPerContact): the IDs of the contacts
// whose device lists name it (contactsKey), so that a device two
// contacts name (any cell may sign a list naming any peer ID) is capped
// with neither contact's own devices; "" when none does or the contacts
// cannot be read.
func (n *Node) owner(id peer.ID) string {
	ctx, cancel := context.WithTimeout(context.Background(), interestingTimeout)
	defer cancel()
	cs, err := n.cons.ByDevice(ctx, id)
	if err != nil || len(cs) == 0 {
		return ""
	}
	return contactsKey(contactIDs(cs))
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
