package peer

import (
	"testing"
	"time"
)

// TestTimeBucketAfterClockSetBack: the time protocol's bucket refills only
// once the clock passes the last instant it saw. A clock an hour ahead,
// set right (which is what the doctor tells its user to do), leaves the
// node refusing every time ask for an hour: its bucket, drained once,
// refills from the wrong instant on.
func TestTimeBucketAfterClockSetBack(t *testing.T) {
	b := newBucket(TimeRate, TimeBurst)
	wrong := time.Unix(1_800_000_000, 0).Add(time.Hour)
	for range TimeBurst {
		b.take(wrong)
	}
	right := wrong.Add(-time.Hour)
	n := 0
	for i := range 10 {
		if b.take(right.Add(time.Duration(i+1) * time.Second)) {
			n++
		}
	}
	if n == 0 {
		t.Error("no time ask answered in the 10 s after the clock was set back an hour")
	}
}
