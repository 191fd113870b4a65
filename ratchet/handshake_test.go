package ratchet

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"testing"
)

const hsNow int64 = 1_790_000_000 // a Unix second, the tests' clock

// handshake runs InitiateSecret from a to b's bundle (PQXDH if pq) and
// returns the initiator's results.
func hsInitiate(t *testing.T, a, b *hsDevice, pq bool) (Secret, []byte, *InitialHeader) {
	t.Helper()
	bundle := b.bundle(t, 1)
	r := hsRand(t, "initiator")
	var enc *Encapsulation
	if pq {
		enc = testEncapsulate(t, r, bundle)
	}
	s, ad, h, err := InitiateSecret(&Exopeer, r, a.signer, a.keys, bundle, enc)
	if err != nil {
		t.Fatal(err)
	}
	return s, ad, h
}

// Both sides of X3DH and PQXDH, with a one-time prekey and with the
// last-resort one, agree on the Secret and the AD; the responder's ratchet
// key is its signed prekey; the one-time prekey is consumed, a
// last-resort handshake's ephemeral key remembered (a one-time one's
// not); the header survives its encoding.
func TestHandshakeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		oneTime int
		pq      bool
		kind    PrekeyKind
	}{
		{"X3DH one-time", 3, false, PrekeyOneTime},
		{"X3DH last resort", 0, false, PrekeyLastResort},
		{"PQXDH one-time", 3, true, PrekeyOneTime},
		{"PQXDH last resort", 0, true, PrekeyLastResort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", tc.oneTime, hsNow)
			s, ad, h := hsInitiate(t, a, b, tc.pq)
			if h.Kind != tc.kind || h.PQ != tc.pq {
				t.Fatalf("header kind %d pq %v, want %d %v", h.Kind, h.PQ, tc.kind, tc.pq)
			}
			wire := hsMarshal(t, h)
			parsed, rest, err := ParseInitialHeader(append(wire, "first message"...))
			if err != nil || string(rest) != "first message" {
				t.Fatalf("ParseInitialHeader: %v, rest %q", err, rest)
			}
			if !bytes.Equal(hsMarshal(t, parsed), wire) {
				t.Fatal("the header changed through its encoding")
			}
			s2, ad2, spk, err := RespondSecret(&Exopeer, b.pub(), b.keys, parsed, hsNow+60)
			if err != nil {
				t.Fatal(err)
			}
			if s2 != s || !bytes.Equal(ad, ad2) {
				t.Fatalf("the sides disagree:\n%x\n%x", s, s2)
			}
			ikA, ikB := a.keys.IdentityPublic(), b.keys.IdentityPublic()
			want := slices.Concat([]byte("exopeer-ad-v1"), a.pub(), ikA[:], b.pub(), ikB[:])
			if !bytes.Equal(ad, want) {
				t.Errorf("AD %x, want %x", ad, want)
			}
			if got := spk.PublicKey().Bytes(); !bytes.Equal(got, b.bundle(t, 2).Signed.Key[:]) {
				t.Error("the responder's ratchet key is not its signed prekey")
			}
			if want := max(tc.oneTime-1, 0); b.keys.OneTimeCount() != want {
				t.Errorf("%d one-time prekeys left, want %d", b.keys.OneTimeCount(), want)
			}
			// Only a last-resort handshake is tracked: a one-time one's
			// prekey is gone.
			if seen := b.keys.seen.Seen(h.SignedPrekeyID, [32]byte(a.pub()), h.Ephemeral); seen != (tc.kind == PrekeyLastResort) {
				t.Errorf("the ephemeral key remembered: %v, kind %d", seen, tc.kind)
			}
		})
	}
}

// PQXDH's secret is not X3DH's: the ML-KEM shared key is in it, so a
// changed ciphertext (which ML-KEM decapsulates to another key, with no
// error) gives the responder another Secret.
func TestPQXDHNeedsTheSharedKey(t *testing.T) {
	a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 2, hsNow)
	s, _, h := hsInitiate(t, a, b, true)
	x, _, _ := hsInitiate(t, a, b, false)
	if s == x {
		t.Fatal("PQXDH and X3DH give the same Secret")
	}
	h.KEMCiphertext[100] ^= 1
	s2, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, h, hsNow)
	if err != nil {
		t.Fatal(err)
	}
	if s2 == s {
		t.Fatal("a changed ciphertext gives the same Secret")
	}
}

