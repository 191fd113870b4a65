package gossip

import (
	"context"
	"sync"
)

// accusations is what this node knows of the suspect and dead messages
// naming it: the highest incarnation of one it answered with a
// re-announcement, and the incarnations of itself that the others state
// (in the alive messages they gossip and in their push/pull states).
type accusations struct {
	mu       sync.Mutex
	answered bool   // a re-announcement answered an accusation
	upTo     uint32 // the highest incarnation of an accusation answered
	floor    uint32 // at the last answer: the highest incarnation of this node stated or accused until then
	heldMax  uint32 // the highest incarnation of this node another member stated
}

// held takes an incarnation of this node that another member stated.
func (a *accusations) held(n uint32) {
	a.mu.Lock()
	a.heldMax = max(a.heldMax, n)
	a.mu.Unlock()
}

// stale reports whether an accusation at incarnation n is old news: one
// at n or above was answered already, and since then another member
// stated this node at an incarnation above any stated or accused before
// the answer, which only the answer's re-announcement made (memberlist
// itself refutes an accusation once: its refutation raises its
// incarnation above the accusation's, and it ignores the retransmits at
// the old one that the others keep gossiping for a while). Until the
// answer is seen acknowledged, an accusation is answered again.
func (a *accusations) stale(n uint32) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.answered && n <= a.upTo && a.heldMax > a.floor
}

// answer records a re-announcement answering an accusation at n.
func (a *accusations) answer(n uint32) {
	a.mu.Lock()
	if !a.answered || n > a.upTo {
		a.upTo = n
	}
	a.answered, a.floor = true, max(a.heldMax, n)
	a.mu.Unlock()
}

// refuteAccused re-announces this node (new signed metadata, so a new
// alive at a higher incarnation) when a suspect or dead message at
// incarnation inc names it, at most once per probe interval (a clock set
// back does not hold it off), and not for a stale accusation (see
// accusations.stale): a retransmit of one already answered, which would
// otherwise make the node re-sign and re-announce once a probe interval
// for as long as the others gossip it. memberlist refutes an accusation
// by itself only when its incarnation is at least this node's own: one at
// a lower incarnation (the others never heard this node's later alives,
// such as those of metadata updates made before its join completed) is
// ignored here while every other member counts it down to a failure.
func (m *Membership) refuteAccused(inc uint32) {
	if m.accused.stale(inc) {
		return
	}
	now := m.now().UnixNano()
	if last := m.refutedAt.Load(); last != 0 && now >= last && now-last < int64(m.cfg.Timing.ProbeInterval) {
		return
	}
	if !m.refuting.CompareAndSwap(false, true) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.left {
		m.refuting.Store(false)
		return
	}
	m.refutedAt.Store(now)
	m.refutes.Add(1)
	m.accused.answer(inc)
	m.wg.Go(func() {
		defer m.refuting.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timing.ProbeInterval)
		defer cancel()
		if err := m.UpdateMeta(ctx); err != nil {
			m.log.Debug("gossip re-announce after an accusation", "err", err)
		}
	})
}
