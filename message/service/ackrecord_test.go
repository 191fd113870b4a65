package service

import (
	"errors"
	"testing"
)

// TestNoAckBeforeRecord: a receiver whose record of the message fails
// does not acknowledge it (the sender keeps it "sent"), and the next
// message, the store back, goes through. No test failed when the
// receiver acknowledged with its record failing.
func TestNoAckBeforeRecord(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	ctx := t.Context()
	if _, err := alice.svc.Send(ctx, "Bob", "first"); err != nil {
		t.Fatal(err)
	}
	bob.store.failPuts(errDiskFull)
	m, err := alice.svc.Send(ctx, "Bob", "not recorded")
	if !errors.Is(err, ErrUnreachable) || m.State != Sent {
		t.Fatalf("acknowledged with the receiver's record failing: %+v, %v", m, err)
	}
	bob.store.failPuts(nil)
	if _, err := alice.svc.Send(ctx, "Bob", "again"); err != nil {
		t.Fatal(err)
	}
	if got := texts(bob.store.messages()); len(got) != 2 || got[1] != "again" {
		t.Fatalf("bob holds %q", got)
	}
}
