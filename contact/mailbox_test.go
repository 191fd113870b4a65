package contact

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// withMailbox returns l with mailbox key m (32 bytes of b), signed again.
func withMailbox(t testing.TB, l *DeviceList, cell, b byte) *DeviceList {
	t.Helper()
	n := NewDeviceList(l.Cell, l.Version, l.Devices)
	n.Mailbox = bytes.Repeat([]byte{b}, MailboxKeyLen)
	if err := n.Sign(cellKey(cell)); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDeviceListMailbox: a list with a mailbox key is version 2 ("EXD2")
// and round-trips with its key, which the signature covers; a list
// without one is still version 1, byte for byte as before.
func TestDeviceListMailbox(t *testing.T) {
	v1 := signedList(t, 1, 7, 10, 11)
	v2 := withMailbox(t, v1, 1, 0x42)
	if !bytes.HasPrefix(v1.Encode(), []byte("EXD1")) || !bytes.HasPrefix(v2.Encode(), []byte("EXD2")) {
		t.Fatalf("magics %q, %q", v1.Encode()[:4], v2.Encode()[:4])
	}
	if len(v2.Encode()) != len(v1.Encode())+1+MailboxKeyLen {
		t.Fatalf("version 2 is %d bytes, version 1 %d", len(v2.Encode()), len(v1.Encode()))
	}
	got, err := DecodeDeviceList(v2.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v2, got); diff != "" {
		t.Fatalf("decoded list differs (-want +got):\n%s", diff)
	}
	k, err := got.MailboxKey()
	if err != nil || !bytes.Equal(k.Bytes(), v2.Mailbox) {
		t.Fatalf("MailboxKey = %v, %v", k, err)
	}
	old, err := DecodeDeviceList(v1.Encode())
	if err != nil || old.Mailbox != nil {
		t.Fatalf("version 1: %v, mailbox %x", err, old.Mailbox)
	}
	if _, err := old.MailboxKey(); !errors.Is(err, ErrNoMailbox) {
		t.Fatalf("MailboxKey of a version 1 list: %v, want ErrNoMailbox", err)
	}
	card := &Card{Name: "Alice", Devices: v2}
	c, err := DecodeCard(card.Encode())
	if err != nil || !bytes.Equal(c.Devices.Mailbox, v2.Mailbox) {
		t.Fatalf("card with a version 2 list: %v", err)
	}
}

// TestDeviceListMailboxRefused: a changed mailbox key breaks the
// signature; a key of another length, a version 1 list relabelled version
// 2 and the reverse are refused.
func TestDeviceListMailboxRefused(t *testing.T) {
	v1 := signedList(t, 1, 7, 10, 11)
	v2 := withMailbox(t, v1, 1, 0x42)
	sign := func(l *DeviceList) []byte {
		l.Sig = ed25519.Sign(cellKey(1), append([]byte(deviceListContext), l.body()...))
		return l.Encode()
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"changed key", func() []byte { b := v2.Encode(); b[len(b)-ed25519.SignatureSize-2] ^= 1; return b }(), ErrBadSignature},
		{"short key", sign(&DeviceList{Cell: v1.Cell, Version: 7, Devices: v1.Devices, Mailbox: make([]byte, 31)}), ErrBadDeviceList},
		{"long key", sign(&DeviceList{Cell: v1.Cell, Version: 7, Devices: v1.Devices, Mailbox: make([]byte, 33)}), ErrBadDeviceList},
		{"empty key", sign(&DeviceList{Cell: v1.Cell, Version: 7, Devices: v1.Devices, Mailbox: []byte{}}), ErrBadDeviceList},
		{"version 1 as 2", append([]byte("EXD2"), v1.Encode()[4:]...), ErrBadDeviceList},
		{"version 2 as 1", append([]byte("EXD1"), v2.Encode()[4:]...), ErrBadSignature}, // its key read as the signature
		{"version 3", append([]byte("EXD3"), v2.Encode()[4:]...), ErrBadDeviceList},
	}
	for _, tt := range tests {
		if _, err := DecodeDeviceList(tt.b); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestNewerMailbox: a version 2 list replaces a version 1 list of the same
// version and devices (a cell adding its mailbox key); anything else at
// the same version is still a conflict, except the version 1 list a
// version 2 one replaced, which is older (ErrStale).
func TestNewerMailbox(t *testing.T) {
	v1 := signedList(t, 1, 7, 10, 11)
	v2 := withMailbox(t, v1, 1, 0x42)
	tests := []struct {
		name      string
		old, next *DeviceList
		replace   bool
		err       error
	}{
		{"mailbox key added", v1, v2, true, nil},
		{"mailbox key dropped (the list it replaced)", v2, v1, false, ErrStale},
		{"mailbox key changed", v2, withMailbox(t, v1, 1, 0x43), false, ErrConflict},
		{"added with other devices", v1, withMailbox(t, signedList(t, 1, 7, 10, 12), 1, 0x42), false, ErrConflict},
		{"same", v2, withMailbox(t, v1, 1, 0x42), false, nil},
	}
	for _, tt := range tests {
		replace, err := Newer(tt.old, tt.next)
		if replace != tt.replace || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("%s: Newer = %v, %v; want %v, %v", tt.name, replace, err, tt.replace, tt.err)
		}
	}
}

// TestNewerMailboxDropIsStale: the version 1 list a version 2 list of the
// same version and devices replaced is its predecessor, signed by the
// cell in good faith, not a sign that the cell key signed two lists: a
// device of the contact's cell that has not yet seen the upgrade sends it
// with every message, and the receiver should ignore it as older
// (ErrStale, or no change), not report ErrConflict (message/service logs
// each as a conflict).
func TestNewerMailboxDropIsStale(t *testing.T) {
	v1 := signedList(t, 1, 7, 10, 11)
	v2 := withMailbox(t, v1, 1, 0x42)
	if replace, err := Newer(v2, v1); replace || errors.Is(err, ErrConflict) {
		t.Fatalf("Newer(v2, v1) = %v, %v; want no change, not ErrConflict", replace, err)
	}
}
