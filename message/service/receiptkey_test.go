package service

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"testing"

	ds "github.com/ipfs/go-datastore"

	"github.com/exopeer/exopeer/contact"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message"
)

// orderKeyOf is an order key of d's at sent (Unix ms), seq 1.
func orderKeyOf(d *device, sent int64) string {
	env := message.Envelope{Device: d.h.ID(), Sent: sent, Seq: 1}
	return env.OrderKey()
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
		if err := d.svc.noteReceipt(ctx, cell(i), key); err != nil {
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
