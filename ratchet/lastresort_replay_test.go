package ratchet

import (
	"errors"
	"fmt"
	"testing"
)

// TestLastResortReplayRefusedForGood: message/service makes every
// handshake after the first with a device on the last-resort prekey (one
// per restart), and its doc says the responder's replay guard refuses
// the same initial message twice. The guard once kept 1,024 keys per
// signed prekey for all devices: another device's handshakes pushed a
// recorded restart handshake out and it opened again as the device's
// newest session. It now keeps keys per initiating device: handshakes of
// ReplayDevices-1 other devices forget none of the device's keys, and
// the device's own 64 handshakes under one signed prekey are all
// accepted (none refused, a crash-looping device is not cut off), its
// 65th by forgetting its own oldest key.
func TestLastResortReplayRefusedForGood(t *testing.T) {
	a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 3, hsNow)
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
	// Other contacts' devices, one handshake each, as many as the guard
	// keeps besides a's.
	for i := range ReplayDevices - 1 {
		c := newHSDevice(t, fmt.Sprint("c", i), 0, hsNow)
		if _, _, err := respond(t, b, lastResort(c, fmt.Sprint("c's ", i)), hsNow+2); err != nil {
			t.Fatalf("device c%d's handshake: %v", i, err)
		}
	}
	if _, plain, err := respond(t, b, recorded, hsNow+3); !errors.Is(err, ErrRefused) {
		t.Fatalf("a recorded last-resort initial message replayed after %d other devices' handshakes: opened %q (err %v), want ErrRefused as a one-time one would be", ReplayDevices-1, plain, err)
	}
	for i := 1; i < ReplayCapacity; i++ {
		if _, _, err := respond(t, b, lastResort(a, fmt.Sprint("restart ", i)), hsNow+2); err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
	}
	if _, plain, err := respond(t, b, recorded, hsNow+3); !errors.Is(err, ErrRefused) {
		t.Fatalf("a recorded last-resort initial message replayed after %d newer ones of its device: opened %q (err %v), want ErrRefused", ReplayCapacity-1, plain, err)
	}
	// The device's 65th handshake under one signed prekey is accepted:
	// the guard forgets the device's own oldest key, not refuses.
	if _, _, err := respond(t, b, lastResort(a, fmt.Sprint("restart ", ReplayCapacity)), hsNow+2); err != nil {
		t.Fatalf("restart %d, past ReplayCapacity: %v, want accepted", ReplayCapacity, err)
	}
}
