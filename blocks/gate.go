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

// An Asker says which peers this node may send its wants for a block to
// (want-have and want-block entries): the peers that could rightly serve
// it. The blob service asks the cell's members for a blob block, anyone
// for a block of a public blob being fetched, and the peers a blob shared
// with this node names; the chain replica asks the members for its
// entries. MayAsk is called for every want about to leave, from
// bitswap's goroutines, under the same rules as Owner.MayRead: safe for
// concurrent use, cheap, not blocking, whole CIDs compared.
type Asker interface {
	// MayAsk reports whether this node may send p a want for c. It
	// answers false for a block it knows nothing of.
	MayAsk(p peer.ID, c cid.Cid) bool
}

// AskerFunc adapts a function to an Asker.
type AskerFunc func(p peer.ID, c cid.Cid) bool

// MayAsk calls f.
func (f AskerFunc) MayAsk(p peer.ID, c cid.Cid) bool { return f(p, c) }

// A Gate decides which peers the exchange serves which blocks to, and
// which peers it sends its wants to: a peer may read a block if any
// registered Owner says so, and is asked for one if any registered Asker
// says so. A want that no asker allows for a peer is not sent to it: a
// peer not asked learns nothing of what this node fetches. A block that no owner
// vouches for is served to nobody, and neither is its presence or absence
// told: a refused peer gets no answer at all, so it cannot learn whether
// the node holds the block.
//
// The zero Gate refuses everything: it serves nobody and asks nobody. A
// Gate is safe for concurrent use; MayRead and MayAsk take no lock.
type Gate struct {
	mu     sync.Mutex                      // serialises registering and unregistering
	owners atomic.Pointer[[]*registration] // copy on write
	askers atomic.Pointer[[]*askRegistration]
}

// registration gives each Register call its own identity, so that
// unregistering removes that one even if the same Owner is registered
// twice.
type registration struct{ Owner }

// askRegistration is registration for an Asker.
type askRegistration struct{ Asker }

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

// RegisterAsker adds a to the askers asked by MayAsk, from the next call
// on, and returns a function that removes it again (idempotent).
func (g *Gate) RegisterAsker(a Asker) (unregister func()) {
	reg := &askRegistration{a}
	g.mu.Lock()
	defer g.mu.Unlock()
	var cur []*askRegistration
	if p := g.askers.Load(); p != nil {
		cur = *p
	}
	next := append(slices.Clip(cur), reg)
	g.askers.Store(&next)
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		p := g.askers.Load()
		if p == nil {
			return
		}
		next := slices.DeleteFunc(slices.Clone(*p), func(r *askRegistration) bool { return r == reg })
		g.askers.Store(&next)
	}
}

// MayAsk reports whether some registered asker lets this node send p a
// want for c; false if none does, or if g is nil.
func (g *Gate) MayAsk(p peer.ID, c cid.Cid) bool {
	if g == nil {
		return false
	}
	askers := g.askers.Load()
	if askers == nil {
		return false
	}
	for _, a := range *askers {
		if a.MayAsk(p, c) {
			return true
		}
	}
	return false
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
//
// It also drops the wants bitswap's client sends (want-have broadcasts and
// want-blocks, on the long-lived stream of NewMessageSender) to a peer the
// gate does not let it ask; cancels pass. A peer left out so never
// answers: a want-have unanswered only keeps it out of the session, and a
// want-block (sent only to peers that said HAVE or delivered, so only to
// peers asked) would end in bitswap's DONT_HAVE timeout.
type gatedNetwork struct {
	bsnetwork.BitSwapNetwork
	gate *Gate
}

// SendMessage sends what of msg the gate lets p read, and nothing at all
// if that is nothing.
func (n gatedNetwork) SendMessage(ctx context.Context, p peer.ID, msg bsmsg.BitSwapMessage) error {
	out, ok := gateMessage(n.gate, p, msg, func(c cid.Cid, _ bool) bool { return n.gate.MayAsk(p, c) })
	if !ok {
		return nil
	}
	return n.BitSwapNetwork.SendMessage(ctx, p, out)
}

// NewMessageSender returns the sender of bitswap's wants to p, which drops
// the wants the gate does not let it ask p.
func (n gatedNetwork) NewMessageSender(ctx context.Context, p peer.ID, opts *bsnetwork.MessageSenderOpts) (bsnetwork.MessageSender, error) {
	ms, err := n.BitSwapNetwork.NewMessageSender(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	return &gatedSender{MessageSender: ms, gate: n.gate, p: p, sent: make(map[cid.Cid]struct{})}, nil
}

// gatedSender is bitswap's sender of wants to one peer. It remembers the
// wants it let through until they are cancelled, so that a cancel goes
// only to a peer that was sent the want (a cancel names the CID too), and
// does go to it even if the gate has since stopped allowing the want.
type gatedSender struct {
	bsnetwork.MessageSender
	gate *Gate
	p    peer.ID

	mu   sync.Mutex // serialises SendMsg; guards sent
	sent map[cid.Cid]struct{}
}

// SendMsg sends what of msg the gate lets this node send p, and nothing
// at all if that is nothing.
func (s *gatedSender) SendMsg(ctx context.Context, msg bsmsg.BitSwapMessage) error {
	s.mu.Lock()
	if msg.Full() {
		clear(s.sent)
	}
	out, ok := gateMessage(s.gate, s.p, msg, func(c cid.Cid, cancel bool) bool {
		_, was := s.sent[c]
		if cancel {
			delete(s.sent, c)
			return was
		}
		if was || s.gate.MayAsk(s.p, c) {
			s.sent[c] = struct{}{}
			return true
		}
		return false
	})
	s.mu.Unlock()
	if !ok {
		return nil
	}
	return s.MessageSender.SendMsg(ctx, out)
}

// gateMessage returns msg without the wantlist entries (wants and
// cancels) that want refuses, and without the blocks and block presences that g
// does not let p read, and false if nothing is left to send. It returns
// msg itself when g lets p read all of it; otherwise a new message, with
// no pending-bytes hint (it would tell the size of what was held back).
// It does not modify msg.
// want is called once for each entry, in order.
func gateMessage(g *Gate, p peer.ID, msg bsmsg.BitSwapMessage, want func(c cid.Cid, cancel bool) bool) (bsmsg.BitSwapMessage, bool) {
	blks, pres, wants := msg.Blocks(), msg.BlockPresences(), msg.Wantlist()
	keep := make([]bool, len(wants))
	all := true
	for i, e := range wants {
		keep[i] = want(e.Cid, e.Cancel)
		all = all && keep[i]
	}
	for i := 0; all && i < len(blks); i++ {
		all = g.MayRead(p, blks[i].Cid())
	}
	for i := 0; all && i < len(pres); i++ {
		all = g.MayRead(p, pres[i].Cid)
	}
	if all {
		return msg, !msg.Empty()
	}
	out := bsmsg.New(msg.Full())
	for i, e := range wants {
		switch {
		case !keep[i]:
		case e.Cancel:
			out.Cancel(e.Cid)
		default:
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
