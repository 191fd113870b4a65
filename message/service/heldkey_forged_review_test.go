package service

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/exopeer/exopeer/message/mailbox"
)

// TestHeldKeyForgedRecord: alice's cell changed its mailbox key (a
// device removed: the removed device keeps the old key's secret, and so
// the old pair's with bob). No direct ack told alice which key bob
// holds, so her writer seals under her newest key. The removed device
// puts a record of bob's direction, holding nothing of bob's, under the
// old pair: alice's reader must not take it for bob holding the old key,
// or her writer goes back to sealing under the key the removed device
// reads (and bob, holding her newer list, does not).
func TestHeldKeyForgedRecord(t *testing.T) { bubble(t, testHeldKeyForgedRecord) }

func testHeldKeyForgedRecord(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	ctx := t.Context()
	_ = bob.svc.Close()
	k1 := alice.mkeys.(fakeKeys).key
	k2 := newEpoch(t, alice, 1)
	c, err := alice.cons.Get(ctx, "Bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, ks, err := alice.svc.pairWith(ctx, c, time.Now()); err != nil || !ks[0].Private.Equal(k2) {
		t.Fatalf("before: the writer's key is not her newest (%v)", err)
	}
	bobKey, err := bob.list.MailboxKey()
	if err != nil {
		t.Fatal(err)
	}
	aliceCell, bobCell := alice.cell.Public().(ed25519.PublicKey), bob.cell.Public().(ed25519.PublicKey)
	p, err := mailbox.PairSecret(k1, aliceCell, bobCell, bobKey)
	if err != nil {
		t.Fatal(err)
	}
	slot, err := mailbox.NewSlot(p, bobCell, aliceCell, mailbox.Epoch(time.Now()), 0)
	if err != nil {
		t.Fatal(err)
	}
	putEntries(t, m, slot, nil, 1) // the removed device's: an empty record of bob's direction

	alice.svc.mailboxRead(ctx, c, false, 0)
	if got := alice.svc.heldKeyOf(ctx, c); bytes.Equal(got, k1.PublicKey().Bytes()) {
		t.Fatal("a record holding nothing of bob's, under the old pair, recorded bob holding the old key")
	}
	if _, ks, err := alice.svc.pairWith(ctx, c, time.Now()); err != nil || !ks[0].Private.Equal(k2) {
		t.Fatalf("after: the writer's key went back to the old one (%v)", err)
	}
}
