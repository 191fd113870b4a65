package peer

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestPlanPunchRetries: the back-off of one peer reached only through a
// relayed connection it was dialled on: 10 s, 1 min, 5 min, then every
// 30 min; nothing is due while the node's punch service is inactive; a
// direct connection, or none, forgets the peer, whose back-off then
// starts over; a peer that dialled the node (inbound only) is left to
// retry itself.
func TestPlanPunchRetries(t *testing.T) {
	p := peer.ID("p")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	relayed := []retryView{{id: p, dialled: true}}
	state := map[peer.ID]retryState{}
	var due []peer.ID
	step := func(views []retryView, active bool, at time.Time) {
		t.Helper()
		state, due = planPunchRetries(state, views, active, at)
	}
	step(relayed, true, t0)
	if len(due) != 0 || state[p].since != t0 {
		t.Fatalf("first sight: due %v state %+v, want none due and since t0", due, state)
	}
	// Inactive service: the wait is over but nothing is due.
	step(relayed, false, t0.Add(time.Hour))
	if len(due) != 0 {
		t.Fatalf("due %v while the punch service is inactive", due)
	}
	at := t0
	for i, wait := range []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute} {
		step(relayed, true, at.Add(wait-time.Second))
		if len(due) != 0 {
			t.Fatalf("retry %d due %v before its wait %v", i+1, due, wait)
		}
		at = at.Add(wait)
		step(relayed, true, at)
		if !slices.Equal(due, []peer.ID{p}) || state[p].tries != i+1 {
			t.Fatalf("retry %d after %v: due %v state %+v", i+1, wait, due, state[p])
		}
	}
	// After the last wait, no more retries (each cuts the streams open on
	// the relayed connection): the peer stays, not due.
	step(relayed, true, at.Add(24*time.Hour))
	if len(due) != 0 || state[p].tries != len(punchBackoff) {
		t.Fatalf("after the last retry: due %v state %+v, want none due", due, state[p])
	}
	// A relayed connection the peer dialled too: closing ours would make
	// no new one reach it, so no retry.
	both := map[peer.ID]retryState{}
	if next, d := planPunchRetries(both, []retryView{{id: p, dialled: true, received: true}}, true, t0); len(next) != 0 || len(d) != 0 {
		t.Fatalf("both directions relayed: state %v due %v, want empty", next, d)
	}
	// A direct connection forgets the peer; relayed again, it starts over.
	step([]retryView{{id: p, direct: true, dialled: true}}, true, at.Add(time.Hour))
	if len(state) != 0 || len(due) != 0 {
		t.Fatalf("direct: state %v due %v, want empty", state, due)
	}
	step(relayed, true, at.Add(2*time.Hour))
	step(relayed, true, at.Add(2*time.Hour+10*time.Second))
	if !slices.Equal(due, []peer.ID{p}) || state[p].tries != 1 {
		t.Fatalf("after a direct conn: due %v state %+v, want the 10 s retry", due, state[p])
	}
	// Inbound only: the peer retries, not this node.
	state = map[peer.ID]retryState{}
	step([]retryView{{id: p}}, true, t0)
	step([]retryView{{id: p}}, true, t0.Add(time.Hour))
	if len(state) != 0 || len(due) != 0 {
		t.Fatalf("inbound relayed only: state %v due %v, want empty", state, due)
	}
}

// TestPlanPunchRetriesBounded: the state holds only peers reached through
// relayed connections now; peers gone are pruned at the next sweep.
func TestPlanPunchRetriesBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var views []retryView
	for i := range 1000 {
		views = append(views, retryView{id: peer.ID(fmt.Sprint(i)), dialled: true})
	}
	state, _ := planPunchRetries(nil, views, true, t0)
	if len(state) != 1000 {
		t.Fatalf("state holds %d peers, want 1000", len(state))
	}
	state, _ = planPunchRetries(state, views[:3], true, t0.Add(time.Second))
	if len(state) != 3 {
		t.Fatalf("state holds %d peers after 997 left, want 3", len(state))
	}
	state, _ = planPunchRetries(state, nil, true, t0.Add(2*time.Second))
	if len(state) != 0 {
		t.Fatalf("state holds %d peers with no connection, want 0", len(state))
	}
}

// TestNATSimPunchRetry: h1 dials h2 through the relay while every packet
// between them is dropped, so h2's punch fails and go-libp2p leaves the
// pair relayed; the path then clears. Part "punchretry" on h1 (the
// dialling side) waits its first back-off, closes the relayed connection
// and dials again through the relay; h2 punches on the new connection and
// the pair ends direct at both ends.
func TestNATSimPunchRetry(t *testing.T) {
	skipPunchUnderRace(t)
	s := newNATSim(t, 60)
	s.router.cut.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.h1.Connect(ctx, s.circuit()); err != nil {
		t.Fatalf("relayed dial: %v", err)
	}
	waitFor(t, "h2's punch failure", func() bool {
		r, ok := s.punch2.result(s.h1.ID())
		return ok && !r.OK && r.Error != "" && r.Attempts > 0
	})
	s.router.cut.Store(false)
	// Only the circuit address: the redial goes through the relay, so the
	// direct connection comes from h2's punch.
	s.h1.Peerstore().ClearAddrs(s.h2.ID())
	s.h1.Peerstore().AddAddrs(s.h2.ID(), s.circuit().Addrs, time.Hour)

	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	r := newPunchRetry(s.h1, func() time.Time { return now }, func(context.Context, peer.ID) bool { return true }, nil)
	if got := r.sweep(ctx); len(got) != 0 {
		t.Fatalf("retried %v at first sight", got)
	}
	if p := pathOf(s.h1, s.h2.ID()); p.Direct || !p.Relayed {
		t.Fatalf("path %+v before the retry: want relayed only", p)
	}
	now = t0.Add(punchBackoff[0])
	if got := r.sweep(ctx); !slices.Equal(got, []peer.ID{s.h2.ID()}) {
		t.Fatalf("retried %v after the first back-off, want h2", got)
	}
	waitFor(t, "a direct connection h1→h2", func() bool { return pathOf(s.h1, s.h2.ID()).Direct })
	waitFor(t, "a direct connection h2→h1", func() bool { return pathOf(s.h2, s.h1.ID()).Direct })
	waitFor(t, "h2's punch success", func() bool { r, _ := s.punch2.result(s.h1.ID()); return r.OK })
	// Direct now: the peer is forgotten.
	now = now.Add(time.Hour)
	if got := r.sweep(ctx); len(got) != 0 || len(r.state) != 0 {
		t.Fatalf("after the punch: retried %v, state %v", got, r.state)
	}
}
