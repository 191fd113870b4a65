package doctor

import (
	"testing"
	"time"
)

// TestClockVerdictNeedsPeersThatAgree: "this node's clock is wrong" is a
// conclusion from peers that agree with each other against this node. Two
// peers off in opposite directions (one an hour ahead, one an hour behind)
// disagree with each other as much as with this node: that is two wrong
// peers (or one lying), not a wrong local clock.
func TestClockVerdictNeedsPeersThatAgree(t *testing.T) {
	f := Facts{Clocks: []Clock{
		{Peer: "B", Skew: time.Hour, RTT: 10 * time.Millisecond},
		{Peer: "C", Skew: -time.Hour, RTT: 10 * time.Millisecond},
	}}
	if got := Diagnose(f); has(got, want{CheckClock, Problem, "this node's clock is wrong", ""}) {
		t.Errorf("peers an hour ahead and an hour behind blame this node's clock:\n%s", dump(got))
	}
}
