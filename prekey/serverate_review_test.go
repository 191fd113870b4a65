package prekey

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestServeRateClockBack: the doc (serverate.go, MaxServeAskers) says
// an asker whose bucket is forgotten needs MaxServeAskers others asking
// between two of its bursts. After the clock went back, the buckets kept
// from before have their times in the future, so they are never the
// least recently used: two askers taking turns then forget each other
// at every ask, and each ask is a fresh burst, with no bound.
func TestServeRateClockBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newServeRate()
		r.size = 4
		// Three askers seen before the clock went back an hour, their
		// buckets used up.
		later := time.Now().Add(time.Hour)
		for i := range 3 {
			r.per[testID(t, 10+i)] = bucket{tokens: 0, at: later}
		}
		p1, p2 := testID(t, 1), testID(t, 2)
		answered := 0
		for range 4 * ServeBurst {
			if r.allow(p1) {
				answered++
			}
			r.allow(p2)
		}
		if answered > ServeBurst {
			t.Fatalf("p1 answered %d times in %d asks with no time passing and one other asker, want at most ServeBurst (%d)", answered, 4*ServeBurst, ServeBurst)
		}
	})
}