// Each refusal leaves the responder's state unchanged and is ErrRefused.
func TestRespondRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pq     bool
		change func(h *InitialHeader, a, b *hsDevice)
	}{
		{"bad identity signature", false, func(h *InitialHeader, _, _ *hsDevice) { h.IdentitySig[5] ^= 1 }},
		{"identity key not the signed one", false, func(h *InitialHeader, _, _ *hsDevice) { h.Identity[0] ^= 1 }},
		{"unknown signed prekey", false, func(h *InitialHeader, _, _ *hsDevice) { h.SignedPrekeyID++ }},
		{"unknown one-time prekey", false, func(h *InitialHeader, _, _ *hsDevice) { h.PrekeyID = 99 }},
		{"wrong last-resort id", false, func(h *InitialHeader, _, _ *hsDevice) { h.Kind, h.PrekeyID = PrekeyLastResort, 2 }},
		{"unknown kind", false, func(h *InitialHeader, _, _ *hsDevice) { h.Kind = 3 }},
		{"wrong ML-KEM id", true, func(h *InitialHeader, _, _ *hsDevice) { h.KEMID = 2 }},
		{"short ML-KEM ciphertext", true, func(h *InitialHeader, _, _ *hsDevice) { h.KEMCiphertext = h.KEMCiphertext[:100] }},
		{"low-order ephemeral key", false, func(h *InitialHeader, _, _ *hsDevice) { h.Ephemeral = [32]byte{} }},
		{"the responder's own identity", false, func(h *InitialHeader, _, b *hsDevice) {
			*h = InitialHeader{SigningKey: [32]byte(b.signer.Public().(ed25519.PublicKey)), Identity: b.keys.IdentityPublic(), Ephemeral: h.Ephemeral,
				SignedPrekeyID: h.SignedPrekeyID, Kind: h.Kind, PrekeyID: h.PrekeyID}
			h.IdentitySig = signIdentity(b)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 2, hsNow)
			_, _, h := hsInitiate(t, a, b, tc.pq)
			tc.change(h, a, b)
			before := hsMarshal(t, b.keys)
			if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, h, hsNow); !errors.Is(err, ErrRefused) {
				t.Fatalf("got %v, want ErrRefused", err)
			}
			samePrekeys(t, b.keys, before)
		})
	}
}

func signIdentity(d *hsDevice) [64]byte {
	ik := d.keys.IdentityPublic()
	return [64]byte(ed25519.Sign(d.signer, identityMessage(&ik)))
}

// Two initial messages that take the same one-time prekey (two senders
// read the same bundle): the second is refused, the state unchanged.
func TestRespondRefusesUsedOneTimePrekey(t *testing.T) {
	a, c, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "c", 0, hsNow), newHSDevice(t, "b", 1, hsNow)
	_, _, h1 := hsInitiate(t, a, b, false)
	_, _, h2 := hsInitiate(t, c, b, false)
	if h1.PrekeyID != h2.PrekeyID || h1.Kind != PrekeyOneTime {
		t.Fatal("the two initiators did not take the same one-time prekey")
	}
	if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, h1, hsNow); err != nil {
		t.Fatal(err)
	}
	before := hsMarshal(t, b.keys)
	if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, h2, hsNow); !errors.Is(err, ErrRefused) {
		t.Fatalf("got %v, want ErrRefused", err)
	}
	samePrekeys(t, b.keys, before)
}

// A replayed initial message is refused: with a one-time prekey (gone),
// and with the last-resort one (the replay guard), also after the
// one-time prekeys were replenished.
func TestRespondRefusesReplay(t *testing.T) {
	for _, oneTime := range []int{0, 1} {
		a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", oneTime, hsNow)
		_, _, h := hsInitiate(t, a, b, false)
		if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, h, hsNow); err != nil {
			t.Fatal(err)
		}
		if _, err := b.keys.Replenish(hsRand(t, "replenish"), 5); err != nil {
			t.Fatal(err)
		}
		before := hsMarshal(t, b.keys)
		if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, h, hsNow+1); !errors.Is(err, ErrRefused) {
			t.Fatalf("%d one-time prekeys: a replay got %v, want ErrRefused", oneTime, err)
		}
		samePrekeys(t, b.keys, before)
	}
}

