package ratchet

import (
	"errors"
	"testing"
)

// TestInitiateLastResort: a handshake made with InitiateLastResort on a
// bundle that has one-time prekeys uses the last-resort prekey: the
// responder opens it and keeps every one-time prekey; the same initial
// message again is refused (the replay guard); and a later handshake
// with Initiate still takes a one-time prekey, once.
func TestInitiateLastResort(t *testing.T) {
	for _, pq := range []bool{false, true} {
		a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 3, hsNow)
		bundle := b.bundle(t, 1)
		r := hsRand(t, "again")
		var enc *Encapsulation
		if pq {
			enc = testEncapsulate(t, r, bundle)
		}
		s, h, err := InitiateLastResort(&Exopeer, r, a.signer, a.keys, bundle, enc)
		if err != nil {
			t.Fatal(err)
		}
		if h.Kind != PrekeyLastResort || h.PrekeyID != bundle.LastResort.ID {
			t.Fatalf("pq %v: header names prekey kind %d id %d, want the last resort (id %d)", pq, h.Kind, h.PrekeyID, bundle.LastResort.ID)
		}
		first, err := s.Encrypt(r, []byte("again"))
		if err != nil {
			t.Fatal(err)
		}
		msg := append(hsMarshal(t, h), first...)
		if _, plain, err := respond(t, b, msg, hsNow+1); err != nil || string(plain) != "again" {
			t.Fatalf("pq %v: Respond: %q, %v", pq, plain, err)
		}
		if n := b.keys.OneTimeCount(); n != 3 {
			t.Fatalf("pq %v: %d one-time prekeys left after a last-resort handshake, want 3", pq, n)
		}
		if _, _, err := respond(t, b, msg, hsNow+2); !errors.Is(err, ErrRefused) {
			t.Fatalf("pq %v: the same last-resort initial message again: %v, want ErrRefused", pq, err)
		}
		_, msg = initiate(t, a, bundle, pq, "first")
		if _, _, err := respond(t, b, msg, hsNow+3); err != nil {
			t.Fatal(err)
		}
		if n := b.keys.OneTimeCount(); n != 2 {
			t.Fatalf("pq %v: %d one-time prekeys left after a one-time handshake, want 2", pq, n)
		}
	}
}
