package service

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/exopeer/exopeer/contact"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/store"
)

// orderKeyOf is an order key of d's at sent (Unix ms), seq 1.
func orderKeyOf(d *device, sent int64) string {
	env := message.Envelope{Device: d.h.ID(), Sent: sent, Seq: 1}
	return env.OrderKey()
}

// outAt records in d's cell a message out to the contact of cell key
// conv (hex) at the order key k (its text) in the state st, as Send and
// the courier do.
func outAt(t *testing.T, d *device, conv, k, st string) {
	t.Helper()
	recordAt(t, d, conv, k, Out, st)
}

// recordAt is outAt in the direction dir.
func recordAt(t *testing.T, d *device, conv, k, dir, st string) {
	t.Helper()
	sent, _, _, err := message.ParseOrderKey(k)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(conv + k))
	id := message.ID(sum[:message.IDSize])
	m := Message{
		Entity: store.EntityID(message.EntityOf(d.list.Cell, id)), ID: id.String(), Conversation: conv,
		Direction: dir, Cell: hexKey(d.list.Cell), Device: d.h.ID().String(), Sent: time.UnixMilli(sent).UTC(),
		Order: k, Text: k, State: st,
	}
	if err := d.svc.put(t.Context(), m, time.Time{}); err != nil {
		t.Fatal(err)
	}
}

// TestReceiptKeyForward: a contact's receipt key only moves forward,
// survives a restart, and a stored value that does not decode reads as
// no receipt (no message is taken read on it) and is written over by
// the next receipt.
func TestReceiptKeyForward(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	d := devs[0]
	ctx := t.Context()
	d.cons.add("Bob", devs[1].list)
	c, err := d.cons.Get(ctx, "Bob")
	if err != nil {
		t.Fatal(err)
	}
	conv := hexKey(devs[1].list.Cell)
	early, late := orderKeyOf(d, 1000), orderKeyOf(d, 2000)
	outAt(t, d, conv, early, Sent)
	outAt(t, d, conv, late, Stored)
	m := Message{Direction: Out, Conversation: conv, Order: orderKeyOf(d, 1500)}
	if d.svc.readBefore(ctx, m) {
		t.Fatal("read before any receipt")
	}
	if err := d.svc.noteReceipt(ctx, c, late); err != nil {
		t.Fatal(err)
	}
	if err := d.svc.noteReceipt(ctx, c, early); err != nil {
		t.Fatal(err)
	}
	if !d.svc.readBefore(ctx, m) {
		t.Fatal("a message before the receipt's key is not read: the key went back")
	}
	if in := (Message{Direction: In, Conversation: conv, Order: m.Order}); d.svc.readBefore(ctx, in) {
		t.Fatal("a message in taken read by the contact's receipt")
	}
	_ = d.svc.Close()
	d.start(t)
	if !d.svc.readBefore(ctx, m) {
		t.Fatal("the receipt key did not survive a restart")
	}

	for _, bad := range [][]byte{nil, {9}, append(encodeReceiptKey(receiptKey{upTo: late})[:9], 3, 'a', 'b', 'c'), append(encodeReceiptKey(receiptKey{upTo: late}), 0), {1, 0}} {
		_ = d.svc.Close()
		if err := d.ds.Put(ctx, ds.NewKey(receiptKeyPrefix).ChildString(conv), bad); err != nil {
			t.Fatal(err)
		}
		d.start(t)
		if d.svc.readBefore(ctx, m) {
			t.Fatalf("stored %x: read as a receipt", bad)
		}
		if err := d.svc.noteReceipt(ctx, c, early); err != nil {
			t.Fatalf("stored %x: %v", bad, err)
		}
		if d.svc.readBefore(ctx, m) || !d.svc.readBefore(ctx, Message{Direction: Out, Conversation: conv, Order: early}) {
			t.Fatalf("stored %x: the next receipt's key not taken", bad)
		}
	}
}

