package ratchet

import (
	"bytes"
	"errors"
	"testing"
)

// X25519 reads a public key's top bit as zero (RFC 7748), so EK_A with
// that bit set is another encoding of the same key: the same DHs, the
// same Secret, a first message that opens. The replay guard holds the
// ephemeral keys' bytes, so a replay with that bit flipped must be
// refused as the replay it is, not open a second session and deliver the
// first message again (with the last-resort prekey, which a replay does
// not use up).
func TestRespondRefusesReplayOfAnotherEncoding(t *testing.T) {
	for _, pq := range []bool{false, true} {
		a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 0, hsNow)
		_, msg := initiate(t, a, b.bundle(t, 1), pq, "hello")
		if _, plain, err := respond(t, b, msg, hsNow); err != nil || string(plain) != "hello" {
			t.Fatalf("pq %v: Respond: %q, %v", pq, plain, err)
		}
		if _, _, err := respond(t, b, msg, hsNow); !errors.Is(err, ErrRefused) {
			t.Fatalf("pq %v: a replay: %v, want ErrRefused", pq, err)
		}
		const ekAt = 3 + 32 + 32 + 64 // the header's EK_A
		alias := bytes.Clone(msg)
		alias[ekAt+31] |= 0x80
		before := hsMarshal(t, b.keys)
		if _, plain, err := respond(t, b, alias, hsNow); !errors.Is(err, ErrRefused) {
			t.Fatalf("pq %v: a replay with EK_A's top bit set: %q, %v; want ErrRefused", pq, plain, err)
		}
		samePrekeys(t, b.keys, before)
	}
}

func TestCanonicalX25519(t *testing.T) {
	p := [32]byte{0: 0xed, 31: 0x7f} // 2^255 - 19
	for i := 1; i < 31; i++ {
		p[i] = 0xff
	}
	pMinus1, max := p, p
	pMinus1[0], max[0] = 0xec, 0xff // 2^255 - 20, 2^255 - 1
	for _, tc := range []struct {
		name string
		k    [32]byte
		want bool
	}{
		{"zero", [32]byte{}, true}, {"p - 1", pMinus1, true}, {"p", p, false},
		{"2^255 - 1", max, false}, {"top bit", [32]byte{31: 0x80}, false},
	} {
		if got := canonicalX25519(&tc.k); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
