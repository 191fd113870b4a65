package service

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestCourierContactChurnBounded: a contact's device that connects to
// this host again and again (connections are cheap) but never
// acknowledges does not make the courier try its cell at every pass:
// a reset by a connection should leave the doubling of the delay, or
// be allowed once per delay, so that the tries stay few.
func TestCourierContactChurnBounded(t *testing.T) {
	bubble(t, testCourierContactChurnBounded)
}

func testCourierContactChurnBounded(t *testing.T) {
	alice, bob := courierPair(t)
	_ = bob.svc.Close() // up, but it acknowledges nothing
	sendPending(t, alice, "Bob", "hello")
	time.Sleep(time.Hour)
	before := alice.svc.Courier().Failed
	for range 60 {
		disconnect(t, alice, bob)
		synctest.Wait()
		if err := bob.h.Connect(t.Context(), peer.AddrInfo{ID: alice.h.ID(), Addrs: alice.h.Addrs()}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	synctest.Wait()
	if n := alice.svc.Courier().Failed - before; n > 6 {
		t.Fatalf("%d tries in a minute of a contact's device reconnecting, want at most 6", n)
	}
}
