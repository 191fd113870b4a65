package ratchet

import (
	"crypto/ed25519"
	"crypto/mlkem"
	"encoding/binary"
	"errors"
	"fmt"
)

// The prekey bundle, its signatures and its encoding (doc.go, "Handshakes
// and prekey bundles", says the same in bytes).

// ErrBadBundle is the error of a prekey bundle that does not decode or
// whose signatures do not verify. A bundle is read by the initiator, who
// answers nobody, so its errors say what is wrong.
var ErrBadBundle = errors.New("ratchet: bad prekey bundle")

const (
	// BundleVersion is the version byte of a bundle's encoding.
	BundleVersion = 1
	// MaxOneTimePrekeys is the most one-time prekeys a bundle carries, and
	// the most a Prekeys holds.
	MaxOneTimePrekeys = 100
	// KEMKeySize is an ML-KEM-1024 encapsulation key's size.
	KEMKeySize = mlkem.EncapsulationKeySize1024
	// KEMCiphertextSize is an ML-KEM-1024 ciphertext's size.
	KEMCiphertextSize = mlkem.CiphertextSize1024

	// bundleFixed is a bundle's size with no ML-KEM key and no one-time
	// prekey: version, sequence, Ed25519 key, identity key and signature,
	// signed prekey (id, created, key, signature), last-resort prekey (id,
	// key, signature), the ML-KEM flag, the count, the bundle's signature.
	bundleFixed = 1 + 8 + 32 + 32 + 64 + (4 + 8 + 32 + 64) + (4 + 32 + 64) + 1 + 2 + 64
	bundleKEM   = 4 + KEMKeySize + 64 // an ML-KEM key: id, key, signature
	bundleOne   = 4 + 32              // a one-time prekey: id, key
	// MaxBundleSize is the largest encoded bundle: 5648 bytes.
	MaxBundleSize = bundleFixed + bundleKEM + MaxOneTimePrekeys*bundleOne
)

// The domain separation of every Ed25519 signature: each signed message
// starts with the string saying what it is. None is a prefix of another.
const (
	sigIdentity   = "exopeer-identity-v1"
	sigSigned     = "exopeer-signed-prekey-v1"
	sigLastResort = "exopeer-last-resort-prekey-v1"
	sigKEM        = "exopeer-mlkem1024-prekey-v1"
	sigBundle     = "exopeer-bundle-v1"
)

// Bundle is a device's public prekey bundle, as published (a DHT record
// under its peer ID, or served directly). Make one with Prekeys.Bundle;
// read one with VerifyBundle. Its fields are values: changing one after
// signing makes Verify fail.
type Bundle struct {
	// Sequence orders a device's bundles: a newer one replaces an older.
	Sequence uint64
	// SigningKey is the device's Ed25519 public key (its libp2p key), the
	// key of every signature of the bundle.
	SigningKey [32]byte
	// Identity is the device's identity X25519 public key (IK).
	Identity [32]byte
	// IdentitySig signs Identity.
	IdentitySig [64]byte
	// Signed is the signed prekey (SPK), the responder's first ratchet key.
	Signed SignedPrekey
	// LastResort is the prekey used when no one-time prekey is left.
	LastResort LastResortPrekey
	// KEM is the ML-KEM-1024 prekey, nil if the device offers no PQXDH.
	KEM *KEMPrekey
	// OneTime are the one-time prekeys (OPK), by ascending id.
	OneTime []OneTimePrekey
	// Sig signs all of the above (the encoding before it).
	Sig [64]byte
}

// SignedPrekey is a bundle's signed prekey.
type SignedPrekey struct {
	ID uint32
	// Created is when it was made, in Unix seconds (the caller's clock).
	Created int64
	Key     [32]byte
	Sig     [64]byte
}

// LastResortPrekey is a bundle's last-resort prekey: signed, never
// consumed.
type LastResortPrekey struct {
	ID  uint32
	Key [32]byte
	Sig [64]byte
}

// KEMPrekey is a bundle's ML-KEM-1024 encapsulation key.
type KEMPrekey struct {
	ID  uint32
	Key [KEMKeySize]byte
	Sig [64]byte
}

// OneTimePrekey is one of a bundle's one-time prekeys. It has no
// signature of its own: the bundle's signature covers it.
type OneTimePrekey struct {
	ID  uint32
	Key [32]byte
}

