package ratchet

import (
	"errors"
	"fmt"
	"testing"
)

// TestLastResortReplayRefusedForGood: message/service now makes every
// handshake after the first with a device on the last-resort prekey
// (one per restart), and its doc says the responder's replay guard
// refuses the same initial message twice. With a one-time prekey a
// replay is refused for good (the prekey is gone); with the last-resort
// prekey it was refused only while the guard remembered the ephemeral
// key: after ReplayCapacity newer initial messages under the same signed
// prekey (a contact's restarts, or any contact device sending
// handshakes), the recorded restart handshake opened again and made a
// duplicate session, which the shell takes as the device's newest. The
// guard now keeps keys per initiating device and forgets none while the
// signed prekey lives: another device's handshakes fill only its own
// entries, and the device's own past ReplayCapacity are refused, not
// made room for.
func TestLastResortReplayRefusedForGood(t *testing.T) {
	a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 3, hsNow)
	c := newHSDevice(t, "c", 0, hsNow) // another contact's device
	bundle := b.bundle(t, 1)
	lastResort := func(from *hsDevice, text string) []byte {
		r := hsRand(t, "again "+text)
		s, h, err := InitiateLastResort(&Exopeer, r, from.signer, from.keys, bundle, nil)
		if err != nil {
			t.Fatal(err)
		}
		first, err := s.Encrypt(r, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return append(hsMarshal(t, h), first...)
	}
	recorded := lastResort(a, "restart 0")
	if _, _, err := respond(t, b, recorded, hsNow+1); err != nil {
		t.Fatal(err)
	}
	for i := range ReplayCapacity {
		if _, _, err := respond(t, b, lastResort(c, fmt.Sprint("c's ", i)), hsNow+2); err != nil {
			t.Fatalf("c's handshake %d: %v", i, err)
		}
	}
	if _, plain, err := respond(t, b, recorded, hsNow+3); !errors.Is(err, ErrRefused) {
		t.Fatalf("a recorded last-resort initial message replayed after %d newer ones of another device: opened %q (err %v), want ErrRefused as a one-time one would be", ReplayCapacity, plain, err)
	}
	for i := range ReplayCapacity {
		_, _, err := respond(t, b, lastResort(a, fmt.Sprint("restart ", i+1)), hsNow+2)
		if i+1 < ReplayCapacity && err != nil {
			t.Fatalf("restart %d: %v", i+1, err)
		}
		if i+1 == ReplayCapacity && !errors.Is(err, ErrRefused) {
			t.Fatalf("restart %d, past ReplayCapacity under one signed prekey: %v, want ErrRefused (the guard forgets nothing)", i+1, err)
		}
	}
	if _, plain, err := respond(t, b, recorded, hsNow+3); !errors.Is(err, ErrRefused) {
		t.Fatalf("a recorded last-resort initial message replayed after %d newer ones: opened %q (err %v), want ErrRefused as a one-time one would be", ReplayCapacity, plain, err)
	}
}
