package service

import (
	"testing"
	"time"
)

// TestReceiptKeyAfterMessage: bob read a message of alice's cell sent by
// a device whose clock runs a day ahead (or bob's cell lies about the
// key): his receipt's key is a day ahead of alice's clock. A message
// alice sends after that receipt came, which bob has not read (his
// receipt came before it existed), is recorded delivered on his ack,
// not read: the kept receipt key covers the messages that existed when
// it came, not every later one ordered before it.
func TestReceiptKeyAfterMessage(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	ctx := t.Context()
	c, err := alice.cons.Get(ctx, "Bob")
	if err != nil {
		t.Fatal(err)
	}
	ahead := time.Unix(alice.clock.Load(), 0).Add(24 * time.Hour).UnixMilli()
	if err := alice.svc.noteReceipt(ctx, c, orderKeyOf(alice, ahead)); err != nil {
		t.Fatal(err)
	}
	m, err := alice.svc.Send(ctx, "Bob", "not read yet")
	if err != nil {
		t.Fatal(err)
	}
	if m.State != Delivered {
		t.Fatalf("a message sent after the receipt came, acked, is recorded %s, want delivered", m.State)
	}
}
