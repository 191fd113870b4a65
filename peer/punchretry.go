package peer

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"

	"github.com/exopeer/exopeer/internal/ambient"
)

// punchBackoff is the wait before each retry of a hole punch with a peer
// reached only through a relay, counted from when the node first saw it
// so (or from the previous retry). After the last there is no more: a pair
// that never punched by then (a NAT that maps per destination) keeps its
// relayed connection, whose streams each retry would cut, until the peer
// is reached directly or not at all, and is then retried afresh.
var punchBackoff = []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute}

// punchRetrySweep is how often part "punchretry" looks at the host's
// connections.
const punchRetrySweep = 5 * time.Second

// punchRedialWait bounds one redial through the relay.
const punchRedialWait = 30 * time.Second

// punchKeepFailed is how long the state keeps a peer whose redial failed
// (the node closed its relayed connection and reached it no more), so
// that the back-off goes on when it is reached through the relay again
// instead of starting over: longer than the longest wait.
const punchKeepFailed = time.Hour

// maxPunchFailed bounds the peers kept for punchKeepFailed; past it the
// oldest failure is forgotten first.
const maxPunchFailed = 256

// retryView is one peer's connections as planPunchRetries sees them.
type retryView struct {
	id peer.ID
	// direct: the node holds a direct connection to the peer.
	direct bool
	// dialled: the node holds a relayed connection it dialled (outbound).
	dialled bool
	// received: the node also holds a relayed connection the peer
	// dialled: closing its own alone would make no new one reach the peer
	// (a dial returns at once on the remaining connection). Of such a pair
	// (both dialled at once: each side's known table after a restart) only
	// the side with the lower peer ID retries, closing both (mutualRetry).
	received bool
	// punching: a hole punch with the peer may be under way (the tracer's
	// events, a punch stream open): a retry would cut it, so it waits.
	punching bool
}

// retryState is a peer's back-off: since is when the node first saw the
// peer reached only through a relay it dialled, or its last retry; tries
// counts the retries; failed is set when the last retry's redial reached
// the peer no more.
type retryState struct {
	since  time.Time
	tries  int
	failed bool
}

// punchWait is the wait before retry number tries+1, and false after the
// last.
func punchWait(tries int) (time.Duration, bool) {
	if tries >= len(punchBackoff) {
		return 0, false
	}
	return punchBackoff[tries], true
}

// mutualRetry reports whether self retries a peer id it holds a relayed
// connection to in each direction (each side dialled one, and neither
// holds a direct one): the lower peer ID of the pair does, closing both
// and dialling again, so that the peer receives one new relayed
// connection and punches on it; the higher waits for it. Were both to
// retry, each would again receive a connection and dial one; were
// neither, a pair whose punches found no handler (both restarted, each
// dialling the other from its known table before its DCUtR handler
// registered) would stay relayed for good. Pure.
func mutualRetry(self, id peer.ID) bool { return self < id }

// planPunchRetries is one sweep of part "punchretry". go-libp2p's hole
// punching is run by the side that receives a relayed connection, once,
// when it arrives: never again after a failure, and never for a
// connection that arrived before its service was active (before the host
// had an address to punch from). The side that dialled the relayed
// connection retries: it closes the connection and dials again through
// the relay, and the peer punches on the new one. A peer the node holds a
// relayed connection to in each direction is retried only if
// mutualRetry(self, peer) (the lower peer ID), and its redial closes
// both. The next state keeps
// only peers reached through relayed connections the node dialled (of a
// pair in both directions, by the side that retries), with
// no direct one (a direct connection forgets the peer, and so does none
// at all before its first retry: its back-off starts over); due are those whose wait is over and
// with which no punch is under way (a retry would cut it: the wait goes
// on until it ended). A peer whose last redial failed (no connection
// since), or that was retried and then lost every connection by itself
// or holds only a relayed connection it dialled itself
// (a relay with go-libp2p's default 2 min circuits, a relay restart, the
// relay's sweep), is kept for punchKeepFailed after its last retry, at
// most maxPunchFailed such peers, so that its back-off goes on, not
// over, when it is reached through the relay again: a pair that cannot
// punch is not cut at 10 s and 1 min on every new circuit. While the node's own hole punching service is
// not active (active false) nothing is due: the peer's punch would find
// no handler here. Pure.
func planPunchRetries(self peer.ID, state map[peer.ID]retryState, views []retryView, active bool, now time.Time) (next map[peer.ID]retryState, due []peer.ID) {
	next = make(map[peer.ID]retryState)
	seen := make(map[peer.ID]bool, len(views))
	for _, v := range views {
		if v.direct {
			seen[v.id] = true
			continue
		}
		if !v.dialled || (v.received && !mutualRetry(self, v.id)) {
			continue // a retried peer's back-off is kept as below
		}
		seen[v.id] = true
		st, ok := state[v.id]
		wait, more := punchWait(st.tries)
		switch {
		case !ok:
			st = retryState{since: now}
		case active && more && !v.punching && !now.Before(st.since.Add(wait)):
			due = append(due, v.id)
			st = retryState{since: now, tries: st.tries + 1}
		}
		st.failed = false
		next[v.id] = st
	}
	var failed []peer.ID
	for id, st := range state {
		if !seen[id] && (st.failed || st.tries > 0) && now.Sub(st.since) < punchKeepFailed {
			failed = append(failed, id)
		}
	}
	if len(failed) > maxPunchFailed {
		slices.SortFunc(failed, func(a, b peer.ID) int { return state[b].since.Compare(state[a].since) })
		failed = failed[:maxPunchFailed]
	}
	for _, id := range failed {
		next[id] = state[id]
	}
	slices.Sort(due)
	return next, due
}

