package gossip

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// State is what this node believes of a member.
type State int

// The states of a member.
const (
	// StateAlive: memberlist counts it alive.
	StateAlive State = iota
	// StateSuspect: memberlist still counts it alive, but this node has
	// not heard from it for Timing.SuspectAfter. memberlist v0.7.0 does not
	// expose its own suspicion, so this is this node's own view; it
	// usually shows before memberlist declares the member failed.
	StateSuspect
	// StateDead: declared failed (probes failed and nobody refuted).
	StateDead
	// StateLeft: it left the cell on purpose (Leave or Close).
	StateLeft
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Member is one node of the cell as this node sees it.
type Member struct {
	ID    peer.ID
	State State
	// Since is when it entered its state (Alive, Dead or Left; a Suspect
	// member keeps the time it became Alive).
	Since time.Time
	// LastSeen is the last time this node heard from it directly, or, if
	// later or never, the last time gossip said it was alive. This node's
	// own LastSeen is the time of the call.
	LastSeen time.Time
	// Meta is its application metadata, as it signed it. Owned by the
	// caller.
	Meta []byte
}

func (m Member) String() string {
	return fmt.Sprintf("%s %s", m.ID.ShortString(), m.State)
}

// EventType says what happened to a member.
type EventType int

// The events of a Subscription.
const (
	EventJoined    EventType = iota + 1 // seen alive for the first time in this run, or again after it left
	EventLeft                           // it left on purpose
	EventFailed                         // declared dead
	EventRecovered                      // alive again after it was declared dead
	EventUpdated                        // its metadata changed
)

func (e EventType) String() string {
	switch e {
	case EventJoined:
		return "joined"
	case EventLeft:
		return "left"
	case EventFailed:
		return "failed"
	case EventRecovered:
		return "recovered"
	case EventUpdated:
		return "updated"
	}
	return fmt.Sprintf("EventType(%d)", int(e))
}

// Event is a change of one member. Member is the member right after it.
type Event struct {
	Type   EventType
	Member Member
}

// Stats counts what the Membership and its transport dropped and refused.
type Stats struct {
	PacketsSent     uint64 // packets written
	PacketsReceived uint64 // packets accepted from allowed peers
	PacketsDropped  uint64 // outgoing packets dropped: MaxPacketsInFlight reached
	PacketsFailed   uint64 // outgoing packets lost: dial or write failed
	RefusedOutbound uint64 // packets and streams not sent: peer not allowed
	RejectedInbound uint64 // packets and streams reset: peer not allowed, bad header, too large
	RejectedNodes   uint64 // alive messages and joins refused by the checks of NotifyAlive/NotifyMerge
	StaleMeta       uint64 // alive messages refused: the node's metadata is older than one seen (late gossip, or a replay)
	EventsDropped   uint64 // events not delivered: a subscriber's buffer was full
	BadBroadcasts   uint64 // broadcast envelopes malformed
	SuspectedLost   uint64 // members suspected because this node lost its last connection to them
	LostUnknown     uint64 // members whose last connection closed, left to the probes: incarnation not seen yet
	LostChecked     uint64 // members whose last connection closed and stayed closed: checked (redial, reach request)
	LostReachable   uint64 // of those, not suspected: another member reached it
	LostUndecided   uint64 // of those, left to the probes: no member answered that it could not reach it
	ReachBusy       uint64 // reach requests answered "cannot say": maxReachChecks already under way
	Refutes         uint64 // re-announcements after a suspect or dead message named this node
}

// SubscriptionBuffer is the capacity of a subscription's channel.
const SubscriptionBuffer = 256

// memberState is the table entry of one member. Guarded by Membership.mu.
type memberState struct {
	state State // Alive, Dead or Left
	since time.Time
	seen  time.Time // last alive or update from gossip
	meta  []byte
}

func (st *memberState) member(id peer.ID) Member {
	return Member{ID: id, State: st.state, Since: st.since, LastSeen: st.seen, Meta: slices.Clone(st.meta)}
}

// Members returns every node seen in this run, this one included, sorted
// by ID. Safe for concurrent use; never blocks on the network.
func (m *Membership) Members() []Member {
	now := m.now()
	m.mu.Lock()
	out := make([]Member, 0, len(m.members))
	alive := 0
	for id, st := range m.members {
		mb := st.member(id)
		if id == m.self {
			mb.LastSeen = now
		}
		if mb.State == StateAlive {
			alive++
		}
		out = append(out, mb)
	}
	m.mu.Unlock()
	after := m.suspectAfter(alive)
	for i := range out {
		mb := &out[i]
		if at, ok := m.tr.lastHeard(mb.ID); ok && at.After(mb.LastSeen) {
			mb.LastSeen = at
		}
		if mb.State == StateAlive && mb.ID != m.self && after > 0 && now.Sub(mb.LastSeen) > after {
			mb.State = StateSuspect
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

func (m *Membership) suspectAfter(alive int) time.Duration {
	t := m.cfg.Timing
	if t.SuspectAfter != 0 {
		return t.SuspectAfter
	}
	return time.Duration(t.SuspicionMult) * t.ProbeInterval * time.Duration(max(1, alive-1))
}

// Subscribe returns a channel of membership events and a function that
// ends the subscription and closes the channel. Close closes it too.
//
// Events are delivered without blocking memberlist: a subscriber that lets
// SubscriptionBuffer events pile up loses the next ones (counted in
// Stats.EventsDropped); Members always has the current view. Safe for
// concurrent use.
func (m *Membership) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, SubscriptionBuffer)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		close(ch)
		return ch, func() {}
	}
	m.subs[ch] = struct{}{}
	return ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.subs[ch]; ok {
			delete(m.subs, ch)
			close(ch)
		}
	}
}

// emitLocked delivers ev to every subscriber. Called with mu held.
func (m *Membership) emitLocked(ev Event) {
	for ch := range m.subs {
		e := ev
		e.Member.Meta = slices.Clone(ev.Member.Meta)
		select {
		case ch <- e:
		default:
			m.stats.eventsDropped.Add(1)
		}
	}
}

// Stats returns the counters of the Membership and its transport.
func (m *Membership) Stats() Stats {
	c := m.stats
	return Stats{
		PacketsSent: c.packetsSent.Load(), PacketsReceived: c.packetsReceived.Load(),
		PacketsDropped: c.packetsDropped.Load(), PacketsFailed: c.packetsFailed.Load(),
		RefusedOutbound: c.refusedOutbound.Load(), RejectedInbound: c.rejectedInbound.Load(),
		RejectedNodes: c.rejectedNodes.Load(), EventsDropped: c.eventsDropped.Load(),
		BadBroadcasts: c.badBroadcasts.Load(), StaleMeta: m.staleMeta.Load(),
		SuspectedLost: c.suspectedLost.Load(), LostUnknown: c.lostUnknown.Load(),
		LostChecked: c.lostChecked.Load(), LostReachable: c.lostReachable.Load(),
		LostUndecided: c.lostUndecided.Load(), ReachBusy: c.reachBusy.Load(),
		Refutes: m.refutes.Load(),
	}
}
