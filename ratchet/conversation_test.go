package ratchet

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// initiate runs Initiate from a to b's bundle (PQXDH if pq) and returns
// a's session and the initial message: the header's encoding, then the
// session's first message of text.
func initiate(t *testing.T, a *hsDevice, b *Bundle, pq bool, text string) (*Session, []byte) {
	t.Helper()
	r := hsRand(t, "initiate "+text)
	var enc *Encapsulation
	if pq {
		enc = testEncapsulate(t, r, b)
	}
	s, h, err := Initiate(&Exopeer, r, a.signer, a.keys, b, enc)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Encrypt(r, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return s, append(hsMarshal(t, h), first...)
}

// respond parses an initial message and runs Respond on b.
func respond(t *testing.T, b *hsDevice, msg []byte, now int64) (*Session, []byte, error) {
	t.Helper()
	h, first, err := ParseInitialHeader(msg)
	if err != nil {
		return nil, nil, err
	}
	return Respond(&Exopeer, b.pub(), b.keys, h, first, now)
}

// TestConversationFromHandshake: X3DH and PQXDH, with a one-time or the
// last-resort prekey, then a conversation both ways with DH steps; the
// responder's prekeys are stored and restored in between.
func TestConversationFromHandshake(t *testing.T) {
	for _, tc := range []struct {
		name    string
		oneTime int
		pq      bool
	}{{"X3DH", 2, false}, {"PQXDH", 2, true}, {"X3DH last resort", 0, false}, {"PQXDH last resort", 0, true}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", tc.oneTime, hsNow)
			sa, msg := initiate(t, a, b.bundle(t, 1), tc.pq, "hello")
			sb, plain, err := respond(t, b, msg, hsNow+1)
			if err != nil || string(plain) != "hello" {
				t.Fatalf("Respond: %q, %v", plain, err)
			}
			if b.keys.OneTimeCount() != max(tc.oneTime-1, 0) {
				t.Errorf("%d one-time prekeys left, want %d", b.keys.OneTimeCount(), max(tc.oneTime-1, 0))
			}
			var restored Prekeys
			if err := restored.UnmarshalBinary(hsMarshal(t, b.keys)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := respond(t, &hsDevice{signer: b.signer, keys: &restored}, msg, hsNow+2); !errors.Is(err, ErrRefused) {
				t.Errorf("the initial message again, on the restored prekeys: %v, want ErrRefused", err)
			}
			r := hsRand(t, "talk")
			for i := range 6 {
				from, to := sa, sb
				if i%2 == 1 {
					from, to = sb, sa
				}
				text := fmt.Sprintf("message %d", i)
				m, err := from.Encrypt(r, []byte(text))
				if err != nil {
					t.Fatal(err)
				}
				got, err := to.Decrypt(m)
				if err != nil || string(got) != text {
					t.Fatalf("message %d: %q, %v", i, got, err)
				}
			}
		})
	}
}

// TestRespondRefusalLeavesPrekeys: an initial message whose first message
// does not open (a changed byte) is refused and consumes nothing; the
// right one then opens.
func TestRespondRefusalLeavesPrekeys(t *testing.T) {
	a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 3, hsNow)
	_, msg := initiate(t, a, b.bundle(t, 1), false, "hello")
	before := hsMarshal(t, b.keys)
	bad := bytes.Clone(msg)
	bad[len(bad)-1] ^= 1
	if _, _, err := respond(t, b, bad, hsNow); !errors.Is(err, ErrRefused) {
		t.Fatalf("a changed first message: %v, want ErrRefused", err)
	}
	if !bytes.Equal(hsMarshal(t, b.keys), before) {
		t.Fatal("a refused initial message changed the prekeys")
	}
	if _, plain, err := respond(t, b, msg, hsNow); err != nil || string(plain) != "hello" {
		t.Fatalf("the right message after a refusal: %q, %v", plain, err)
	}
}

// TestRespondRefusesUnknownKeyShare: Alice initiates to Mallory's bundle
// of Bob's keys; Bob, answering as himself, refuses the first message
// (the AD names Mallory's key on Alice's side and his on his).
func TestRespondRefusesUnknownKeyShare(t *testing.T) {
	a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 2, hsNow)
	mallory := newHSDevice(t, "mallory", 0, hsNow)
	forged, err := b.keys.Bundle(mallory.signer, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, msg := initiate(t, a, forged, false, "for Mallory")
	if _, _, err := respond(t, b, msg, hsNow); !errors.Is(err, ErrRefused) {
		t.Fatalf("Bob opened a message Alice meant for Mallory: %v", err)
	}
}
