package core

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// HPKE suite identifiers (RFC 9180, section 7): DHKEM(X25519,
// HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, as hpkeSuite names them.
var (
	hpkeKEMSuite = []byte("KEM\x00\x20")
	hpkeSuiteID  = []byte("HPKE\x00\x20\x00\x01\x00\x03")
)

// hpkeSeal is hpke.Seal with hpkeSuite (RFC 9180 base mode, one message,
// no associated data: enc ‖ ciphertext), with the ephemeral key drawn from
// rand. Go's crypto/hpke draws it from the system's source, which a
// simulation's seed cannot replay, and a grant is part of the roster: the
// roster's bytes would differ from run to run. Go's hpke.Open opens what it
// seals (TestHPKESealOpens); the RFC's vector fixes its encapsulation
// (TestHPKESealVector).
func hpkeSeal(rand io.Reader, pkR *ecdh.PublicKey, info, plaintext []byte) ([]byte, error) {
	var ikm [32]byte
	if _, err := io.ReadFull(rand, ikm[:]); err != nil {
		return nil, fmt.Errorf("cell: grant: ephemeral key: %w", err)
	}
	skE, err := ecdh.X25519().NewPrivateKey(ikm[:])
	if err != nil {
		return nil, fmt.Errorf("cell: grant: ephemeral key: %w", err)
	}
	dh, err := skE.ECDH(pkR)
	if err != nil {
		return nil, fmt.Errorf("cell: member box key: %w", err)
	}
	enc := skE.PublicKey().Bytes()
	// Encap (section 4.1): ExtractAndExpand over the DH value and both
	// public keys.
	prk := hpkeExtract(hpkeKEMSuite, nil, "eae_prk", dh)
	shared := hpkeExpand(hpkeKEMSuite, prk, "shared_secret", append(append([]byte(nil), enc...), pkR.Bytes()...), 32)
	// KeySchedule (section 5.1), base mode: no PSK.
	ksContext := append([]byte{0}, hpkeExtract(hpkeSuiteID, nil, "psk_id_hash", nil)...)
	ksContext = append(ksContext, hpkeExtract(hpkeSuiteID, nil, "info_hash", info)...)
	secret := hpkeExtract(hpkeSuiteID, shared, "secret", nil)
	key := hpkeExpand(hpkeSuiteID, secret, "key", ksContext, chacha20poly1305.KeySize)
	nonce := hpkeExpand(hpkeSuiteID, secret, "base_nonce", ksContext, chacha20poly1305.NonceSize)
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		panic("cell: chacha20poly1305: " + err.Error()) // only for a key of the wrong size
	}
	// Sequence number 0: the nonce is the base nonce.
	return aead.Seal(enc, nonce, plaintext, nil), nil
}

// hpkeExtract is LabeledExtract (RFC 9180, section 4) with HKDF-SHA256.
func hpkeExtract(suite, salt []byte, label string, ikm []byte) []byte {
	in := append(append(append([]byte("HPKE-v1"), suite...), label...), ikm...)
	prk, err := hkdf.Extract(sha256.New, in, salt)
	if err != nil {
		panic("cell: hkdf: " + err.Error()) // only in FIPS mode with a short key
	}
	return prk
}

// hpkeExpand is LabeledExpand (RFC 9180, section 4) with HKDF-SHA256.
func hpkeExpand(suite, prk []byte, label string, info []byte, n int) []byte {
	in := binary.BigEndian.AppendUint16(nil, uint16(n))
	in = append(append(append(append(in, "HPKE-v1"...), suite...), label...), info...)
	out, err := hkdf.Expand(sha256.New, prk, string(in), n)
	if err != nil {
		panic("cell: hkdf: " + err.Error()) // only for lengths out of range
	}
	return out
}
