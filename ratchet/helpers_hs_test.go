package ratchet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/mlkem/mlkemtest"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"
)

// The handshakes' test helpers.

// hsRand returns a ChaCha8 stream seeded from the test's name and
// label, and prints the seed if the test fails.
func hsRand(t testing.TB, label string) io.Reader {
	seed := sha256.Sum256([]byte(t.Name() + "/" + label))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("randomness %q: ChaCha8 seed %x", label, seed)
		}
	})
	return rand.NewChaCha8(seed)
}

// hsDevice is a hsDevice's keys for a test: its Ed25519 key and prekey state
// with n one-time prekeys, made from seeded randomness at time now.
type hsDevice struct {
	signer ed25519.PrivateKey
	keys   *Prekeys
}

func newHSDevice(t testing.TB, name string, n int, now int64) *hsDevice {
	t.Helper()
	r := hsRand(t, name)
	var seed [32]byte
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		t.Fatal(err)
	}
	keys, err := NewPrekeys(r, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Replenish(r, n); err != nil {
		t.Fatal(err)
	}
	return &hsDevice{signer: ed25519.NewKeyFromSeed(seed[:]), keys: keys}
}

// pub is the device's Ed25519 public key.
func (d *hsDevice) pub() ed25519.PublicKey { return d.signer.Public().(ed25519.PublicKey) }

func (d *hsDevice) bundle(t testing.TB, seq uint64) *Bundle {
	t.Helper()
	b, err := d.keys.Bundle(d.signer, seq)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encapsulate is the test's encapsulation to b's ML-KEM key with 32 bytes
// of r as its randomness (a shell uses crypto/mlkem's Encapsulate).
func testEncapsulate(t testing.TB, r io.Reader, b *Bundle) *Encapsulation {
	t.Helper()
	ek, err := b.KEM.EncapsulationKey()
	if err != nil {
		t.Fatal(err)
	}
	var m [32]byte
	if _, err := io.ReadFull(r, m[:]); err != nil {
		t.Fatal(err)
	}
	ss, ct, err := mlkemtest.Encapsulate1024(ek, m[:])
	if err != nil {
		t.Fatal(err)
	}
	return &Encapsulation{SharedKey: ss, Ciphertext: ct}
}

// marshal returns v's encoding, failing the test on error.
func hsMarshal(t testing.TB, v interface{ MarshalBinary() ([]byte, error) }) []byte {
	t.Helper()
	b, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// samePrekeys fails the test if k's encoding is not want.
func samePrekeys(t testing.TB, k *Prekeys, want []byte) {
	t.Helper()
	if !bytes.Equal(hsMarshal(t, k), want) {
		t.Error("the prekey state changed")
	}
}
