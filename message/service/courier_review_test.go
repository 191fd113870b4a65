package service

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestCourierStrangersDoNotResetBackoff: peers that are no contact's
// devices, connecting to this host (cheap: more than MaxPokes fresh
// peer IDs a second), do not reset the backoff of a contact whose
// devices are off: the courier does not try it every second.
func TestCourierStrangersDoNotResetBackoff(t *testing.T) {
	bubble(t, testCourierStrangersDoNotResetBackoff)
}

func testCourierStrangersDoNotResetBackoff(t *testing.T) {
	alice, bob := courierPair(t)
	_ = bob.svc.Close()
	sendPending(t, alice, "Bob", "hello")
	time.Sleep(time.Hour)
	before := alice.svc.Courier().Failed
	// A minute of MaxPokes+1 strangers a second (what the notifee does
	// for each inbound connection).
	for i := range 60 {
		for j := range MaxPokes + 1 {
			alice.svc.poke(peer.ID(fmt.Sprintf("stranger-%d-%d", i, j)))
		}
		time.Sleep(time.Second)
	}
	synctest.Wait()
	if n := alice.svc.Courier().Failed - before; n > 1 {
		t.Fatalf("%d tries in a minute of strangers' connections, want at most 1 (backoff 10 min)", n)
	}
}
