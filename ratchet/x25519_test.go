package ratchet

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestX25519RFC7748: the test vectors of RFC 7748, section 5.2 (two
// scalar multiplications, one with the top bit of u set), and section
// 6.1 (Alice's and Bob's key pairs and their shared secret).
func TestX25519RFC7748(t *testing.T) {
	for _, v := range []struct{ scalar, u, out string }{
		{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c", "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
		{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d", "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493", "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
	} {
		out := make([]byte, 32)
		x25519Ladder(out, unhex(t, v.scalar), unhex(t, v.u))
		if want := unhex(t, v.out); !bytes.Equal(out, want) {
			t.Errorf("X25519(%s, %s) = %x, want %x", v.scalar, v.u, out, want)
		}
	}
	alice, err := newDHPair(unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := newDHPair(unhex(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"); !bytes.Equal(alice.pub[:], want) {
		t.Errorf("Alice's public key %x, want %x", alice.pub, want)
	}
	if want := unhex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"); !bytes.Equal(bob.pub[:], want) {
		t.Errorf("Bob's public key %x, want %x", bob.pub, want)
	}
	k1, err1 := alice.dh(&bob.pub)
	k2, err2 := bob.dh(&alice.pub)
	if want := unhex(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"); err1 != nil || err2 != nil || !bytes.Equal(k1, want) || !bytes.Equal(k2, want) {
		t.Errorf("shared secrets %x (%v), %x (%v), want %x", k1, err1, k2, err2, want)
	}
}

// TestX25519AgreesWithECDH: on seeded random keys, the pair's public key
// and its DH outputs are crypto/ecdh's, and a low-order point is refused
// as crypto/ecdh refuses it.
func TestX25519AgreesWithECDH(t *testing.T) {
	seed := [32]byte{0x25, 0x51, 0x9}
	r := rand.NewChaCha8(seed)
	for i := range 500 {
		var a, b [32]byte
		r.Read(a[:])
		r.Read(b[:])
		ka, err := newDHPair(a[:])
		if err != nil {
			t.Fatal(err)
		}
		sa, _ := ecdh.X25519().NewPrivateKey(a[:])
		sb, _ := ecdh.X25519().NewPrivateKey(b[:])
		if !bytes.Equal(ka.pub[:], sa.PublicKey().Bytes()) {
			t.Fatalf("seed %x, key %d: public key %x, crypto/ecdh's %x", seed, i, ka.pub, sa.PublicKey().Bytes())
		}
		got, err := ka.dh((*[32]byte)(sb.PublicKey().Bytes()))
		want, _ := sa.ECDH(sb.PublicKey())
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("seed %x, key %d: DH %x (%v), crypto/ecdh's %x", seed, i, got, err, want)
		}
	}
	var a [32]byte
	r.Read(a[:])
	k, _ := newDHPair(a[:])
	for _, low := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	} {
		if _, err := k.dh((*[32]byte)(unhex(t, low))); !errors.Is(err, errLowOrder) {
			t.Errorf("low-order point %s: %v, want errLowOrder", low, err)
		}
	}
}

func BenchmarkDHPair(b *testing.B) {
	var priv [32]byte
	b.ReportAllocs()
	for b.Loop() {
		priv[0]++
		newDHPair(priv[:])
	}
}

func BenchmarkDH(b *testing.B) {
	k, _ := newDHPair(make([]byte, 32))
	b.ReportAllocs()
	for b.Loop() {
		k.dh(&k.pub)
	}
}

// readKey makes a crypto/ecdh X25519 private key of 32 bytes read from
// rand, as the constructors take them.
func readKey(rand io.Reader) (*ecdh.PrivateKey, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, err
	}
	return ecdh.X25519().NewPrivateKey(b[:])
}

// TestX25519EdgePointsAgreeWithECDH: on remote points crypto/ecdh takes
// as they come (RFC 7748: the top bit ignored, a u of p or more reduced),
// the DH output is crypto/ecdh's, or errLowOrder where crypto/ecdh
// refuses: the top bit set, non-canonical u (p to 2^255-1), the
// low-order points and their non-canonical forms, random bytes.
func TestX25519EdgePointsAgreeWithECDH(t *testing.T) {
	seed := [32]byte{0x77, 0x48}
	r := rand.NewChaCha8(seed)
	var points [][32]byte
	add := func(h string) { points = append(points, [32]byte(unhex(t, h))) }
	for _, h := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p-1
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1
		"cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880", // order 8 + p, top bit
		"4c9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7", // order 8 + p, top bit
		"d9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // p+... top bit
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"0900000000000000000000000000000000000000000000000000000000000080", // base point, top bit
	} {
		add(h)
	}
	for range 200 {
		var p [32]byte
		r.Read(p[:])
		points = append(points, p)
		q := p
		q[31] |= 0x80 // the top bit set
		points = append(points, q)
		// A non-canonical u: p + a small value (p = 2^255 - 19).
		var nc [32]byte
		for i := range nc {
			nc[i] = 0xff
		}
		nc[31] = 0x7f
		nc[0] = 0xed + p[0]%19
		points = append(points, nc)
	}
	for i, pt := range points {
		var a [32]byte
		r.Read(a[:])
		k, err := newDHPair(a[:])
		if err != nil {
			t.Fatal(err)
		}
		sk, _ := ecdh.X25519().NewPrivateKey(a[:])
		pub, err := ecdh.X25519().NewPublicKey(pt[:])
		if err != nil {
			t.Fatalf("seed %x, point %d %x: crypto/ecdh refuses the key: %v", seed, i, pt, err)
		}
		want, werr := sk.ECDH(pub)
		got, gerr := k.dh(&pt)
		switch {
		case werr != nil && !errors.Is(gerr, errLowOrder):
			t.Errorf("seed %x, point %d %x: DH %x (%v), crypto/ecdh refuses it (%v)", seed, i, pt, got, gerr, werr)
		case werr == nil && (gerr != nil || !bytes.Equal(got, want)):
			t.Errorf("seed %x, point %d %x: DH %x (%v), crypto/ecdh's %x", seed, i, pt, got, gerr, want)
		}
	}
}

// TestX25519EdgeScalars: key pairs of scalars clamping changes (all
// zeros, all ones, the bits it clears and sets) are crypto/ecdh's, and
// so are their DH outputs.
func TestX25519EdgeScalars(t *testing.T) {
	var scalars [][32]byte
	var zero, ones, low, top [32]byte
	for i := range ones {
		ones[i] = 0xff
	}
	low[0] = 7
	top[31] = 0x80
	scalars = append(scalars, zero, ones, low, top)
	peer, _ := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{3}, 32))
	for i, s := range scalars {
		k, err := newDHPair(s[:])
		if err != nil {
			t.Fatal(err)
		}
		sk, _ := ecdh.X25519().NewPrivateKey(s[:])
		if !bytes.Equal(k.pub[:], sk.PublicKey().Bytes()) {
			t.Errorf("scalar %d %x: public key %x, crypto/ecdh's %x", i, s, k.pub, sk.PublicKey().Bytes())
		}
		got, err := k.dh((*[32]byte)(peer.PublicKey().Bytes()))
		want, _ := sk.ECDH(peer.PublicKey())
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("scalar %d %x: DH %x (%v), crypto/ecdh's %x", i, s, got, err, want)
		}
		if k.priv != s {
			t.Errorf("scalar %d: the pair keeps %x, not the scalar as drawn", i, k.priv)
		}
	}
}
