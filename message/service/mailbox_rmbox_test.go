package service

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/message/mailbox"
)

// TestMailboxAckOtherContact: an ack in the slot bob → alice names a
// message alice sent to carol, not to bob. Only carol's cell can
// acknowledge it: bob's ack must not make it delivered.
func TestMailboxAckOtherContact(t *testing.T) { bubble(t, testMailboxAckOtherContact) }

func testMailboxAckOtherContact(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	alice, bob, carol := devs[0], devs[1], devs[2]
	m := newFakeDHT()
	withMailbox(t, m, alice, bob, carol)
	alice.befriend("Bob", bob)
	alice.befriend("Carol", carol)
	bob.befriend("Alice", alice)
	carol.befriend("Alice", alice)
	onClock(t, alice, bob, carol)
	_ = bob.svc.Close()
	_ = carol.svc.Close()
	sent := sendPending(t, alice, "Carol", "for carol")
	id, err := message.ParseID(sent.ID)
	if err != nil {
		t.Fatal(err)
	}
	putEntries(t, m, slotOf(t, bob, alice, 0), []mailbox.Entry{mailbox.Ack(id)}, 1)
	time.Sleep(2 * time.Minute)
	synctest.Wait()
	for _, got := range alice.store.messages() {
		if got.ID == sent.ID && got.State == Delivered {
			t.Fatalf("bob's ack made alice's message to carol %s", got.State)
		}
	}
	_ = alice.svc.Close()
}
