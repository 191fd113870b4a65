package service

import (
	"runtime"
	"testing"
	"testing/synctest"
)

// bubble runs f in a synctest bubble. Under the race detector it runs on
// one P, as dht's tests do: with two, Go 1.26's race detector crashes now
// and then inside a bubble's timers (golang/go#78156; see
// dht/republish_test.go and docs/simnet.md).
func bubble(t *testing.T, f func(*testing.T)) {
	if raceEnabled {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	}
	synctest.Test(t, f)
}
