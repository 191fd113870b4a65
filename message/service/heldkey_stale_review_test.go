package service

import (
	"bytes"
	"testing"
	"time"

	contactservice "github.com/exopeer/exopeer/contact/service"
)

// TestHeldKeyStaleKeys: a mailbox read notes the key it found the
// contact's record under with the keys it took at its start (pickKeys'
// few); a direct ack meanwhile recorded the contact holding a key of a
// newer epoch, made after that start. The read's note must not take the
// record back to the older key: the contact, holding the newer list,
// polls under the newer key only, and the frames the writer seals under
// the older one are not read.
func TestHeldKeyStaleKeys(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	_ = alice.svc.Close()
	withMailbox(t, newFakeDHT(), alice)
	alice.start(t)
	ctx := t.Context()
	k1 := alice.mkeys.(fakeKeys).key
	c := contactservice.Contact{Name: "Bob", Devices: bob.list, Added: time.Unix(100, 0)}
	alice.svc.noteHeldKey(ctx, c, k1.PublicKey().Bytes(), nil)

	// The read starts: its keys, before the new epoch.
	stale, err := alice.mkeys.MailboxKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A device removed: a new epoch, and bob's direct ack of a message
	// carrying the new list.
	k2 := newEpoch(t, alice, 1)
	alice.svc.noteHeldKey(ctx, c, k2.PublicKey().Bytes(), nil)
	if got := alice.svc.heldKeyOf(ctx, c); !bytes.Equal(got, k2.PublicKey().Bytes()) {
		t.Fatal("bob's direct ack did not record the new key")
	}
	// The read ends: it found bob's record under the older key.
	alice.svc.noteHeldKey(ctx, c, k1.PublicKey().Bytes(), stale)
	if got := alice.svc.heldKeyOf(ctx, c); !bytes.Equal(got, k2.PublicKey().Bytes()) {
		t.Fatal("a read with keys taken before the new epoch took the key held back to the older one")
	}
}