// After a rotation the previous signed prekey answers for GracePeriod,
// then not; after a second rotation, not at all. The new one answers.
func TestGracePeriod(t *testing.T) {
	a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 0, hsNow)
	_, _, old := hsInitiate(t, a, b, false)
	rotated := hsNow + RotationPeriod
	if err := b.keys.Rotate(hsRand(t, "rotate"), rotated); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		now  int64
		ok   bool
	}{
		{"at the rotation", rotated, true},
		{"a second before the grace period ends", rotated + GracePeriod - 1, true},
		{"when it ends", rotated + GracePeriod, false},
	} {
		c := b.keys.clone()
		_, _, _, err := RespondSecret(&Exopeer, b.pub(), c, old, tc.now)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	_, _, fresh := hsInitiate(t, a, b, false)
	if fresh.SignedPrekeyID != old.SignedPrekeyID+1 {
		t.Fatalf("signed prekey id %d after a rotation, want %d", fresh.SignedPrekeyID, old.SignedPrekeyID+1)
	}
	if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys.clone(), fresh, rotated); err != nil {
		t.Fatalf("the new signed prekey: %v", err)
	}
	if err := b.keys.Rotate(hsRand(t, "rotate again"), rotated+1); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, old, rotated+1); !errors.Is(err, ErrRefused) {
		t.Fatalf("two rotations later, got %v, want ErrRefused", err)
	}
}

// The initiator refuses a bundle that does not verify, and an
// encapsulation without the bundle's ML-KEM key; with no ML-KEM key it
// speaks X3DH.
func TestInitiateChecks(t *testing.T) {
	a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 2, hsNow)
	bundle := b.bundle(t, 1)
	bundle.Signed.Key[0] ^= 1
	if _, _, _, err := InitiateSecret(&Exopeer, hsRand(t, "i"), a.signer, a.keys, bundle, nil); !errors.Is(err, ErrBadBundle) {
		t.Fatalf("a changed bundle: got %v, want ErrBadBundle", err)
	}
	noKEM := b.bundle(t, 2)
	noKEM.KEM = nil
	noKEM.sign(b.signer)
	enc := testEncapsulate(t, hsRand(t, "kem"), b.bundle(t, 3))
	if _, _, _, err := InitiateSecret(&Exopeer, hsRand(t, "i"), a.signer, a.keys, noKEM, enc); err == nil {
		t.Fatal("an encapsulation with a bundle without an ML-KEM key was taken")
	}
	s, _, h, err := InitiateSecret(&Exopeer, hsRand(t, "i"), a.signer, a.keys, noKEM, nil)
	if err != nil || h.PQ {
		t.Fatalf("X3DH to a bundle without ML-KEM: %v, pq %v", err, h != nil && h.PQ)
	}
	s2, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, h, hsNow)
	if err != nil || s2 != s {
		t.Fatalf("responder: %v, same secret %v", err, s2 == s)
	}
	low := b.bundle(t, 4)
	low.Identity = [32]byte{1} // a low-order point
	low.sign(b.signer)
	if _, _, _, err := InitiateSecret(&Exopeer, hsRand(t, "i"), a.signer, a.keys, low, nil); !errors.Is(err, ErrBadBundle) {
		t.Fatalf("a low-order identity key: got %v, want ErrBadBundle", err)
	}
}

// The initial header's parser refuses what is not one, with ErrRefused.
func TestParseInitialHeaderRefuses(t *testing.T) {
	a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 2, hsNow)
	_, _, h := hsInitiate(t, a, b, true)
	wire := hsMarshal(t, h)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short", wire[:initialHeaderSize-1]},
		{"PQ without its ciphertext", wire[:initialHeaderPQSize-1]},
		{"version 1", append([]byte{1}, wire[1:]...)},
		{"kind", append([]byte{2, 0}, wire[2:]...)},
		{"pq flag", append([]byte{2, 1, 2}, wire[3:]...)},
	} {
		if _, _, err := ParseInitialHeader(tc.data); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: got %v, want ErrRefused", tc.name, err)
		}
	}
}

