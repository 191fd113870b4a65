package blocks

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// An Owner vouches for some of the stored blocks: it says which peers may
// read them. The chain replica owns the chain's entries (readable by the
// cell's current members); blobs will own theirs (readable by the holders
// of a capability, or by anyone for a public blob).
type Owner interface {
	// MayRead reports whether peer p may receive block c: the block itself,
	// or the news that this node has it or has it not. It answers false
	// for a block it does not own. The exchange calls it for every want a
	// peer sends and for every block and block presence it is about to
	// send, from bitswap's goroutines: it must be safe for concurrent use,
	// cheap (a map lookup, not a disk read), and must not block on the
	// network or call into the Exchange. c is the exact CID asked for; the
	// store is keyed by multihash, so an owner compares whole CIDs (codec
	// included), never multihashes, or it would vouch for another owner's
	// block asked under another codec.
	MayRead(p peer.ID, c cid.Cid) bool
}

// OwnerFunc adapts a function to an Owner.
type OwnerFunc func(p peer.ID, c cid.Cid) bool

// MayRead calls f.
func (f OwnerFunc) MayRead(p peer.ID, c cid.Cid) bool { return f(p, c) }

// A Gate decides which peers the exchange serves which blocks to: a peer
// may read a block if any registered Owner says so. A block that no owner
// vouches for is served to nobody, and neither is its presence or absence
// told: a refused peer gets no answer at all, so it cannot learn whether
// the node holds the block.
//
// The zero Gate refuses everything. A Gate is safe for concurrent use;
// MayRead takes no lock.
type Gate struct {
	mu     sync.Mutex                      // serialises Register and unregistering
	owners atomic.Pointer[[]*registration] // copy on write
}

// registration gives each Register call its own identity, so that
// unregistering removes that one even if the same Owner is registered
// twice.
type registration struct{ Owner }

var _ Owner = (*Gate)(nil)

// Register adds o to the owners asked by MayRead, from the next call on,
// and returns a function that removes it again (idempotent). The Gate
// keeps o until then.
func (g *Gate) Register(o Owner) (unregister func()) {
	reg := &registration{o}
	g.mu.Lock()
	defer g.mu.Unlock()
	var cur []*registration
	if p := g.owners.Load(); p != nil {
		cur = *p
	}
	next := append(slices.Clip(cur), reg)
	g.owners.Store(&next)
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		p := g.owners.Load()
		if p == nil {
			return
		}
		next := slices.DeleteFunc(slices.Clone(*p), func(r *registration) bool { return r == reg })
		g.owners.Store(&next)
	}
}

// MayRead reports whether some registered owner lets p read c; false if
// none does, or if g is nil. It costs one call per registered owner until
// one says yes, and takes no lock of its own.
func (g *Gate) MayRead(p peer.ID, c cid.Cid) bool {
	if g == nil {
		return false
	}
	owners := g.owners.Load()
	if owners == nil {
		return false
	}
	for _, o := range *owners {
		if o.MayRead(p, c) {
			return true
		}
	}
	return false
}

// gatedNetwork is the network bitswap runs on, with every block and block
// presence it sends checked against the gate once more, at the moment it
// leaves. Bitswap's server checks wants when they arrive (through
// bitswap.WithPeerBlockRequestFilter), but it also sends blocks later, for
// wants it accepted earlier, when they arrive in the store; and it answers
// a refused want with a DONT_HAVE. Checking at send time makes a lost right
// (a member removed) take effect at once, and drops those DONT_HAVEs.
type gatedNetwork struct {
	bsnetwork.BitSwapNetwork
	gate *Gate
}

// SendMessage sends what of msg the gate lets p read, and nothing at all
// if that is nothing.
func (n gatedNetwork) SendMessage(ctx context.Context, p peer.ID, msg bsmsg.BitSwapMessage) error {
	out, ok := gateMessage(n.gate, p, msg)
	if !ok {
		return nil
	}
	return n.BitSwapNetwork.SendMessage(ctx, p, out)
}

// gateMessage returns msg without the blocks and block presences that g
// does not let p read, and false if nothing is left to send. It returns
// msg itself when g lets p read all of it; otherwise a new message, with
// no pending-bytes hint (it would tell the size of what was held back).
// It does not modify msg.
func gateMessage(g *Gate, p peer.ID, msg bsmsg.BitSwapMessage) (bsmsg.BitSwapMessage, bool) {
	blks, pres := msg.Blocks(), msg.BlockPresences()
	all := true
	for _, b := range blks {
		if !g.MayRead(p, b.Cid()) {
			all = false
			break
		}
	}
	for i := 0; all && i < len(pres); i++ {
		all = g.MayRead(p, pres[i].Cid)
	}
	if all {
		return msg, !msg.Empty()
	}
	out := bsmsg.New(msg.Full())
	for _, e := range msg.Wantlist() {
		if e.Cancel {
			out.Cancel(e.Cid)
		} else {
			out.AddEntry(e.Cid, e.Priority, e.WantType, e.SendDontHave)
		}
	}
	for _, b := range blks {
		if g.MayRead(p, b.Cid()) {
			out.AddBlock(b)
		}
	}
	for _, bp := range pres {
		if g.MayRead(p, bp.Cid) {
			out.AddBlockPresence(bp.Cid, bp.Type)
		}
	}
	return out, !out.Empty()
}