// EncapsulationKey parses the key, for the caller's encapsulation (the
// core takes the encapsulation's result, not randomness, see
// Encapsulation).
func (k *KEMPrekey) EncapsulationKey() (*mlkem.EncapsulationKey1024, error) {
	ek, err := mlkem.NewEncapsulationKey1024(k.Key[:])
	if err != nil {
		return nil, fmt.Errorf("ML-KEM key: %w", ErrBadBundle)
	}
	return ek, nil
}

// The signed messages.

func identityMessage(ik *[32]byte) []byte {
	return append([]byte(sigIdentity), ik[:]...)
}

func signedMessage(s *SignedPrekey) []byte {
	m := append([]byte(sigSigned), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(m[len(sigSigned):], s.ID)
	binary.BigEndian.PutUint64(m[len(sigSigned)+4:], uint64(s.Created))
	return append(m, s.Key[:]...)
}

func lastResortMessage(l *LastResortPrekey) []byte {
	m := binary.BigEndian.AppendUint32([]byte(sigLastResort), l.ID)
	return append(m, l.Key[:]...)
}

func kemMessage(k *KEMPrekey) []byte {
	m := binary.BigEndian.AppendUint32([]byte(sigKEM), k.ID)
	return append(m, k.Key[:]...)
}

// sign fills every signature of b with the device's key, whose public
// half must be b.SigningKey.
func (b *Bundle) sign(signer ed25519.PrivateKey) {
	b.IdentitySig = [64]byte(ed25519.Sign(signer, identityMessage(&b.Identity)))
	b.Signed.Sig = [64]byte(ed25519.Sign(signer, signedMessage(&b.Signed)))
	b.LastResort.Sig = [64]byte(ed25519.Sign(signer, lastResortMessage(&b.LastResort)))
	if b.KEM != nil {
		b.KEM.Sig = [64]byte(ed25519.Sign(signer, kemMessage(b.KEM)))
	}
	b.Sig = [64]byte(ed25519.Sign(signer, append([]byte(sigBundle), b.body()...)))
}

// Verify checks every signature of b, its one-time prekeys' order and
// count and its ML-KEM key, and returns an error wrapping ErrBadBundle if
// one fails.
func (b *Bundle) Verify() error {
	if len(b.OneTime) > MaxOneTimePrekeys {
		return fmt.Errorf("%d one-time prekeys: %w", len(b.OneTime), ErrBadBundle)
	}
	for i := 1; i < len(b.OneTime); i++ {
		if b.OneTime[i].ID <= b.OneTime[i-1].ID {
			return fmt.Errorf("one-time prekey ids not ascending: %w", ErrBadBundle)
		}
	}
	pub := ed25519.PublicKey(b.SigningKey[:])
	if !ed25519.Verify(pub, append([]byte(sigBundle), b.body()...), b.Sig[:]) {
		return fmt.Errorf("bundle signature: %w", ErrBadBundle)
	}
	if !ed25519.Verify(pub, identityMessage(&b.Identity), b.IdentitySig[:]) {
		return fmt.Errorf("identity key signature: %w", ErrBadBundle)
	}
	if !ed25519.Verify(pub, signedMessage(&b.Signed), b.Signed.Sig[:]) {
		return fmt.Errorf("signed prekey signature: %w", ErrBadBundle)
	}
	if !ed25519.Verify(pub, lastResortMessage(&b.LastResort), b.LastResort.Sig[:]) {
		return fmt.Errorf("last-resort prekey signature: %w", ErrBadBundle)
	}
	if b.KEM != nil {
		if !ed25519.Verify(pub, kemMessage(b.KEM), b.KEM.Sig[:]) {
			return fmt.Errorf("ML-KEM prekey signature: %w", ErrBadBundle)
		}
		if _, err := b.KEM.EncapsulationKey(); err != nil {
			return err
		}
	}
	return nil
}

// Replaces reports whether b is a newer bundle of the same device than
// old. Neither is verified here.
func (b *Bundle) Replaces(old *Bundle) bool {
	return b.SigningKey == old.SigningKey && b.Sequence > old.Sequence
}

// MarshalBinary encodes b (doc.go); it never fails.
func (b *Bundle) MarshalBinary() ([]byte, error) {
	return append(b.body(), b.Sig[:]...), nil
}

// body is b's encoding without its final signature: what that signs.
func (b *Bundle) body() []byte {
	out := make([]byte, 0, bundleFixed+bundleKEM+len(b.OneTime)*bundleOne)
	out = append(out, BundleVersion)
	out = binary.BigEndian.AppendUint64(out, b.Sequence)
	out = append(out, b.SigningKey[:]...)
	out = append(out, b.Identity[:]...)
	out = append(out, b.IdentitySig[:]...)
	out = binary.BigEndian.AppendUint32(out, b.Signed.ID)
	out = binary.BigEndian.AppendUint64(out, uint64(b.Signed.Created))
	out = append(out, b.Signed.Key[:]...)
	out = append(out, b.Signed.Sig[:]...)
	out = binary.BigEndian.AppendUint32(out, b.LastResort.ID)
	out = append(out, b.LastResort.Key[:]...)
	out = append(out, b.LastResort.Sig[:]...)
	if b.KEM == nil {
		out = append(out, 0)
	} else {
		out = append(out, 1)
		out = binary.BigEndian.AppendUint32(out, b.KEM.ID)
		out = append(out, b.KEM.Key[:]...)
		out = append(out, b.KEM.Sig[:]...)
	}
	out = binary.BigEndian.AppendUint16(out, uint16(len(b.OneTime)))
	for _, o := range b.OneTime {
		out = binary.BigEndian.AppendUint32(out, o.ID)
		out = append(out, o.Key[:]...)
	}
	return out
}

// DecodeBundle decodes a bundle's encoding, checking its shape (version,
// lengths, flags, the one-time prekeys' count and order) but no signature:
// VerifyBundle does both. Its errors wrap ErrBadBundle.
func DecodeBundle(data []byte) (*Bundle, error) {
	if len(data) < bundleFixed || len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%d bytes: %w", len(data), ErrBadBundle)
	}
	d := hsDecoder{b: data}
	if v := d.byte(); v != BundleVersion {
		return nil, fmt.Errorf("version %d: %w", v, ErrBadBundle)
	}
	b := &Bundle{Sequence: d.uint64()}
	d.copy(b.SigningKey[:])
	d.copy(b.Identity[:])
	d.copy(b.IdentitySig[:])
	b.Signed.ID = d.uint32()
	b.Signed.Created = int64(d.uint64())
	d.copy(b.Signed.Key[:])
	d.copy(b.Signed.Sig[:])
	b.LastResort.ID = d.uint32()
	d.copy(b.LastResort.Key[:])
	d.copy(b.LastResort.Sig[:])
	switch d.byte() {
	case 0:
	case 1:
		b.KEM = &KEMPrekey{ID: d.uint32()}
		d.copy(b.KEM.Key[:])
		d.copy(b.KEM.Sig[:])
	default:
		return nil, fmt.Errorf("ML-KEM flag: %w", ErrBadBundle)
	}
	n := int(d.uint16())
	if n > MaxOneTimePrekeys {
		return nil, fmt.Errorf("%d one-time prekeys: %w", n, ErrBadBundle)
	}
	if d.bad || len(d.b) != n*bundleOne+64 {
		return nil, fmt.Errorf("length: %w", ErrBadBundle)
	}
	b.OneTime = make([]OneTimePrekey, n)
	for i := range b.OneTime {
		b.OneTime[i].ID = d.uint32()
		d.copy(b.OneTime[i].Key[:])
		if i > 0 && b.OneTime[i].ID <= b.OneTime[i-1].ID {
			return nil, fmt.Errorf("one-time prekey ids not ascending: %w", ErrBadBundle)
		}
	}
	d.copy(b.Sig[:])
	return b, nil
}

// VerifyBundle decodes a bundle and verifies it (DecodeBundle, then
// Verify).
func VerifyBundle(data []byte) (*Bundle, error) {
	b, err := DecodeBundle(data)
	if err != nil {
		return nil, err
	}
	if err := b.Verify(); err != nil {
		return nil, err
	}
	return b, nil
}

// hsDecoder reads big-endian fields from b; reading past the end sets bad
// and yields zeros, so a hsDecoder checks bad (or the length) once.
type hsDecoder struct {
	b   []byte
	bad bool
}

func (d *hsDecoder) take(n int) []byte {
	if d.bad || len(d.b) < n {
		d.bad = true
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *hsDecoder) copy(dst []byte) { copy(dst, d.take(len(dst))) }
func (d *hsDecoder) byte() byte      { return d.take(1)[0] }
func (d *hsDecoder) uint16() uint16  { return binary.BigEndian.Uint16(d.take(2)) }
func (d *hsDecoder) uint32() uint32  { return binary.BigEndian.Uint32(d.take(4)) }
func (d *hsDecoder) uint64() uint64  { return binary.BigEndian.Uint64(d.take(8)) }
func (d *hsDecoder) done() bool      { return !d.bad && len(d.b) == 0 }
