package peer

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
)

// PunchResult is the last hole punch (DCUtR) with a peer, as go-libp2p's
// hole punching service told it: a direct dial first, then up to three
// rounds of simultaneous dials.
type PunchResult struct {
	// OK is true when it ended in a direct connection.
	OK bool
	// Error is why it failed ("" when OK or still running).
	Error string
	// Attempts are the rounds of simultaneous dials of this punch (0: the
	// direct dial alone decided it), counted here: go-libp2p's own count
	// runs across punches with a peer until it is idle for 5 minutes.
	Attempts int
	// At is when the service reported the result.
	At time.Time
}

// roundGap is the longest pause between a failed round of a punch and its
// next: a round that starts later begins a new punch. go-libp2p starts the
// next round at once after a failed one, after a coordination round trip
// (at most its stream timeout, a few seconds).
const roundGap = 10 * time.Second

// maxRounds is the rounds go-libp2p's initiator tries in one punch.
const maxRounds = 3

// maxPunches bounds the peers the punch tracer remembers: any peer that
// reaches the node over a relay adds one, so a full tracer forgets its
// oldest result first.
const maxPunches = 1024

// punchTracer is the hole punching service's holepunch.EventTracer: it
// keeps the last result per peer, at most max peers. go-libp2p calls it
// from its goroutines; it reads no clock (the events carry their time).
type punchTracer struct {
	max int

	mu   sync.Mutex
	last map[peer.ID]PunchResult
}

var _ holepunch.EventTracer = (*punchTracer)(nil)

func newPunchTracer(max int) *punchTracer {
	return &punchTracer{max: max, last: make(map[peer.ID]PunchResult)}
}

// Trace is holepunch.EventTracer's. A start clears the peer's result,
// unless it is the next round of the same punch; a round counts; a direct dial that worked, or the end of the rounds,
// records the outcome. A failed direct dial is recorded too, and stays
// the result if no round follows (the peer has no public address); a
// protocol error (the punch ended before a round) is the outcome too.
func (t *punchTracer) Trace(evt *holepunch.Event) {
	if evt == nil || evt.Remote == "" {
		return
	}
	at := time.Unix(0, evt.Timestamp)
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.last[evt.Remote]
	switch e := evt.Evt.(type) {
	case *holepunch.StartHolePunchEvt:
		// The next round of the same punch follows a failed one (or the
		// failed direct dial) at once; anything else starts a new punch.
		next := !r.OK && r.Error != "" && r.Attempts < maxRounds && at.Sub(r.At) >= 0 && at.Sub(r.At) < roundGap
		if next {
			r = PunchResult{Attempts: r.Attempts}
		} else {
			r = PunchResult{}
		}
	case *holepunch.HolePunchAttemptEvt:
		r.Attempts++
	case *holepunch.DirectDialEvt:
		// A punch's first event, before any round: no rounds yet.
		r = PunchResult{OK: e.Success, Error: e.Error}
	case *holepunch.ProtocolErrorEvt:
		// The punch ended before its round (no dcutr at the peer, no
		// address to punch from or to): that is its outcome.
		r.OK, r.Error = false, e.Error
	case *holepunch.EndHolePunchEvt:
		r.OK, r.Error = e.Success, e.Error
	default:
		return
	}
	r.At = at
	t.put(evt.Remote, r)
}

// put stores r for id, forgetting the oldest result when the tracer is
// full. Called with mu held.
func (t *punchTracer) put(id peer.ID, r PunchResult) {
	if _, ok := t.last[id]; !ok && len(t.last) >= t.max {
		var oldest peer.ID
		var at time.Time
		first := true
		for p, o := range t.last {
			if first || o.At.Before(at) {
				oldest, at, first = p, o.At, false
			}
		}
		delete(t.last, oldest)
	}
	t.last[id] = r
}

