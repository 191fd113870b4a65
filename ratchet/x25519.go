package ratchet

import (
	"errors"
	"fmt"
	"io"

	circl "github.com/cloudflare/circl/dh/x25519"
)

// The ratchet's X25519 (RFC 7748) is CIRCL's (github.com/cloudflare/circl,
// BSD licence), for speed: a DH step makes a key pair and computes two DH
// outputs. crypto/ecdh computes a new key's public half with a full
// Montgomery ladder and its ladder takes 44-48 µs here; CIRCL's ladder,
// on 4×64-bit limbs with the BMI2/ADX instructions where the CPU has
// them, takes 32 µs, and its fixed-base key generation 21 µs (bench
// figures in the package's benchmarks and docs/architecture.md). Both
// are constant time, and checked against RFC 7748's vectors and against
// crypto/ecdh (x25519_test.go).

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
	circl.KeyGen((*circl.Key)(&k.pub), (*circl.Key)(&k.priv)) // clamps a copy
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

// x25519Ladder sets dst to X25519(scalar, point), RFC 7748 section 5:
// the scalar clamped, the top bit of point ignored, the Montgomery ladder
// with constant-time swaps (CIRCL's).
func x25519Ladder(dst, scalar, point []byte) {
	var out, k, u circl.Key
	copy(k[:], scalar)
	copy(u[:], point)
	circl.Shared(&out, &k, &u) // its false is an all-zero output: dh checks that
	copy(dst, out[:])
}
