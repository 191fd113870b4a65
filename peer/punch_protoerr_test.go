package peer

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
)

// TestPunchTracerProtocolError: go-libp2p ends a punch that fails before
// its rounds (no dcutr handler at the peer, which registers it only once it
// has an address to punch from; no public address here; no address in the
// peer's CONNECT) with a ProtocolErrorEvt alone, the direct dial skipped
// when the peer has no public address (holepuncher.directConnect). That is
// the punch's outcome: the tracer must not go on reporting an older
// success (nor nothing), or the doctor and `exopeer peers` hide why a
// relayed peer stays relayed.
func TestPunchTracerProtocolError(t *testing.T) {
	tr := newPunchTracer(4)
	a, b := peer.ID("a"), peer.ID("b")
	tr.Trace(punchEvt(a, 1, &holepunch.StartHolePunchEvt{}))
	tr.Trace(punchEvt(a, 2, &holepunch.HolePunchAttemptEvt{Attempt: 1}))
	tr.Trace(punchEvt(a, 3, &holepunch.EndHolePunchEvt{Success: true}))
	// Later the direct connection is gone, a new relayed one comes, and
	// the new punch fails at once.
	const why = "failed to open hole-punching stream: failed to negotiate protocol: protocols not supported: [/libp2p/dcutr]"
	tr.Trace(punchEvt(a, 100, &holepunch.ProtocolErrorEvt{Error: why}))
	if r, _ := tr.result(a); r.OK || r.Error != why {
		t.Errorf("after a punch that failed before its rounds: %+v, want not OK with %q", r, why)
	}
	tr.Trace(punchEvt(b, 5, &holepunch.ProtocolErrorEvt{Error: why}))
	if r, ok := tr.result(b); !ok || r.OK || r.Error != why {
		t.Errorf("a peer's only punch failed before its rounds: %+v, %v; want its error", r, ok)
	}
}

// TestPunchTracerDirectDialAfterPunch: go-libp2p dials directly before any
// round (holepuncher.directConnect), and emits no StartHolePunchEvt when
// that dial decides it. A later punch decided by the direct dial has 0
// rounds ("0: the direct dial alone decided it"), not the rounds of the
// punch before.
func TestPunchTracerDirectDialAfterPunch(t *testing.T) {
	tr := newPunchTracer(4)
	a := peer.ID("a")
	tr.Trace(punchEvt(a, 1, &holepunch.StartHolePunchEvt{}))
	tr.Trace(punchEvt(a, 2, &holepunch.HolePunchAttemptEvt{Attempt: 1}))
	tr.Trace(punchEvt(a, 3, &holepunch.EndHolePunchEvt{Error: "round 1"}))
	tr.Trace(punchEvt(a, 4, &holepunch.StartHolePunchEvt{}))
	tr.Trace(punchEvt(a, 5, &holepunch.HolePunchAttemptEvt{Attempt: 2}))
	tr.Trace(punchEvt(a, 6, &holepunch.EndHolePunchEvt{Success: true}))
	tr.Trace(punchEvt(a, 100, &holepunch.DirectDialEvt{Success: true}))
	if r, _ := tr.result(a); !r.OK || r.Attempts != 0 {
		t.Errorf("a punch decided by its direct dial: %+v, want OK with 0 rounds", r)
	}
}

// TestPunchTracerRoundsPerPunch: go-libp2p's HolePunchAttemptEvt.Attempt
// is its tracer's count of rounds with the peer over every punch, kept
// until five minutes pass without one (holepunch/tracer.go: counter++,
// gc after tracerCacheDuration), not the round within this punch. Three
// failed rounds, then two minutes later a punch that works in its first
// round: that punch took 1 round, as PunchResult.Attempts says it counts.
func TestPunchTracerRoundsPerPunch(t *testing.T) {
	tr := newPunchTracer(4)
	a := peer.ID("a")
	at := int64(0)
	round := func(n int, err string) {
		at++
		tr.Trace(punchEvt(a, at, &holepunch.StartHolePunchEvt{}))
		tr.Trace(punchEvt(a, at, &holepunch.HolePunchAttemptEvt{Attempt: n}))
		tr.Trace(punchEvt(a, at, &holepunch.EndHolePunchEvt{Success: err == "", Error: err}))
	}
	round(1, "r1")
	round(2, "r2")
	round(3, "all retries failed")
	at += int64(2 * time.Minute)
	round(4, "") // libp2p's counter goes on
	if r, _ := tr.result(a); !r.OK || r.Attempts != 1 {
		t.Errorf("a punch that worked in its first round: %+v, want 1 round", r)
	}
}
