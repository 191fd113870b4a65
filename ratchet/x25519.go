package ratchet

import (
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// The ratchet's own X25519 (RFC 7748), for speed: a DH step makes a key
// pair and computes two DH outputs, and crypto/ecdh computes a new key's
// public half with a full Montgomery ladder (45 µs here). dhPair computes
// it as a fixed-base multiplication on the Edwards curve, mapped to its
// Montgomery u-coordinate (about half the time), and dh is the ladder of
// crypto/ecdh (x25519ScalarMult, BSD licence, The Go Authors) over the
// same constant-time field arithmetic (filippo.io/edwards25519/field, the
// package the standard library's internal copy comes from). Both are
// checked against RFC 7748's vectors and against crypto/ecdh.

// errLowOrder is a DH output of all zeros: the peer's key is of low order.
var errLowOrder = errors.New("ratchet: X25519 of a low-order point")

// dhPair is an X25519 key pair: the private scalar as drawn (clamped when
// used) and its public key.
type dhPair struct{ priv, pub [32]byte }

// newDHPair makes the key pair of the 32 bytes priv.
func newDHPair(priv []byte) (*dhPair, error) {
	if len(priv) != 32 {
		return nil, fmt.Errorf("ratchet: an X25519 private key of %d bytes", len(priv))
	}
	k := &dhPair{priv: [32]byte(priv)}
	s, err := edwards25519.NewScalar().SetBytesWithClamping(priv)
	if err != nil { // only for a length other than 32
		return nil, fmt.Errorf("ratchet: X25519 private key: %w", err)
	}
	copy(k.pub[:], new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery())
	return k, nil
}

// readDHPair makes a key pair of 32 bytes read from rand.
func readDHPair(rand io.Reader) (*dhPair, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, fmt.Errorf("ratchet: reading a ratchet key: %w", err)
	}
	return newDHPair(b[:])
}

// dh is X25519(k.priv, remote); an all-zero output is errLowOrder.
func (k *dhPair) dh(remote *[32]byte) ([]byte, error) {
	out := make([]byte, 32)
	x25519Ladder(out, k.priv[:], remote[:])
	var acc byte
	for _, b := range out {
		acc |= b
	}
	if acc == 0 {
		return nil, errLowOrder
	}
	return out, nil
}

// x25519Ladder sets dst to X25519(scalar, point), RFC 7748 section 5: the
// Montgomery ladder with constant-time swaps.
func x25519Ladder(dst, scalar, point []byte) {
	var e [32]byte
	copy(e[:], scalar)
	e[0] &= 248
	e[31] &= 127
	e[31] |= 64

	var x1, x2, z2, x3, z3, tmp0, tmp1 field.Element
	x1.SetBytes(point) // ignores the top bit, as RFC 7748 asks
	x2.One()
	x3.Set(&x1)
	z3.One()

	swap := 0
	for pos := 254; pos >= 0; pos-- {
		b := int(e[pos/8]>>uint(pos&7)) & 1
		swap ^= b
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = b

		tmp0.Subtract(&x3, &z3)
		tmp1.Subtract(&x2, &z2)
		x2.Add(&x2, &z2)
		z2.Add(&x3, &z3)
		z3.Multiply(&tmp0, &x2)
		z2.Multiply(&z2, &tmp1)
		tmp0.Square(&tmp1)
		tmp1.Square(&x2)
		x3.Add(&z3, &z2)
		z2.Subtract(&z3, &z2)
		x2.Multiply(&tmp1, &tmp0)
		tmp1.Subtract(&tmp1, &tmp0)
		z2.Square(&z2)

		z3.Mult32(&tmp1, 121666)
		x3.Square(&x3)
		tmp0.Add(&tmp0, &z3)
		z3.Multiply(&x1, &z2)
		z2.Multiply(&tmp1, &tmp0)
	}
	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)

	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	copy(dst, x2.Bytes())
}
