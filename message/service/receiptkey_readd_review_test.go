package service

import (
	"testing"
	"time"
)

// TestReceiptKeyOfEarlierAdding: a contact removed and added again (a
// new Added time) starts with no receipt: the key of the last receipt of
// its earlier adding does not make a message out going delivered read,
// as the mailbox key record of the earlier adding is no key (heldKeyOf).
func TestReceiptKeyOfEarlierAdding(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	ctx := t.Context()
	setAdded := func(at time.Time) {
		alice.cons.mu.Lock()
		defer alice.cons.mu.Unlock()
		for i := range alice.cons.cs {
			alice.cons.cs[i].Added = at
		}
	}
	alice.cons.add("Bob", bob.list)
	setAdded(time.Unix(100, 0))
	conv := hexKey(bob.list.Cell)
	c, err := alice.cons.Get(ctx, "Bob")
	if err != nil {
		t.Fatal(err)
	}
	outAt(t, alice, conv, orderKeyOf(alice, 2000), Stored)
	outAt(t, alice, conv, orderKeyOf(alice, 900), Sent)
	if err := alice.svc.noteReceipt(ctx, c, orderKeyOf(alice, 2000)); err != nil {
		t.Fatal(err)
	}
	m := Message{Direction: Out, Conversation: conv, Order: orderKeyOf(alice, 1500)}
	if !alice.svc.readBefore(ctx, m) {
		t.Fatal("a message before the receipt's key is not read")
	}
	setAdded(time.Unix(200, 0)) // removed, added again
	if alice.svc.readBefore(ctx, m) {
		t.Fatal("a contact added again: its earlier adding's receipt key makes a message read")
	}
	// Its first receipt, up to an earlier key than the earlier adding's,
	// is taken.
	if c, err = alice.cons.Get(ctx, "Bob"); err != nil {
		t.Fatal(err)
	}
	if err := alice.svc.noteReceipt(ctx, c, orderKeyOf(alice, 1000)); err != nil {
		t.Fatal(err)
	}
	if alice.svc.readBefore(ctx, m) || !alice.svc.readBefore(ctx, Message{Direction: Out, Conversation: conv, Order: orderKeyOf(alice, 900)}) {
		t.Fatal("a contact added again: its first receipt's key not taken")
	}
}
