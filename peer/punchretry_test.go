package peer

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/ambient"
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
		state, due = planPunchRetries("", state, views, active, at)
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
	// A relayed connection the peer dialled too, and the peer's ID is the
	// lower: the peer retries (TestPlanPunchRetriesMutual), not this node.
	both := map[peer.ID]retryState{}
	if next, d := planPunchRetries("q", both, []retryView{{id: p, dialled: true, received: true}}, true, t0); len(next) != 0 || len(d) != 0 {
		t.Fatalf("both directions relayed, peer lower: state %v due %v, want empty", next, d)
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

// TestPlanPunchRetriesMutual: a pair that each dialled a relayed
// connection to the other (after a restart, both known tables dial at
// once, before either's DCUtR handler is registered, so neither arrival
// was punched): exactly one side, the lower peer ID, retries, with the
// usual back-off; the higher never does, so that the peer receives one
// new relayed connection and punches on it.
func TestPlanPunchRetriesMutual(t *testing.T) {
	lo, hi := peer.ID("a"), peer.ID("b")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	plan := func(self, other peer.ID) []time.Time {
		t.Helper()
		views := []retryView{{id: other, dialled: true, received: true}}
		state := map[peer.ID]retryState{}
		var retried []time.Time
		for at := t0; at.Before(t0.Add(2 * time.Hour)); at = at.Add(punchRetrySweep) {
			var due []peer.ID
			state, due = planPunchRetries(self, state, views, true, at)
			if len(due) > 0 {
				if !slices.Equal(due, []peer.ID{other}) {
					t.Fatalf("%s: due %v, want %s", self, due, other)
				}
				retried = append(retried, at)
			}
		}
		return retried
	}
	if got := plan(hi, lo); len(got) != 0 {
		t.Errorf("the higher peer ID retried at %v, want never (the lower retries)", got)
	}
	got := plan(lo, hi)
	want := []time.Time{t0.Add(10 * time.Second)}
	for _, d := range punchBackoff[1:] {
		want = append(want, want[len(want)-1].Add(d))
	}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("the lower peer ID retried at %v, want %v (punchBackoff)", got, want)
	}
	if !mutualRetry(lo, hi) || mutualRetry(hi, lo) || mutualRetry(lo, lo) {
		t.Errorf("mutualRetry: (lo, hi) %v, (hi, lo) %v, (lo, lo) %v; want true, false, false", mutualRetry(lo, hi), mutualRetry(hi, lo), mutualRetry(lo, lo))
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
	state, _ := planPunchRetries("", nil, views, true, t0)
	if len(state) != 1000 {
		t.Fatalf("state holds %d peers, want 1000", len(state))
	}
	state, _ = planPunchRetries("", state, views[:3], true, t0.Add(time.Second))
	if len(state) != 3 {
		t.Fatalf("state holds %d peers after 997 left, want 3", len(state))
	}
	state, _ = planPunchRetries("", state, nil, true, t0.Add(2*time.Second))
	if len(state) != 0 {
		t.Fatalf("state holds %d peers with no connection, want 0", len(state))
	}
}

// TestPlanPunchRetriesPunching: a retry whose wait is over is not due
// while a punch with the peer may be under way, nor is its back-off
// advanced; it is due at the first sweep after the punch ended.
func TestPlanPunchRetriesPunching(t *testing.T) {
	p := peer.ID("p")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	state, _ := planPunchRetries("", nil, []retryView{{id: p, dialled: true}}, true, t0)
	for i := range 10 {
		var due []peer.ID
		state, due = planPunchRetries("", state, []retryView{{id: p, dialled: true, punching: true}}, true, t0.Add(time.Duration(10+i)*time.Second))
		if len(due) != 0 || state[p].tries != 0 || !state[p].since.Equal(t0) {
			t.Fatalf("during a punch: due %v state %+v, want none due and the back-off unchanged", due, state[p])
		}
	}
	state, due := planPunchRetries("", state, []retryView{{id: p, dialled: true}}, true, t0.Add(time.Minute))
	if !slices.Equal(due, []peer.ID{p}) || state[p].tries != 1 {
		t.Fatalf("after the punch: due %v state %+v, want the retry", due, state[p])
	}
}

// TestPlanPunchRetriesFailed: a peer whose redial failed (no connection
// since) keeps its back-off for punchKeepFailed: reached through the relay
// again, its next retry comes after the next wait, not after 10 s; past
// punchKeepFailed, or reached directly, it is forgotten; at most
// maxPunchFailed such peers are kept, the latest failures.
func TestPlanPunchRetriesFailed(t *testing.T) {
	p := peer.ID("p")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	relayed := []retryView{{id: p, dialled: true}}
	state, _ := planPunchRetries("", nil, relayed, true, t0)
	state, due := planPunchRetries("", state, relayed, true, t0.Add(10*time.Second))
	if len(due) != 1 {
		t.Fatalf("first retry not due: %v", due)
	}
	failedAt := t0.Add(10 * time.Second)
	st := state[p]
	st.failed = true // as sweep marks it
	state[p] = st
	state, _ = planPunchRetries("", state, nil, true, failedAt.Add(5*time.Second))
	if got := state[p]; got.tries != 1 || !got.failed || !got.since.Equal(failedAt) {
		t.Fatalf("no connection after a failed redial: state %+v, want it kept", got)
	}
	state, due = planPunchRetries("", state, relayed, true, failedAt.Add(20*time.Second))
	if len(due) != 0 || state[p].tries != 1 || state[p].failed {
		t.Fatalf("reached again 20 s after a failed retry: due %v state %+v, want the 1 min wait to go on", due, state[p])
	}
	state, due = planPunchRetries("", state, relayed, true, failedAt.Add(time.Minute))
	if !slices.Equal(due, []peer.ID{p}) || state[p].tries != 2 {
		t.Fatalf("1 min after the failed retry: due %v state %+v, want the second retry", due, state[p])
	}
	// Failed, then gone for longer than punchKeepFailed: forgotten.
	st = state[p]
	st.failed = true
	state[p] = st
	state, _ = planPunchRetries("", state, nil, true, st.since.Add(punchKeepFailed-time.Second))
	if len(state) != 1 {
		t.Fatalf("forgotten before punchKeepFailed: %v", state)
	}
	state, _ = planPunchRetries("", state, nil, true, st.since.Add(punchKeepFailed))
	if len(state) != 0 {
		t.Fatalf("kept past punchKeepFailed: %v", state)
	}
	// Failed, then reached directly: forgotten.
	state = map[peer.ID]retryState{p: {since: t0, tries: 2, failed: true}}
	if state, _ = planPunchRetries("", state, []retryView{{id: p, direct: true}}, true, t0.Add(time.Second)); len(state) != 0 {
		t.Fatalf("kept when reached directly: %v", state)
	}
	// At most maxPunchFailed, the latest failures.
	state = map[peer.ID]retryState{}
	n := maxPunchFailed + 100
	for i := range n {
		state[peer.ID(fmt.Sprint(i))] = retryState{since: t0.Add(time.Duration(i) * time.Second), tries: 1, failed: true}
	}
	state, _ = planPunchRetries("", state, nil, true, t0.Add(time.Duration(n)*time.Second))
	if len(state) != maxPunchFailed {
		t.Fatalf("kept %d failed peers, want %d", len(state), maxPunchFailed)
	}
	for i := n - maxPunchFailed; i < n; i++ {
		if _, ok := state[peer.ID(fmt.Sprint(i))]; !ok {
			t.Fatalf("a recent failure (%d) was dropped before older ones", i)
		}
	}
}

// TestPunchUnderWay: when a punch on a relayed connection may still be
// under way, from the receiving side's last result.
func TestPunchUnderWay(t *testing.T) {
	opened := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return opened.Add(d) }
	s := time.Second
	for _, c := range []struct {
		name string
		r    PunchResult
		seen bool
		now  time.Duration
		want bool
	}{
		{"no event yet: the initiator's direct dial", PunchResult{}, false, 5 * s, true},
		{"no event within a dial and a gap: nothing comes", PunchResult{}, false, 20 * s, false},
		{"an older punch only", PunchResult{Error: "x", Attempts: 3, At: at(-time.Minute)}, true, 5 * s, true},
		{"a round running", PunchResult{Attempts: 1, At: at(5 * s)}, true, 20 * s, true},
		{"a round running past a dial and a gap", PunchResult{Attempts: 1, At: at(5 * s)}, true, 25 * s, false},
		{"a failed round, rounds left", PunchResult{Error: "x", Attempts: 2, At: at(15 * s)}, true, 20 * s, true},
		{"a failed round, no next within a dial and the gap", PunchResult{Error: "x", Attempts: 2, At: at(15 * s)}, true, 35 * s, false},
		{"the last round failed", PunchResult{Error: "x", Attempts: maxRounds, At: at(25 * s)}, true, 26 * s, false},
		{"a protocol error before any round", PunchResult{Error: "x", At: at(3 * s)}, true, 4 * s, false},
		{"a success", PunchResult{OK: true, Attempts: 1, At: at(5 * s)}, true, 6 * s, false},
	} {
		if got := punchUnderWay(c.r, c.seen, opened, at(c.now)); got != c.want {
			t.Errorf("%s: under way %v, want %v", c.name, got, c.want)
		}
	}
	if (*punchTracer)(nil).underWay("p", opened, at(s)) {
		t.Error("a nil tracer reports a punch under way")
	}
}

