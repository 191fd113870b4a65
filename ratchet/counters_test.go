package ratchet

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// forge seals plaintext as message n of s's current sending chain, with
// no check on n: what a peer that bypasses Encrypt's bound can send. s is
// not changed.
func forge(t *testing.T, s *Session, n uint32, plaintext []byte) []byte {
	t.Helper()
	out := make([]byte, sealedAt, headerEnd+len(plaintext)+gcmTag)
	out[0] = MessageVersion
	copy(out[headerNonceAt:], "forged nonce")
	var buf [headerLen]byte
	h := header{dh: s.dhs.pub, pn: s.pn, n: n}
	out = sealHeader(newGCM(s.hks[:]), out, &h, &buf)
	_, mk := kdfCK(&s.cks)
	c := *s
	return c.sealBody(out, &mk, plaintext)
}

// A chain holds at most 2^32 - 1 messages, N = 0 to 2^32 - 2 (Encrypt
// stops there): a header with N = 2^32 - 1 is refused, and changes
// nothing, rather than opening and wrapping Nr back to 0 (after which the
// chain's stored keys could not be reached and N would count again).
func TestDecryptRefusesLastN(t *testing.T) {
	a, b := newPair(t, seeded(1313))
	rng := seeded(1314)
	m, err := a.Encrypt(rng, []byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Decrypt(m); err != nil {
		t.Fatal(err)
	}
	// The chain keys do not depend on the counters: jump both ahead.
	a.ns, b.nr = math.MaxUint32-1, math.MaxUint32-1
	if m, err = a.Encrypt(rng, []byte("last")); err != nil {
		t.Fatal(err)
	}
	if pt, err := b.Decrypt(m); err != nil || string(pt) != "last" {
		t.Fatalf("N = 2^32-2: %q, %v", pt, err)
	}
	if _, err := a.Encrypt(rng, []byte("one more")); !errors.Is(err, ErrChainExhausted) {
		t.Fatalf("Encrypt past 2^32-1 messages: %v, want ErrChainExhausted", err)
	}
	before := sessionBytes(t, b)
	if pt, err := b.Decrypt(forge(t, a, math.MaxUint32, []byte("wrap"))); err == nil {
		t.Fatalf("N = 2^32-1 opened (%q); Nr is now %d", pt, b.nr)
	}
	if !bytes.Equal(sessionBytes(t, b), before) {
		t.Fatal("a refused message changed the session")
	}
}

// TestUnmarshalRefusesDHrWithoutHKs: a stored state with the peer's
// ratchet key but no sending header key is refused (no valid session has
// one: the next Encrypt would seal its header under a zero key).
func TestUnmarshalRefusesDHrWithoutHKs(t *testing.T) {
	rng := seeded(77)
	alice, bob := newPair(t, rng)
	m, err := alice.Encrypt(rng, []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Decrypt(m); err != nil {
		t.Fatal(err)
	}
	// Bob now holds Alice's ratchet key and his sending header key, and
	// no sending chain: his next Encrypt takes the step's sending half.
	b, err := bob.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if b[1]&flagDHr == 0 || b[1]&flagHKs == 0 || b[1]&flagCKs != 0 {
		t.Fatalf("Bob's state has flags %#x, want DHr and HKs without CKs (the test is void)", b[1])
	}
	// HKs follows the version, flags, the info strings, the AD and DHRs,
	// DHRr, RK, CKs and CKr.
	at := 2 + 1 + len(bob.root) + 1 + len(bob.message) + 2 + len(bob.ad) + 5*32
	if !bytes.Equal(b[at:at+32], bob.hks[:]) {
		t.Fatal("HKs is not where the test looks (the test is void)")
	}
	b[1] &^= flagHKs
	clear(b[at : at+32])
	var s Session
	if err := s.UnmarshalBinary(b); !errors.Is(err, ErrCorruptSession) {
		t.Fatalf("a state with DHr and no HKs: %v, want ErrCorruptSession", err)
	}
}
