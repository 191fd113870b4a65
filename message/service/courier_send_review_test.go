package service

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestCourierSendResetsBackoff: a Send that a contact's device
// acknowledges shows the contact is reachable: its older pending
// messages go at once, not at the courier's next retry (minutes away).
func TestCourierSendResetsBackoff(t *testing.T) { bubble(t, testCourierSendResetsBackoff) }

func testCourierSendResetsBackoff(t *testing.T) {
	alice, bob := courierPair(t)
	_ = bob.svc.Close()
	sendPending(t, alice, "Bob", "one")
	// The tries at 10, 30, 70, 150, 310, 630 s, then every 600 s: the
	// last at 3630 s, the next at 4230 s.
	time.Sleep(time.Hour + time.Minute)
	bob.start(t) // the connection stays: no inbound one to alice
	if m, err := alice.svc.Send(t.Context(), "Bob", "two"); err != nil || m.State != Delivered {
		t.Fatalf("send two: %+v, %v", m, err)
	}
	time.Sleep(2 * time.Second) // one pass gap
	synctest.Wait()
	if got := held(t, bob, Delivered); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("bob holds %q 2 s after alice's Send was acknowledged", got)
	}
}
