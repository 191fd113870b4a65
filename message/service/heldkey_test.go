package service

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"slices"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/exopeer/exopeer/contact"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message/mailbox"
)

// newEpoch gives d's cell a new key epoch, as a device removed does: a
// new mailbox key, carried from now on by d's list, one version newer.
// It returns the key.
func newEpoch(t *testing.T, d *device, n byte) *ecdh.PrivateKey {
	t.Helper()
	k, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{d.cell.Seed()[0] ^ 0x3c ^ n}, 32))
	if err != nil {
		t.Fatal(err)
	}
	fk := d.mkeys.(fakeKeys)
	fk.mu.Lock()
	*fk.ks = append(*fk.ks, contactservice.MailboxKey{Epoch: uint64(len(*fk.ks) + 2), Private: k, Current: true, Since: time.Now()})
	fk.mu.Unlock()
	l := contact.NewDeviceList(d.list.Cell, d.list.Version+1, d.list.Devices)
	l.Mailbox = k.PublicKey().Bytes()
	if err := l.Sign(d.cell); err != nil {
		t.Fatal(err)
	}
	d.cons.mu.Lock()
	d.list, d.cons.own = l, l
	d.cons.mu.Unlock()
	return k
}

// slotWith is the slot from a's cell to b's of today at index i, of the
// pair secret of a's mailbox key k and b's key held by a's contact b
// (theirs: the key of b's list of that version).
func slotWith(t *testing.T, k *ecdh.PrivateKey, a, b *device, theirs *ecdh.PublicKey, i int) mailbox.Slot {
	t.Helper()
	p, err := mailbox.PairSecret(k, a.cell.Public().(ed25519.PublicKey), b.cell.Public().(ed25519.PublicKey), theirs)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mailbox.NewSlot(p, a.cell.Public().(ed25519.PublicKey), b.cell.Public().(ed25519.PublicKey), mailbox.Epoch(time.Now()), i)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWriterKeyHeld: after alice's cell changes epoch (a new mailbox
// key, on a newer list), her writer still seals under the key bob's cell
// was seen to hold (his direct ack of a message carrying her list), which
// is the one bob reads with, also after a restart of hers; bob reads it,
// takes her newer list from it and acks under her new key; alice,
// finding his ack there, seals under the new key from then on.
func TestWriterKeyHeld(t *testing.T) { bubble(t, testWriterKeyHeld) }

func testWriterKeyHeld(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	ctx := t.Context()
	k1 := alice.mkeys.(fakeKeys).key
	bobKey, err := bob.list.MailboxKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.svc.Send(ctx, "Bob", "hello"); err != nil {
		t.Fatalf("alice's first message, direct: %v", err)
	}
	c, err := alice.cons.Get(ctx, "Bob")
	if err != nil {
		t.Fatal(err)
	}
	if got := alice.svc.heldKeyOf(ctx, c); !bytes.Equal(got, k1.PublicKey().Bytes()) {
		t.Fatalf("after bob's direct ack, alice holds him holding %x, want her key %x", got, k1.PublicKey().Bytes())
	}
	_ = bob.svc.Close()
	disconnect(t, alice, bob)
	k2 := newEpoch(t, alice, 1)

	old, next := slotWith(t, k1, alice, bob, bobKey, 0), slotWith(t, k2, alice, bob, bobKey, 0)
	frames := func(s mailbox.Slot) int {
		f, _ := kinds(slotEntries(t, m, s))
		return f
	}
	sendPending(t, alice, "Bob", "two")
	time.Sleep(time.Minute)
	if f, n := frames(old), frames(next); f != 1 || n != 0 {
		t.Fatalf("after her epoch changed: %d frames under the key bob holds, %d under her new one; want 1, 0", f, n)
	}
	_ = alice.svc.Close()
	alice.start(t) // the key bob holds is on disk
	sendPending(t, alice, "Bob", "three")
	time.Sleep(time.Minute)
	if f, n := frames(old), frames(next); f != 2 || n != 0 {
		t.Fatalf("after a restart: %d frames under the key bob holds, %d under her new one; want 2, 0", f, n)
	}
	_ = alice.svc.Close()

	bob.start(t)
	time.Sleep(time.Minute)
	if got := held(t, bob, Delivered); !slices.Equal(got, []string{"hello", "two", "three"}) {
		t.Fatalf("bob holds %q", got)
	}
	ca, err := bob.cons.Get(ctx, "Alice")
	if err != nil || ca.Devices.Version != alice.list.Version {
		t.Fatalf("bob holds alice's list %+v (%v), want her newer one", ca.Devices, err)
	}
	_ = bob.svc.Close()
	alice.start(t)
	time.Sleep(time.Minute)
	if got := held(t, alice, Delivered); !slices.Equal(got, []string{"hello", "two", "three"}) {
		t.Fatalf("alice holds %q", got)
	}
	if got := alice.svc.heldKeyOf(ctx, c); !bytes.Equal(got, k2.PublicKey().Bytes()) {
		t.Fatalf("after bob's ack under her new key, alice holds him holding %x, want %x", got, k2.PublicKey().Bytes())
	}
	sendPending(t, alice, "Bob", "four")
	time.Sleep(time.Minute)
	if n := frames(next); n != 1 {
		t.Fatalf("%d frames under her new key, want 1 (four)", n)
	}
}

// TestHeldKeyRecord: the record only moves forward (a key of an older
// epoch does not replace a newer one), is of one adding of the contact
// (a contact added again starts with none), and a stored value that does
// not decode reads as none (the writer falls back to the newest key).
func TestHeldKeyRecord(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	_ = alice.svc.Close()
	withMailbox(t, newFakeDHT(), alice)
	alice.start(t)
	ctx := t.Context()
	k1 := alice.mkeys.(fakeKeys).key
	k2 := newEpoch(t, alice, 1)
	c := contactservice.Contact{Name: "Bob", Devices: bob.list, Added: time.Unix(100, 0)}
	alice.svc.noteHeldKey(ctx, c, k2.PublicKey().Bytes(), nil)
	alice.svc.noteHeldKey(ctx, c, k1.PublicKey().Bytes(), nil)
	if got := alice.svc.heldKeyOf(ctx, c); !bytes.Equal(got, k2.PublicKey().Bytes()) {
		t.Fatal("the key held went back to an older epoch's")
	}
	alice.svc.noteHeldKey(ctx, c, bytes.Repeat([]byte{7}, 32), nil)
	if got := alice.svc.heldKeyOf(ctx, c); !bytes.Equal(got, k2.PublicKey().Bytes()) {
		t.Fatal("a key not of this cell's was recorded")
	}
	again := c
	again.Added = time.Unix(200, 0)
	if got := alice.svc.heldKeyOf(ctx, again); got != nil {
		t.Fatal("a contact added again holds the key of its earlier adding")
	}
	alice.svc.noteHeldKey(ctx, again, k1.PublicKey().Bytes(), nil)
	if got := alice.svc.heldKeyOf(ctx, again); !bytes.Equal(got, k1.PublicKey().Bytes()) {
		t.Fatal("a contact added again: its key not recorded")
	}
	for _, bad := range [][]byte{nil, {heldKeyVersion}, append(encodeHeldKey(heldKey{added: 200}), 0), append([]byte{2}, make([]byte, heldKeyLen-1)...)} {
		_ = alice.svc.Close()
		if err := alice.ds.Put(ctx, ds.NewKey(heldKeyPrefix).ChildString(hexKey(bob.list.Cell)), bad); err != nil {
			t.Fatal(err)
		}
		alice.start(t)
		if got := alice.svc.heldKeyOf(ctx, again); got != nil {
			t.Fatalf("stored %x: read as a key", bad)
		}
		bc := again
		bc.Devices = bob.list
		if _, ks, err := alice.svc.pairWith(ctx, withKey(t, bc), time.Now()); err != nil || !ks[0].Private.Equal(k2) {
			t.Fatalf("stored %x: the writer's key is not the newest (%v)", bad, err)
		}
	}
}

// withKey gives c's list a mailbox key, as a contact's list has.
func withKey(t *testing.T, c contactservice.Contact) contactservice.Contact {
	t.Helper()
	k, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{0x55}, 32))
	if err != nil {
		t.Fatal(err)
	}
	l := *c.Devices
	l.Mailbox = k.PublicKey().Bytes()
	c.Devices = &l
	return c
}

