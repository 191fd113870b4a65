package peer

import (
	"testing"
	"time"
)

// TestPunchUnderWayClockSetBack: the tracer's results carry go-libp2p's
// event times (wall clock, no monotonic reading), compared with the
// sweep's reading of the same clock. When the system clock is set back
// (NTP, a phone's network time) after an event, the elapsed time comes out
// negative; a punch is under way for at most a dial and a round gap after
// its last event, so a clock set back by an hour must not hold the retry
// off for an hour.
func TestPunchUnderWayClockSetBack(t *testing.T) {
	opened := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	event := opened.Add(5 * time.Second)
	// 30 s of real time after the event, with the clock set back by 1 h
	// in between.
	at := event.Add(30*time.Second - time.Hour)
	for _, c := range []struct {
		name string
		r    PunchResult
	}{
		{"a round started, its end never seen", PunchResult{Attempts: 1, At: event}},
		{"a failed round, rounds left", PunchResult{Error: "x", Attempts: 1, At: event}},
	} {
		if punchUnderWay(c.r, true, opened, at) {
			t.Errorf("%s: a punch is under way 30 s after its last event because the clock was set back 1 h", c.name)
		}
	}
}

// TestPunchUnderWayPeerRoundRuns: the end of a round seen here is this
// side's dial ending (handleNewStream's holePunchConnect); the peer's dial
// of the same round started with it and runs up to punchDialWait, and the
// peer starts its next round only once its own dial ended. A dial here
// that fails at once (no route to the peer's addresses, a gater's refusal)
// ends the round here up to punchDialWait before the peer's, so the next
// round may start up to punchDialWait+roundGap after the end seen here:
// a retry in between cuts the punch, and the peer, its punch still active,
// refuses to punch on the new connection (holepunch.ErrHolePunchActive).
func TestPunchUnderWayPeerRoundRuns(t *testing.T) {
	opened := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ended := opened.Add(6 * time.Second) // round 1 started and failed here at once
	r := PunchResult{Error: "no route", Attempts: 1, At: ended}
	// The peer's dial of round 1 ends 10 s later; its round 2 begins
	// after the coordination round trip.
	at := ended.Add(punchDialWait + time.Second)
	if !punchUnderWay(r, true, opened, at) {
		t.Error("a punch reported over while the peer's dial of the failed round may still be running")
	}
}
