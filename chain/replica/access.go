package replica

import (
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// MayRead reports whether peer p may receive block c from this node's
// block exchange: c is an entry of the chain this replica holds, and p is
// a member on the current roster of that chain's cell. Everything else is
// refused: blocks that are not chain entries (other owners vouch for
// those), entries of another cell, and every peer that is not a member —
// an outsider, or a removed member from the moment this node's roster
// says so. It makes the Replica a blocks.Owner: the node registers it on
// its exchange's gate.
//
// It is safe for concurrent use. It refuses a CID that is not dag-cbor
// (the codec of every entry: blob blocks are raw or dag-pb) and a peer
// that is not on the roster without taking a lock; for a member asking
// for a dag-cbor block it takes the replica's lock, and so waits for an
// append or a received batch being written.
func (r *Replica) MayRead(p peer.ID, c cid.Cid) bool {
	if c.Type() != cid.DagCBOR {
		return false
	}
	ro := r.cell.Roster()
	if ro == nil || !ro.Has(p) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st != nil && string(r.st.Cell()) == string(ro.Cell) && r.st.Has(c, false)
}

// MayAsk reports whether this node's block exchange may send p its wants
// for c: c is dag-cbor (a chain entry's codec) and p is a member on the
// current roster, the peers that may read entries. It makes the Replica
// a blocks.Asker. It takes no lock of the replica's.
func (r *Replica) MayAsk(p peer.ID, c cid.Cid) bool {
	if c.Type() != cid.DagCBOR {
		return false
	}
	ro := r.cell.Roster()
	return ro != nil && ro.Has(p)
}