// TestPickKeys: the writer's key (first) is the one the contact holds
// when it is one of the cell's; else the newest a list carried, not the
// current epoch's before a list carried it; then the keys a list carried
// of later epochs and those in force within the last 7 days, newest
// first; none replaced earlier, none never carried; at most 4.
func TestPickKeys(t *testing.T) {
	now := time.Date(2030, 1, 10, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	key := func(e uint64) *ecdh.PrivateKey {
		k, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{byte(e)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	mk := func(e uint64, since, until time.Duration, current bool) contactservice.MailboxKey {
		k := contactservice.MailboxKey{Epoch: e, Private: key(e), Current: current}
		if since > 0 {
			k.Since = now.Add(-since)
		}
		if until > 0 {
			k.Until = now.Add(-until)
		}
		return k
	}
	pub := func(e uint64) []byte { return key(e).PublicKey().Bytes() }
	five := []contactservice.MailboxKey{
		mk(1, 40*day, 30*day, false), mk(2, 30*day, 20*day, false), mk(3, 20*day, 10*day, false),
		mk(4, 10*day, 3*day, false), mk(5, 3*day, 0, true),
	}
	tests := []struct {
		name string
		ks   []contactservice.MailboxKey
		held []byte
		want []uint64
	}{
		{"one", []contactservice.MailboxKey{mk(1, day, 0, true)}, nil, []uint64{1}},
		{"current not carried yet", []contactservice.MailboxKey{mk(1, 30*day, 0, false), mk(2, 0, 0, true)}, nil, []uint64{1}},
		{"none carried", []contactservice.MailboxKey{mk(1, 0, 0, false), mk(2, 0, 0, true)}, nil, []uint64{2}},
		{"replaced within 7 days", []contactservice.MailboxKey{mk(1, 30*day, 3*day, false), mk(2, 3*day, 0, true)}, nil, []uint64{2, 1}},
		{"replaced 8 days ago", []contactservice.MailboxKey{mk(1, 30*day, 8*day, false), mk(2, 8*day, 0, true)}, nil, []uint64{2}},
		{"at most 4", []contactservice.MailboxKey{
			mk(1, 9*day, 6*day, false), mk(2, 6*day, 5*day, false), mk(3, 5*day, 4*day, false),
			mk(4, 4*day, 3*day, false), mk(5, 3*day, 0, true),
		}, nil, []uint64{5, 4, 3, 2}},
		{"held, replaced 8 days ago", []contactservice.MailboxKey{mk(1, 30*day, 8*day, false), mk(2, 8*day, 0, true)}, pub(1), []uint64{1, 2}},
		{"held, the newest", []contactservice.MailboxKey{mk(1, 30*day, 8*day, false), mk(2, 8*day, 0, true)}, pub(2), []uint64{2}},
		{"held long ago", five, pub(2), []uint64{2, 5, 4, 3}},
		{"held, newer not carried", []contactservice.MailboxKey{mk(1, 30*day, 0, false), mk(2, 0, 0, true)}, pub(1), []uint64{1}},
		{"held unknown", []contactservice.MailboxKey{mk(1, 30*day, 3*day, false), mk(2, 3*day, 0, true)}, pub(9), []uint64{2, 1}},
	}
	for _, tt := range tests {
		got, err := pickKeys(tt.ks, now, tt.held)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var epochs []uint64
		for _, k := range got {
			epochs = append(epochs, k.Epoch)
		}
		if !slices.Equal(epochs, tt.want) {
			t.Errorf("%s: epochs %v, want %v", tt.name, epochs, tt.want)
		}
	}
	if mailbox.Retention != 7*day {
		t.Fatal("the rule's 7 days are mailbox.Retention")
	}
	if _, err := pickKeys(nil, now, nil); err == nil {
		t.Fatal("no keys: no error")
	}
}

// FuzzDecodeHeldKey: any stored bytes are a record or errBadHeldKey,
// never a panic; a record that decodes encodes back to its bytes.
func FuzzDecodeHeldKey(f *testing.F) {
	f.Add(encodeHeldKey(heldKey{added: -62135596800000, key: [32]byte{1}}))
	f.Add(encodeHeldKey(heldKey{added: 1_790_000_000_000}))
	f.Add([]byte{heldKeyVersion})
	f.Add([]byte{})
	f.Add(append(encodeHeldKey(heldKey{added: 5}), 0))                       // one byte past the record
	f.Add(append([]byte{heldKeyVersion + 1}, make([]byte, heldKeyLen-1)...)) // another version
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeldKey(b)
		if err != nil {
			return
		}
		if b[0] != heldKeyVersion {
			t.Fatal("a record of another version decoded")
		}
		if !bytes.Equal(encodeHeldKey(h), b) {
			t.Fatal("a decoded record does not encode back to its bytes")
		}
	})
}
