package peer

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestPlanMeetsYieldWhenRelayArrives: two members see each other alive
// while neither has a relay of the cell at hand yet (the cell's relay
// is not Public yet, or its hop protocol not yet identified); when the
// relay comes, the lower ID dials at once and the higher still waits
// meetYield, as documented, instead of both dialling in the same sweep
// (a relayed connection each way, which punchretry does not retry).
func TestPlanMeetsYieldWhenRelayArrives(t *testing.T) {
	lo, hi := peer.ID("a"), peer.ID("z")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stLo, _ := planMeets(lo, nil, []peer.ID{hi}, false, t0)
	stHi, _ := planMeets(hi, nil, []peer.ID{lo}, false, t0)
	for s := time.Second; s <= time.Minute; s += time.Second {
		stLo, _ = planMeets(lo, stLo, []peer.ID{hi}, false, t0.Add(s))
		stHi, _ = planMeets(hi, stHi, []peer.ID{lo}, false, t0.Add(s))
	}
	at := t0.Add(time.Minute + time.Second) // the relay is at hand
	_, dueLo := planMeets(lo, stLo, []peer.ID{hi}, true, at)
	_, dueHi := planMeets(hi, stHi, []peer.ID{lo}, true, at)
	if !slices.Equal(dueLo, []peer.ID{hi}) {
		t.Fatalf("lower ID: due %v when the relay came, want [z]", dueLo)
	}
	if len(dueHi) != 0 {
		t.Fatalf("higher ID: due %v in the same sweep as the lower: both dial, no yield", dueHi)
	}
}

// TestPlanPunchRetriesPeerRedialled: a peer retried once whose relayed
// connection ends and that the peer, not this node, dials again (its own
// redial, a relay's 2 min circuits) keeps its back-off here too, so that
// when this node next dials it through the relay it is not cut at 10 s
// again: the back-off goes on as in TestPlanPunchRetriesDropped.
func TestPlanPunchRetriesPeerRedialled(t *testing.T) {
	p := peer.ID("p")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dialled := []retryView{{id: p, dialled: true}}
	received := []retryView{{id: p, received: true}}
	state, _ := planPunchRetries("", nil, dialled, true, t0)
	state, due := planPunchRetries("", state, dialled, true, t0.Add(10*time.Second))
	if len(due) != 1 {
		t.Fatalf("first retry not due: %v", due)
	}
	retried := t0.Add(10 * time.Second)
	state, _ = planPunchRetries("", state, received, true, retried.Add(20*time.Second)) // the peer's circuit
	state, _ = planPunchRetries("", state, dialled, true, retried.Add(40*time.Second))  // ours again
	state, due = planPunchRetries("", state, dialled, true, retried.Add(55*time.Second))
	if len(due) != 0 {
		t.Fatalf("retried 15 s after a new circuit (%v, state %+v): the back-off started over", due, state[p])
	}
	state, due = planPunchRetries("", state, dialled, true, retried.Add(time.Minute))
	if !slices.Equal(due, []peer.ID{p}) || state[p].tries != 2 {
		t.Fatalf("1 min after the first retry: due %v state %+v, want the second", due, state[p])
	}
}
