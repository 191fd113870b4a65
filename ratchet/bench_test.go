package ratchet

import "testing"

// Steady state: a encrypts 100 bytes, b decrypts them, one direction.
// Run with -cpu 1; ns/op and allocs/op are per pair.
func BenchmarkEncryptDecrypt(b *testing.B) {
	rng := seeded(100)
	alice, bob := newPair(b, rng)
	msg := make([]byte, 100)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		m, err := alice.Encrypt(rng, msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bob.Decrypt(m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// A DH step on every message: the two sides take turns.
func BenchmarkEncryptDecryptDHStep(b *testing.B) {
	rng := seeded(101)
	alice, bob := newPair(b, rng)
	msg := make([]byte, 100)
	from, to := alice, bob
	b.ReportAllocs()
	for b.Loop() {
		m, err := from.Encrypt(rng, msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := to.Decrypt(m); err != nil {
			b.Fatal(err)
		}
		from, to = to, from
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// One X25519 scalar multiplication of crypto/ecdh: a DH step costs three
// (the new key pair's public key, and one DH on each side).
func BenchmarkX25519(b *testing.B) {
	k, err := readKey(seeded(102))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.ECDH(k.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}
