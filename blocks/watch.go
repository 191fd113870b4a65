package blocks

import (
	"context"
	"sync"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Bounds of what peers can make the watch remember.
const (
	// maxJunkPeers is how many peers' junk counts are kept at once; when
	// full, the counts are forgotten (all of them: a flood of fresh peer
	// IDs cannot pin an old count, and a real offender starts over).
	maxJunkPeers = 1024
	// maxCutOff is how many cut-off peers are remembered at once; when
	// full, expired entries are dropped, then the one ending soonest.
	maxCutOff = 1024
	// recentSize is how many satisfied wants are still counted as wanted:
	// a block asked of two peers may arrive from the second after the
	// first delivered it, which is not junk.
	recentSize = 4096
)

// watch sees every bitswap message the exchange receives. As bitswap's
// tracer (MessageReceived runs before bitswap's client takes the blocks)
// it records which peer delivered each block a session wants, and counts
// per peer the blocks that nobody wanted (bitswap drops those silently);
// a peer over the junk limit is cut off: its connections are closed and,
// as the filter in front of bitswap's receiver, the watch drops every
// message it sends until the cut-off expires. It is safe for concurrent
// use.
type watch struct {
	limit  int
	cutOff time.Duration
	now    func() time.Time
	// closePeer closes the connections to a cut-off peer; it is called
	// without mu held.
	closePeer func(peer.ID)

	mu sync.Mutex
	// wants holds, for every CID a fetch is waiting for, the sessions
	// waiting (a session once, however many of its calls wait; nil for
	// each Exchange.Get).
	wants  map[cid.Cid][]*Session
	recent recentSet
	junk   map[peer.ID]junkCount
	cut    map[peer.ID]time.Time // until when
}

func newWatch(limit int, cutOff time.Duration, now func() time.Time, closePeer func(peer.ID)) *watch {
	return &watch{
		limit:     limit,
		cutOff:    cutOff,
		now:       now,
		closePeer: closePeer,
		wants:     make(map[cid.Cid][]*Session),
		recent:    recentSet{set: make(map[cid.Cid]struct{}, recentSize)},
		junk:      make(map[peer.ID]junkCount),
		cut:       make(map[peer.ID]time.Time),
	}
}

// want registers that s (nil for a plain Get) waits for cs, and returns the
// function that withdraws the registration. A session registers a CID with
// the watch once however many of its calls want it (its own count is in
// s.wanted).
func (w *watch) want(s *Session, cs []cid.Cid) (done func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range cs {
		if s != nil {
			sw := s.wanted[c]
			if sw == nil {
				sw = new(sessionWant)
				s.wanted[c] = sw
				w.wants[c] = append(w.wants[c], s)
			}
			sw.calls++
		} else {
			w.wants[c] = append(w.wants[c], nil)
		}
	}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, c := range cs {
			if s != nil {
				sw := s.wanted[c]
				if sw == nil {
					continue
				}
				if sw.calls--; sw.calls > 0 {
					continue
				}
				delete(s.wanted, c)
			}
			w.unwant(s, c)
		}
	}
}

// unwant removes one registration of s for c. Called with mu held.
func (w *watch) unwant(s *Session, c cid.Cid) {
	ss := w.wants[c]
	for i, x := range ss {
		if x == s {
			ss = append(ss[:i], ss[i+1:]...)
			break
		}
	}
	if len(ss) == 0 {
		delete(w.wants, c)
		w.recent.add(c)
		return
	}
	w.wants[c] = ss
}

// delivered returns the peer whose message first brought c to s, and
// whether this is the first time the session is told (so that a block
// two concurrent calls wanted is counted once). Unknown: "".
func (w *watch) delivered(s *Session, c cid.Cid) (peer.ID, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sw := s.wanted[c]
	if sw == nil || sw.counted {
		return "", sw == nil
	}
	sw.counted = true
	return sw.from, true
}