// TestReceiptKeyCovers: a receipt's key is not kept as named: what is
// kept is the key of the last message out pending (sent or stored) at
// or before it when it comes, so that a message written later is not
// taken read on it; a message in, or one out delivered, does not count;
// a receipt before every pending message keeps nothing new. The store
// applies limits, so the pending messages past the key are paged past.
func TestReceiptKeyCovers(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	d := devs[0]
	ctx := t.Context()
	d.store.mu.Lock()
	d.store.limits = true
	d.store.mu.Unlock()
	d.cons.add("Bob", devs[1].list)
	d.cons.add("Carol", devs[2].list)
	c, err := d.cons.Get(ctx, "Bob")
	if err != nil {
		t.Fatal(err)
	}
	conv := hexKey(devs[1].list.Cell)
	at := func(ms int64) string { return orderKeyOf(d, ms) }
	outAt(t, d, conv, at(1000), Sent)
	outAt(t, d, conv, at(1800), Stored)
	outAt(t, d, conv, at(1900), Delivered)
	recordAt(t, d, conv, at(1950), In, Sent) // not a message out: another writer's record
	for i := range int64(3) {
		outAt(t, d, conv, at(2500+i*100), Sent)   // 2500, 2600, 2700
		outAt(t, d, conv, at(2550+i*100), Stored) // 2550, 2650, 2750
	}
	read := func(ms int64) bool {
		return d.svc.readBefore(ctx, Message{Direction: Out, Conversation: conv, Order: at(ms)})
	}

	if err := d.svc.noteReceipt(ctx, c, at(500)); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.svc.rkeys.get(ctx, d.svc, conv); ok {
		t.Fatal("a receipt before every pending message kept a key")
	}
	if err := d.svc.noteReceipt(ctx, c, at(2000)); err != nil {
		t.Fatal(err)
	}
	if !read(1800) || read(1801) || read(1950) || read(2000) {
		t.Fatalf("a receipt up to 2000: read at 1800 %v, 1801 %v, 1950 %v, 2000 %v; want covered up to 1800 (the last pending message out then)",
			read(1800), read(1801), read(1950), read(2000))
	}
	if err := d.svc.noteReceipt(ctx, c, at(500)); err != nil {
		t.Fatal(err)
	}
	if !read(1800) {
		t.Fatal("a receipt before every pending message took the key back")
	}
	if err := d.svc.noteReceipt(ctx, c, at(2600)); err != nil {
		t.Fatal(err)
	}
	if !read(2600) || read(2601) {
		t.Fatalf("a receipt up to 2600, a message's key: read at 2600 %v, 2601 %v", read(2600), read(2601))
	}
	// A receipt a day ahead covers the last message out, not the day.
	if err := d.svc.noteReceipt(ctx, c, at(86_400_000)); err != nil {
		t.Fatal(err)
	}
	if !read(2750) || read(2751) {
		t.Fatalf("a receipt a day ahead: read at 2750 %v, 2751 %v", read(2750), read(2751))
	}
	// Another contact's conversation holds no pending message: nothing.
	carol, err := d.cons.Get(ctx, "Carol")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.svc.noteReceipt(ctx, carol, at(86_400_000)); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.svc.rkeys.get(ctx, d.svc, hexKey(devs[2].list.Cell)); ok {
		t.Fatal("a receipt of a contact with no message pending kept a key")
	}
}

// TestContactRecordsBound: the records held in memory stay within
// MaxContactRecords; one dropped is read again from disk.
func TestContactRecordsBound(t *testing.T) {
	d := newDevices(t, "alice")[0]
	ctx := t.Context()
	key := orderKeyOf(d, 1000)
	cell := func(i int) contactservice.Contact {
		k := make(ed25519.PublicKey, ed25519.PublicKeySize)
		binary.BigEndian.PutUint32(k, uint32(i))
		return contactservice.Contact{Devices: &contact.DeviceList{Cell: k}}
	}
	for i := range MaxContactRecords + 10 {
		if _, err := d.svc.rkeys.update(ctx, d.svc, hexKey(cell(i).Cell()), func(receiptKey, bool) (receiptKey, bool) {
			return receiptKey{upTo: key}, true
		}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(d.svc.rkeys.m); n > MaxContactRecords {
		t.Fatalf("%d records held, want at most %d", n, MaxContactRecords)
	}
	for i := range MaxContactRecords + 10 {
		if r, ok := d.svc.rkeys.get(ctx, d.svc, hexKey(cell(i).Cell())); !ok || r.upTo != key {
			t.Fatalf("contact %d's receipt key lost", i)
		}
	}
	if n := len(d.svc.rkeys.m); n > MaxContactRecords {
		t.Fatalf("%d records held, want at most %d", n, MaxContactRecords)
	}
}

// FuzzDecodeReceiptKey: any stored bytes are an order key or
// errBadReceiptKey, never a panic; a key that decodes encodes back to
// its bytes.
func FuzzDecodeReceiptKey(f *testing.F) {
	f.Add(encodeReceiptKey(receiptKey{added: 1_790_000_000_000, upTo: "0000000000000001.12D3KooWGRYZDHBembyGJQqQ6WgLqJMYFiv4fKhsCXW4Hk5rtz8A.0000000000000001"}))
	f.Add(encodeReceiptKey(receiptKey{added: -62135596800000}))
	f.Add(append(encodeReceiptKey(receiptKey{})[:9], 5, 'a', '.', 'b', '.', 'c'))
	f.Add([]byte{})
	f.Add(append(encodeReceiptKey(receiptKey{upTo: "0000000000000001.12D3KooWGRYZDHBembyGJQqQ6WgLqJMYFiv4fKhsCXW4Hk5rtz8A.0000000000000001"}), 0)) // a byte past the key
	f.Add([]byte{1, 5, 'a', '.', 'b', '.', 'c'})                                                                                                   // version 1 (no Added time)
	other := encodeReceiptKey(receiptKey{upTo: "0000000000000001.12D3KooWGRYZDHBembyGJQqQ6WgLqJMYFiv4fKhsCXW4Hk5rtz8A.0000000000000002"})
	other[0] = receiptKeyVersion + 1
	f.Add(other) // another version
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := decodeReceiptKey(b)
		if err != nil {
			return
		}
		if _, _, _, err := message.ParseOrderKey(k.upTo); err != nil || b[0] != receiptKeyVersion {
			t.Fatalf("decoded %q, not an order key of version 2 (%v)", k.upTo, err)
		}
		if !bytes.Equal(encodeReceiptKey(k), b) {
			t.Fatal("a decoded receipt key does not encode back to its bytes")
		}
	})
}
