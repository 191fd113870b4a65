package core

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestMailboxKeyKnownAnswer pins the cell's mailbox key: the private key
// is HKDF-SHA256 of the epoch secret, salted with the cell key, info
// "exopeer mailbox key v1" (checked against an independent computation),
// and its public key is frozen below (made once by this test at the
// version that introduced it; a change breaks every contact's slots).
func TestMailboxKeyKnownAnswer(t *testing.T) {
	s := Secret(bytes.Repeat([]byte{0x33}, SecretLen))
	cell := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x22}, 32)).Public().(ed25519.PublicKey)
	k := s.MailboxKey(cell)
	want, err := hkdf.Key(sha256.New, s[:], cell, "exopeer mailbox key v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.Bytes(), want) {
		t.Fatalf("private key %x, want HKDF %x", k.Bytes(), want)
	}
	const wantPub = "eb79c688619a13ad1e9a40382a3d816acb8c5dca8e9349e8571e863bab7f6577"
	if got := hex.EncodeToString(k.PublicKey().Bytes()); got != wantPub {
		t.Fatalf("public key %s, want %s", got, wantPub)
	}
}

// TestMailboxKeyPerCellAndEpoch: another epoch's secret or another cell
// gives another key, and the key is none of the other derived keys.
func TestMailboxKeyPerCellAndEpoch(t *testing.T) {
	s1 := Secret(bytes.Repeat([]byte{1}, SecretLen))
	s2 := Secret(bytes.Repeat([]byte{2}, SecretLen))
	c1 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)).Public().(ed25519.PublicKey)
	c2 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32)).Public().(ed25519.PublicKey)
	seen := map[string]string{}
	add := func(name string, b []byte) {
		if other, ok := seen[string(b)]; ok {
			t.Fatalf("%s equals %s", name, other)
		}
		seen[string(b)] = name
	}
	add("s1 c1", s1.MailboxKey(c1).Bytes())
	add("s2 c1", s2.MailboxKey(c1).Bytes())
	add("s1 c2", s1.MailboxKey(c2).Bytes())
	add("gossip", s1.GossipKey(c1))
	add("blob", s1.BlobSecret(c1))
	add("rendezvous", s1.RendezvousSecret(c1))
	if !bytes.Equal(s1.MailboxKey(c1).Bytes(), s1.MailboxKey(c1).Bytes()) {
		t.Fatal("the mailbox key is not deterministic")
	}
}
