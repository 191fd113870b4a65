package service

import (
	"testing"
	"time"
)

// TestLimiter: at most skipLogBurst events a window are logged; the
// others are counted and reported with the first of the next window.
func TestLimiter(t *testing.T) {
	var l limiter
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	logged := 0
	for i := range 1000 {
		ok, quiet := l.allow(at.Add(time.Duration(i) * time.Millisecond))
		if quiet != 0 {
			t.Fatalf("event %d: %d reported quiet within the first window", i, quiet)
		}
		if ok {
			logged++
		}
	}
	if logged != skipLogBurst {
		t.Errorf("%d logged in one window, want %d", logged, skipLogBurst)
	}
	ok, quiet := l.allow(at.Add(skipLogWindow + time.Second))
	if !ok || quiet != 1000-skipLogBurst {
		t.Errorf("next window: logged %v, %d reported quiet, want %d", ok, quiet, 1000-skipLogBurst)
	}
	if _, quiet := l.allow(at.Add(skipLogWindow + 2*time.Second)); quiet != 0 {
		t.Errorf("the quiet count reported twice: %d", quiet)
	}
}