// TestNATSimPunchRetry: h1 dials h2 through the relay while every packet
// between them is dropped, so h2's punch (a direct dial, then three
// rounds) fails and go-libp2p leaves the pair relayed. Part "punchretry"
// on h1 (the dialling side) does not retry while that punch is under way,
// even past its first back-off: it waits until the punch ended. Its first
// redial fails (h1 has no address for h2 then): the back-off goes on from
// it when h2 is reached through the relay again, not over at 10 s. Once
// the punch on that connection ended too and the path is clear, the next
// retry closes the relayed connection and dials again through the relay;
// h2 punches on the new connection and the pair ends direct at both ends.
func TestNATSimPunchRetry(t *testing.T) {
	skipPunchUnderRace(t)
	s := newNATSim(t, 60)
	s.router.cut.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := s.h1.Connect(ctx, s.circuit()); err != nil {
		t.Fatalf("relayed dial: %v", err)
	}
	relayedConn := func() network.Conn {
		t.Helper()
		conns := s.h1.Network().ConnsToPeer(s.h2.ID())
		if len(conns) != 1 {
			t.Fatalf("h1 holds %d connections to h2, want the relayed one", len(conns))
		}
		return conns[0]
	}
	first := relayedConn()

	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	r := newPunchRetry(s.h1, func() time.Time { return now }, func(context.Context, peer.ID) bool { return true }, s.punch1, nil)
	if got := r.sweep(ctx); len(got) != 0 {
		t.Fatalf("retried %v at first sight", got)
	}
	// A round of h2's punch under way at h1: past the back-off, no retry.
	waitFor(t, "a round of h2's punch at h1", func() bool {
		r, ok := s.punch1.result(s.h2.ID())
		return ok && r.Attempts > 0 && r.Error == ""
	})
	now = t0.Add(punchBackoff[0])
	if got := r.sweep(ctx); len(got) != 0 || r.state[s.h2.ID()].tries != 0 {
		t.Fatalf("retried %v (state %+v) while a punch was under way", got, r.state[s.h2.ID()])
	}
	if c := relayedConn(); c.ID() != first.ID() {
		t.Fatalf("the relayed connection was replaced during the punch")
	}
	// No address for h2 at h1: the retry, once the punch ended, fails.
	s.h1.Peerstore().ClearAddrs(s.h2.ID())
	eventually(t, time.Minute, "the first retry", func() bool {
		r.sweep(ctx)
		return r.state[s.h2.ID()].tries == 1
	})
	if res, _ := s.punch2.result(s.h1.ID()); res.OK || res.Error == "" || res.Attempts != maxRounds {
		t.Fatalf("retried while h2's punch was not over: %+v", res)
	}
	if st := r.state[s.h2.ID()]; !st.failed || !st.since.Equal(now) {
		t.Fatalf("after a failed redial: state %+v, want failed since %v", st, now)
	}
	// A sweep while h1 holds no connection to h2 keeps its back-off.
	now = now.Add(punchRetrySweep)
	if got := r.sweep(ctx); len(got) != 0 || len(s.h1.Network().ConnsToPeer(s.h2.ID())) != 0 {
		t.Fatalf("retried %v with no connection to h2", got)
	}
	// Reached through the relay again: the back-off goes on from the
	// failed retry (1 min), not over.
	if err := s.h1.Connect(ctx, s.circuit()); err != nil {
		t.Fatalf("relayed dial again: %v", err)
	}
	second := relayedConn()
	now = now.Add(punchBackoff[0])
	if got := r.sweep(ctx); len(got) != 0 {
		t.Fatalf("retried %v 10 s after a failed retry", got)
	}
	if st := r.state[s.h2.ID()]; st.tries != 1 || st.failed || !st.since.Equal(t0.Add(punchBackoff[0])) {
		t.Fatalf("reached again after a failed retry: state %+v, want 1 try since %v", st, t0.Add(punchBackoff[0]))
	}
	eventually(t, time.Minute, "the end of h2's punch on the second connection", func() bool {
		return !s.punch1.underWay(s.h2.ID(), second.Stat().Opened, ambient.Deadline(0))
	})
	s.router.cut.Store(false)
	// Only the circuit address: the redial goes through the relay, so the
	// direct connection comes from h2's punch.
	s.h1.Peerstore().ClearAddrs(s.h2.ID())
	s.h1.Peerstore().AddAddrs(s.h2.ID(), s.circuit().Addrs, time.Hour)
	now = t0.Add(punchBackoff[0] + punchBackoff[1])
	if got := r.sweep(ctx); !slices.Equal(got, []peer.ID{s.h2.ID()}) {
		t.Fatalf("retried %v after the second back-off, want h2", got)
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

// TestPlanPunchRetriesDropped: a peer retried once whose relayed
// connection then ends by itself (not a failed redial: a relay's
// circuit limit, a relay restart) keeps its back-off when it is reached
// through the relay again, so that a pair that cannot punch is not cut
// at 10 s and 1 min on every new circuit; one lost before its first
// retry starts over.
func TestPlanPunchRetriesDropped(t *testing.T) {
	p := peer.ID("p")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	relayed := []retryView{{id: p, dialled: true}}
	state, _ := planPunchRetries("", nil, relayed, true, t0)
	state, due := planPunchRetries("", state, relayed, true, t0.Add(10*time.Second))
	if len(due) != 1 {
		t.Fatalf("first retry not due: %v", due)
	}
	retried := t0.Add(10 * time.Second)
	state, _ = planPunchRetries("", state, relayed, true, retried.Add(5*time.Second))
	state, _ = planPunchRetries("", state, nil, true, retried.Add(30*time.Second)) // the circuit ends by itself
	if got := state[p]; got.tries != 1 {
		t.Fatalf("retried peer whose connection ended: state %+v, want its back-off kept", got)
	}
	state, _ = planPunchRetries("", state, relayed, true, retried.Add(40*time.Second)) // a new circuit
	state, due = planPunchRetries("", state, relayed, true, retried.Add(55*time.Second))
	if len(due) != 0 {
		t.Fatalf("retried 15 s after a new circuit (%v): the back-off started over", due)
	}
	state, due = planPunchRetries("", state, relayed, true, retried.Add(time.Minute))
	if !slices.Equal(due, []peer.ID{p}) || state[p].tries != 2 {
		t.Fatalf("1 min after the first retry: due %v state %+v, want the second", due, state[p])
	}
	// Lost before any retry: forgotten, it starts over.
	fresh, _ := planPunchRetries("", nil, relayed, true, t0)
	if fresh, _ = planPunchRetries("", fresh, nil, true, t0.Add(time.Second)); len(fresh) != 0 {
		t.Fatalf("kept a peer lost before its first retry: %v", fresh)
	}
}
