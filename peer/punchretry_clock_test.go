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
