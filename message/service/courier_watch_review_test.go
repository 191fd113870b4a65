package service

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestCourierWatchSeesEveryPending: the mailbox device learns of a
// message another device of its cell left pending for a second contact
// from its watch, as the store's index sends it (an event only when the
// watched page changed), while an older message to a first contact is
// pending in backoff: it delivers it after its grace (5 s), not at its
// next pass for the first contact (up to 10 min later).
func TestCourierWatchSeesEveryPending(t *testing.T) { bubble(t, testCourierWatchSeesEveryPending) }

func testCourierWatchSeesEveryPending(t *testing.T) {
	devs := newDevices(t, "phone", "box", "bob", "carol")
	phone, box, bob, carol := devs[0], devs[1], devs[2], devs[3]
	phone.store.mu.Lock()
	phone.store.pages = true // the watches made by oneCell's restarts
	phone.store.mu.Unlock()
	oneCell(t, box.h.ID(), phone, box)
	for _, d := range []*device{phone, box} {
		d.befriend("Bob", bob)
		d.befriend("Carol", carol)
	}
	bob.befriend("Alice", phone)
	carol.befriend("Alice", phone)
	onClock(t, bob, carol)
	_ = bob.svc.Close()
	_ = carol.svc.Close()
	sendPending(t, phone, "Bob", "to bob")
	time.Sleep(time.Hour) // the box's backoff with Bob: 10 min
	sendPending(t, phone, "Carol", "to carol")
	_ = phone.svc.Close()
	carol.start(t) // the connections stay: no inbound one to the box
	time.Sleep(20 * time.Second)
	synctest.Wait()
	if got := held(t, carol, Delivered); !slices.Equal(got, []string{"to carol"}) {
		t.Fatalf("carol holds %q 20 s after she is back, want the message the box holds for her", got)
	}
}