// result returns the last result with id, if any.
func (t *punchTracer) result(id peer.ID) (PunchResult, bool) {
	if t == nil {
		return PunchResult{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.last[id]
	return r, ok
}

// punchDialWait is go-libp2p's bound on one dial of a punch: the
// initiator's direct dial, and each round's simultaneous dial
// (holepunch's defaultDirectDialTimeout, which the host does not change).
const punchDialWait = 10 * time.Second

// punchUnderWay reports whether a hole punch on a relayed connection
// opened at opened may still be under way at at, from r, the peer's last
// result (seen false: none): a round started and not ended (for at most
// a dial and a round gap: an end always follows), a round that failed
// with rounds left and the next may start within a dial and roundGap (the
// end seen is this side's dial; the peer's dial of the round, begun with
// it, may end a dial later, and only then does the peer start the next
// round), or no event
// since the connection opened while the initiator may still be in its
// direct dial (the rounds follow it). The times are those of go-libp2p's
// clock (the runtime's), which stamps its events and connections. Pure.
func punchUnderWay(r PunchResult, seen bool, opened, at time.Time) bool {
	if !seen || r.At.Before(opened) {
		return at.Sub(opened) < punchDialWait+roundGap
	}
	// A negative elapsed time is a clock set back since the event (the
	// events carry wall times): the event cannot be placed, and a clock
	// set back must not hold the retry off for as long as it was set back.
	since := at.Sub(r.At)
	switch {
	case r.OK || since < 0:
		return false
	case r.Error == "":
		return since < punchDialWait+roundGap
	default:
		return r.Attempts > 0 && r.Attempts < maxRounds && since < punchDialWait+roundGap
	}
}

// underWay is punchUnderWay for id's last result (false on a nil tracer:
// no punches seen, none to wait for).
func (t *punchTracer) underWay(id peer.ID, opened, at time.Time) bool {
	if t == nil {
		return false
	}
	r, ok := t.result(id)
	return punchUnderWay(r, ok, opened, at)
}

// Path is how the node reaches a peer now: over a direct connection or
// only through a relay, and the last hole punch with it.
type Path struct {
	// Direct is true when the node holds a direct connection to the peer
	// (a relayed one may remain beside it, until part "unrelay" closes it).
	Direct bool
	// Relayed is true when the node reaches the peer only through a
	// relay; Relay is that relay ("" if its address did not name it).
	Relayed bool
	Relay   peer.ID
	// Punch is the last hole punch with the peer (nil: none seen).
	Punch *PunchResult
}

// String is "direct", "relayed" or "" (no connection).
func (p Path) String() string {
	switch {
	case p.Direct:
		return "direct"
	case p.Relayed:
		return "relayed"
	}
	return ""
}

// connsPath is the path over these connections.
func connsPath(conns []network.Conn) Path {
	remotes := make([]ma.Multiaddr, len(conns))
	for i, c := range conns {
		remotes[i] = c.RemoteMultiaddr()
	}
	return connPath(remotes)
}

// connPath is the path over connections with these remote addresses: direct
// if any is not a circuit address, else relayed through the first one's
// relay. Pure.
func connPath(remotes []ma.Multiaddr) Path {
	var p Path
	for _, a := range remotes {
		r, ok := circuitRelay(a)
		if !ok {
			return Path{Direct: true}
		}
		if !p.Relayed {
			p.Relayed, p.Relay = true, r
		}
	}
	return p
}

// circuitRelay reports whether a is a relayed (circuit) address and, if it
// names it, its relay: the /p2p/ before /p2p-circuit.
func circuitRelay(a ma.Multiaddr) (peer.ID, bool) {
	var relay peer.ID
	circuit := false
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_P2P:
			if !circuit {
				if id, err := peer.IDFromBytes(c.RawValue()); err == nil {
					relay = id
				}
			}
		case ma.P_CIRCUIT:
			circuit = true
		}
	}
	if !circuit {
		return "", false
	}
	return relay, true
}
