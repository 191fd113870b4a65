package service

import (
	"testing"

	ds "github.com/ipfs/go-datastore"
)

// TestAckedDespiteFailedConfirmWrite: a message the device acknowledged
// is delivered even if the write that follows the acknowledgement (the
// session confirmed, the device list acknowledged) fails: that write
// only spares the next messages their initial header and list, and the
// state before it, on disk, is safe to go on from. It used to make Send
// report the message unreachable and leave it "sent" in this cell while
// the contact's cell had it, and try the contact's other devices with it.
func TestAckedDespiteFailedConfirmWrite(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	ctx := t.Context()
	// When bob records the message, alice's state before the frame is on
	// disk; her session writes fail from then on.
	bob.store.mu.Lock()
	bob.store.onPut = func() { alice.fault.fail(sessionsPrefix) }
	bob.store.mu.Unlock()
	m, err := alice.svc.Send(ctx, "Bob", "hello")
	if err != nil {
		t.Fatalf("an acknowledged message: %v", err)
	}
	if m.State != Delivered {
		t.Fatalf("an acknowledged message is %s", m.State)
	}
	if got := alice.store.messages(); len(got) != 1 || got[0].State != Delivered {
		t.Fatalf("alice records %+v, want one message delivered", got)
	}
	// The disk works again: the next messages go on from the state on
	// disk (the session's header sent again), with no new handshake.
	bob.store.mu.Lock()
	bob.store.onPut = nil
	bob.store.mu.Unlock()
	alice.fault.fail(ds.NewKey("/"))
	_ = alice.svc.Close()
	alice.keepRun = true // the state on disk is what is checked
	alice.start(t)
	for _, text := range []string{"again", "and again"} {
		if _, err := alice.svc.Send(ctx, "Bob", text); err != nil {
			t.Fatal(err)
		}
	}
	if n := alice.prek.fetches(); n != 1 {
		t.Fatalf("%d bundles fetched, want 1", n)
	}
	if n := len(bob.store.messages()); n != 3 {
		t.Fatalf("bob holds %d messages, want 3", n)
	}
}