// MessageReceived is bitswap's tracer hook: it runs for every message
// received (from peers that are not cut off), before bitswap's client
// hands the blocks to the sessions.
func (w *watch) MessageReceived(p peer.ID, msg bsmsg.BitSwapMessage) {
	blks := msg.Blocks()
	if len(blks) == 0 {
		return
	}
	w.mu.Lock()
	junk := 0
	for _, b := range blks {
		c := b.Cid()
		ss, ok := w.wants[c]
		if !ok {
			if !w.recent.has(c) {
				junk++
			}
			continue
		}
		for _, s := range ss {
			if s == nil {
				continue
			}
			if sw := s.wanted[c]; sw != nil && sw.from == "" {
				sw.from = p
			}
		}
	}
	cut := false
	if junk > 0 {
		now := w.now()
		jc, ok := w.junk[p]
		if !ok && len(w.junk) >= maxJunkPeers {
			clear(w.junk)
		}
		if !ok || now.Sub(jc.since) >= w.cutOff {
			// A new window: an honest peer's rare late duplicates do
			// not add up over its whole life.
			jc = junkCount{since: now}
		}
		jc.n += junk
		w.junk[p] = jc
		if jc.n > w.limit {
			delete(w.junk, p)
			w.cutLocked(p)
			cut = true
		}
	}
	w.mu.Unlock()
	if cut {
		w.closePeer(p)
	}
}

// junkCount is the junk a peer sent since a window began: the limit is of
// junk within CutOff of the first block counted.
type junkCount struct {
	n     int
	since time.Time
}

// MessageSent is the other half of bitswap's tracer; the watch does not
// look at what is sent.
func (w *watch) MessageSent(peer.ID, bsmsg.BitSwapMessage) {}

// cutLocked cuts p off until cutOff from now. Called with mu held.
func (w *watch) cutLocked(p peer.ID) {
	now := w.now()
	if len(w.cut) >= maxCutOff {
		var soonest peer.ID
		var end time.Time
		for q, until := range w.cut {
			if !until.After(now) {
				delete(w.cut, q)
				continue
			}
			if soonest == "" || until.Before(end) {
				soonest, end = q, until
			}
		}
		if len(w.cut) >= maxCutOff {
			delete(w.cut, soonest)
		}
	}
	w.cut[p] = now.Add(w.cutOff)
}

// isCut reports whether p is cut off now.
func (w *watch) isCut(p peer.ID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	until, ok := w.cut[p]
	if !ok {
		return false
	}
	if !until.After(w.now()) {
		delete(w.cut, p)
		return false
	}
	return true
}

// CutOff lists the peers cut off now for sending junk.
func (e *Exchange) CutOff() []peer.ID {
	w := e.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	var out []peer.ID
	for p, until := range w.cut {
		if until.After(now) {
			out = append(out, p)
		}
	}
	return out
}

// recentSet is a set of the last recentSize CIDs added, oldest dropped
// first.
type recentSet struct {
	set  map[cid.Cid]struct{}
	ring [recentSize]cid.Cid
	next int
}

func (r *recentSet) add(c cid.Cid) {
	if _, ok := r.set[c]; ok {
		return
	}
	if old := r.ring[r.next]; old.Defined() {
		delete(r.set, old)
	}
	r.ring[r.next] = c
	r.next = (r.next + 1) % recentSize
	r.set[c] = struct{}{}
}

func (r *recentSet) has(c cid.Cid) bool {
	_, ok := r.set[c]
	return ok
}

// watchedNetwork is the network bitswap runs on, with the messages of
// cut-off peers dropped before bitswap sees them.
type watchedNetwork struct {
	bsnetwork.BitSwapNetwork
	w *watch
}

func (n watchedNetwork) Start(rs ...bsnetwork.Receiver) {
	wrapped := make([]bsnetwork.Receiver, len(rs))
	for i, r := range rs {
		wrapped[i] = watchedReceiver{r, n.w}
	}
	n.BitSwapNetwork.Start(wrapped...)
}

type watchedReceiver struct {
	bsnetwork.Receiver
	w *watch
}

func (r watchedReceiver) ReceiveMessage(ctx context.Context, p peer.ID, msg bsmsg.BitSwapMessage) {
	if r.w.isCut(p) {
		return
	}
	r.Receiver.ReceiveMessage(ctx, p, msg)
}