// TestADBindsSigningKeys: Mallory publishes Bob's identity and prekeys
// under her own Ed25519 key (she can sign any public key). Alice, who
// believes she talks to Mallory, and Bob, who answers, agree on the
// Secret (only Bob holds the private keys) but not on the AD, which
// names Mallory's key on one side and Bob's on the other: the session's
// first message does not open, and Bob cannot be made to take a
// conversation meant for Mallory (an unknown key-share).
func TestADBindsSigningKeys(t *testing.T) {
	a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 2, hsNow)
	mallory := newHSDevice(t, "mallory", 0, hsNow)
	forged, err := b.keys.Bundle(mallory.signer, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := forged.Verify(); err != nil {
		t.Fatalf("Mallory's bundle of Bob's keys does not verify (the test needs it to): %v", err)
	}
	s, ad, h, err := InitiateSecret(&Exopeer, hsRand(t, "a's choice"), a.signer, a.keys, forged, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, ad2, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, h, hsNow)
	if err != nil {
		t.Fatal(err)
	}
	if s != s2 {
		t.Fatal("the forged bundle did not lead to Bob's keys (the test is void)")
	}
	if bytes.Equal(ad, ad2) {
		t.Fatal("Alice (to Mallory) and Bob agree on the AD: Bob would take a conversation meant for Mallory")
	}
}

// TestInitialHeaderSealsIdentity: the encoded header does not hold the
// initiator's identity X25519 key or its signature in the clear, and a
// change of any byte of it (the clear bytes are the sealed identity's
// associated data) is refused, with the responder's state unchanged.
func TestInitialHeaderSealsIdentity(t *testing.T) {
	for _, pq := range []bool{false, true} {
		a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 2, hsNow)
		_, _, h := hsInitiate(t, a, b, pq)
		wire := hsMarshal(t, h)
		if want := map[bool]int{false: 187, true: 1759}[pq]; len(wire) != want {
			t.Fatalf("pq %v: header of %d bytes, want %d", pq, len(wire), want)
		}
		ik := a.keys.IdentityPublic()
		if bytes.Contains(wire, ik[:]) || bytes.Contains(wire, h.IdentitySig[:]) {
			t.Fatalf("pq %v: the header carries IK_A or its signature in the clear", pq)
		}
		parsed, _, err := ParseInitialHeader(wire)
		if err != nil {
			t.Fatal(err)
		}
		if parsed.Identity != ([32]byte{}) {
			t.Fatal("a parsed header names IK_A before the responder opened it")
		}
		before := hsMarshal(t, b.keys)
		for i := range wire {
			if i == 1 || i == 2 { // kind and PQ flag: the parser's own checks
				continue
			}
			changed := slices.Clone(wire)
			changed[i] ^= 1
			p, _, err := ParseInitialHeader(changed)
			if err != nil {
				continue
			}
			if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, p, hsNow); !errors.Is(err, ErrRefused) {
				t.Fatalf("pq %v: byte %d changed: got %v, want ErrRefused", pq, i, err)
			}
			samePrekeys(t, b.keys, before)
		}
		if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, parsed, hsNow); err != nil {
			t.Fatalf("pq %v: the header as sent: %v", pq, err)
		}
	}
}

// The zero Ed25519 key, of low order, has signatures anyone makes (s = 0,
// R the identity, for one message in four): RespondSecret refuses it as
// an initiator's signing key, under which the replay guard keeps a
// version 1 guard's keys for every device.
func TestRespondRefusesZeroSigningKey(t *testing.T) {
	b := newHSDevice(t, "b", 0, hsNow)
	var sig [64]byte
	sig[0] = 1 // R = the identity point, s = 0
	for i := range 64 {
		a := newHSDevice(t, fmt.Sprint("zero ", i), 0, hsNow)
		ik := a.keys.IdentityPublic()
		if !ed25519.Verify(make(ed25519.PublicKey, 32), identityMessage(&ik), sig[:]) {
			continue
		}
		_, _, h := hsInitiate(t, a, b, false)
		h.SigningKey, h.IdentitySig = [32]byte{}, sig
		before := hsMarshal(t, b.keys)
		if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, h, hsNow); !errors.Is(err, ErrRefused) {
			t.Fatalf("the zero signing key: got %v, want ErrRefused", err)
		}
		samePrekeys(t, b.keys, before)
		return
	}
	t.Fatal("no identity key with a forged signature under the zero key")
}
