package service

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"testing"

	"github.com/exopeer/exopeer/contact"
)

// TestListUpgradeSent: a device that acknowledged the cell's device list
// of version 1 without the mailbox key gets the same version again once
// the cell's list gained the key (an admin upgraded the list an older
// binary signed, contact.Newer), and the contact then holds the key; the
// list goes once, and the record remembers it across a restart.
func TestListUpgradeSent(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	ctx := t.Context()
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	if _, err := bob.svc.Send(ctx, "Alice", "before the key"); err != nil {
		t.Fatalf("bob sends: %v", err)
	}
	mk, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	keyed := contact.NewDeviceList(bob.list.Cell, bob.list.Version, bob.list.Devices)
	keyed.Mailbox = mk.PublicKey().Bytes()
	if err := keyed.Sign(bob.cell); err != nil {
		t.Fatal(err)
	}
	bob.cons.mu.Lock()
	bob.cons.own = keyed
	bob.cons.mu.Unlock()
	if _, err := bob.svc.Send(ctx, "Alice", "with the key"); err != nil {
		t.Fatalf("bob sends: %v", err)
	}
	c, err := alice.cons.Get(ctx, "Bob")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.MailboxKey()
	if err != nil || !got.Equal(mk.PublicKey()) {
		t.Fatalf("alice holds Bob's list version %d, mailbox key %v, %v; want the upgraded list's", c.Devices.Version, got, err)
	}
	// Acknowledged: the record says so, on disk too.
	_ = bob.svc.Close()
	b, err := bob.ds.Get(ctx, sessionKey(alice.h.ID()))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := decodeRecord(b)
	if err != nil || r.listSent != 1 || !r.listKeyed || r.listNews(keyed) {
		t.Fatalf("bob's record of alice: list %d keyed %v (%v), want 1 keyed", r.listSent, r.listKeyed, err)
	}
	if !r.listNews(contact.NewDeviceList(bob.list.Cell, 2, bob.list.Devices)) || (&peerRecord{listSent: 1}).listNews(bob.list) {
		t.Fatal("listNews: a higher version is news, the acknowledged version without a key is not")
	}
}

// TestRecordEarlierLayout: a record of the layout before the flags byte
// and the runs (version 1) reads with listKeyed false, so the keyed list
// of the version it names goes once more, and with its sessions of no
// run (the zero run, which no run of the service is), so none of them
// seals (restore.go); written again, it is in the current layout.
func TestRecordEarlierLayout(t *testing.T) {
	r := peerRecord{listSent: 5, listKeyed: true}
	r.push(stored{id: [8]byte{1}, run: [8]byte{9}, sess: newSession(t, 1), header: []byte{7}})
	b, err := r.encode()
	if err != nil {
		t.Fatal(err)
	}
	old := encodeLayout1(t, r)
	got, bad, err := decodeRecord(old)
	if err != nil || bad != 0 || got.listSent != 5 || got.listKeyed || len(got.sessions) != 1 {
		t.Fatalf("earlier layout: %+v, %d bad, %v", got, bad, err)
	}
	if st := got.sessions[0]; st.id != r.sessions[0].id || st.run != ([8]byte{}) || !bytes.Equal(st.header, r.sessions[0].header) {
		t.Fatalf("earlier layout: session id %v run %v header %v, want %v, the zero run, %v", st.id, st.run, st.header, r.sessions[0].id, r.sessions[0].header)
	}
	again, err := got.encode()
	if err != nil || again[0] != sessionsVersion || len(again) != got.size() {
		t.Fatalf("an earlier record written again: version %d, %d bytes (size %d), %v", again[0], len(again), got.size(), err)
	}
	got, _, err = decodeRecord(b)
	if err != nil || !got.listKeyed || got.sessions[0].run != r.sessions[0].run {
		t.Fatalf("current layout: listKeyed %v run %v, %v", got.listKeyed, got.sessions[0].run, err)
	}
	pub := ed25519.PublicKey(bytes.Repeat([]byte{1}, 32))
	keyed := &contact.DeviceList{Cell: pub, Version: 5, Mailbox: make([]byte, 32)}
	if got.listNews(keyed) {
		t.Fatal("the acknowledged keyed list is news")
	}
}