// punchRetry is the node's part "punchretry": for a member or a contact's
// device reached only through a relay connection this node dialled (or
// one each way, if mutualRetry says this side retries), it
// closes those connections and dials the peer again, after punchBackoff
// (10 s, 1 min, 5 min, 30 min, then no more), so that the peer's hole
// punching service, which acts on a new inbound relayed connection only,
// punches again; never while a punch with the peer may be under way
// (punches, the host's tracer, tells; nil: none seen). The streams open
// on the closed connection end (the protocols above open them again). A
// direct connection stops it for that peer. Its state holds peers with
// such a connection now, rebuilt at each sweep, and for a while those
// whose redial failed; its clock is the node's, except to judge a punch
// from the tracer's events, stamped by go-libp2p on the runtime's clock.
type punchRetry struct {
	h       host.Host
	now     func() time.Time
	admit   func(ctx context.Context, p peer.ID) bool
	punches *punchTracer
	log     *slog.Logger

	// state is only used by sweep, from one goroutine.
	state map[peer.ID]retryState
}

func newPunchRetry(h host.Host, now func() time.Time, admit func(context.Context, peer.ID) bool, punches *punchTracer, log *slog.Logger) *punchRetry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &punchRetry{h: h, now: now, admit: admit, punches: punches, log: log, state: make(map[peer.ID]retryState)}
}

// Run sweeps until ctx ends.
func (r *punchRetry) Run(ctx context.Context) error {
	t := time.NewTicker(punchRetrySweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			r.sweep(ctx)
		}
	}
}

// punchActive reports whether the host's hole punching service answers
// (its handler registers once the host has an address to punch from).
func punchActive(h host.Host) bool {
	return slices.Contains(h.Mux().Protocols(), holepunch.Protocol)
}

// sweep plans and runs this round's retries, and returns the peers it
// redialled.
func (r *punchRetry) sweep(ctx context.Context) []peer.ID {
	byPeer := make(map[peer.ID]*retryView)
	opened := make(map[peer.ID]time.Time)
	var order []peer.ID
	for _, c := range r.h.Network().Conns() {
		id := c.RemotePeer()
		v, ok := byPeer[id]
		if !ok {
			v = &retryView{id: id}
			byPeer[id] = v
			order = append(order, id)
		}
		if _, relayed := circuitRelay(c.RemoteMultiaddr()); !relayed {
			v.direct = true
			continue
		} else if c.Stat().Direction == network.DirOutbound {
			v.dialled = true
		} else {
			v.received = true
		}
		// A punch may run on either: the peer's on ours, ours on its.
		opened[id] = later(opened[id], c.Stat().Opened)
		if punchStreamOpen(c) {
			v.punching = true
		}
	}
	// go-libp2p's clock: the tracer's events and Stat().Opened read it.
	libNow := ambient.Deadline(0)
	views := make([]retryView, 0, len(order))
	for _, id := range order {
		v := byPeer[id]
		if v.dialled && !v.punching && r.punches != nil {
			v.punching = r.punches.underWay(id, opened[id], libNow)
		}
		views = append(views, *v)
	}
	var due []peer.ID
	r.state, due = planPunchRetries(r.h.ID(), r.state, views, punchActive(r.h), r.now())
	var done []peer.ID
	for _, id := range due {
		if ctx.Err() != nil {
			break
		}
		if !r.admit(ctx, id) {
			continue
		}
		ok, lost := r.redial(ctx, id)
		if ok {
			done = append(done, id)
		}
		if st, kept := r.state[id]; lost && kept {
			st.failed = true
			r.state[id] = st
		}
	}
	return done
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// punchStreamOpen reports whether a hole punch stream is open on c: the
// punch's coordination (go-libp2p's, before each round) is under way.
func punchStreamOpen(c network.Conn) bool {
	for _, s := range c.GetStreams() {
		if s.Protocol() == holepunch.Protocol {
			return true
		}
	}
	return false
}

// redial closes the relayed connections the node dialled to id, and
// those id dialled if mutualRetry says this side retries a pair in both
// directions, if it still has no direct one, and dials id again. ok is
// true when the dial reached id; lost when the node closed its
// connections and did not.
func (r *punchRetry) redial(ctx context.Context, id peer.ID) (ok, lost bool) {
	conns := r.h.Network().ConnsToPeer(id)
	var relayed []network.Conn
	for _, c := range conns {
		if _, relayedConn := circuitRelay(c.RemoteMultiaddr()); !relayedConn {
			return false, false
		}
		if c.Stat().Direction != network.DirOutbound && !mutualRetry(r.h.ID(), id) {
			return false, false // the peer's own relayed connection: see retryView.received
		}
		relayed = append(relayed, c)
	}
	if len(relayed) == 0 {
		return false, false
	}
	for _, c := range relayed {
		if err := c.Close(); err != nil {
			r.log.Debug("closing a relayed connection to punch again", "peer", id, "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, punchRedialWait)
	defer cancel()
	err := r.h.Connect(network.WithAllowLimitedConn(ctx, "punch retry"), peer.AddrInfo{ID: id})
	if err != nil {
		r.log.Info("redial for a hole punch failed", "peer", id, "err", err)
		return false, len(r.h.Network().ConnsToPeer(id)) == 0
	}
	r.log.Info("redialled through the relay for a hole punch", "peer", id)
	return true, false
}

// punches is the host's hole punch tracer (nil on a network without it).
func (n *Node) punches() *punchTracer {
	if r := n.opts.Network.Relays; r != nil {
		return r.punches
	}
	return nil
}
