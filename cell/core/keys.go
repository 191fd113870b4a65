package core

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
)

// SecretLen is the length of an epoch secret.
const SecretLen = 32

// Secret is the cell secret of one key epoch. Every key the cell uses in an
// epoch (gossip, data, rendezvous) is derived from it.
type Secret [SecretLen]byte

// NewSecret returns a fresh secret read from rand.
func NewSecret(rand io.Reader) (Secret, error) {
	var s Secret
	if _, err := io.ReadFull(rand, s[:]); err != nil {
		return Secret{}, fmt.Errorf("cell: epoch secret: %w", err)
	}
	return s, nil
}

// Key purposes, each its own HKDF info string.
const (
	purposeGossip     = "exopeer gossip key v1"
	purposeData       = "exopeer data key v1"
	purposeRendezvous = "exopeer cell rendezvous v1"
	purposeHistory    = "exopeer epoch history v1"
)

// derive returns a 32-byte key for purpose from s, salted with the cell
// key so that two cells never share a derived key.
func (s Secret) derive(cell ed25519.PublicKey, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, s[:], cell, purpose, 32)
	if err != nil {
		panic("cell: hkdf: " + err.Error()) // only for lengths out of range
	}
	return k
}

// GossipKey is memberlist's AES-256 key for this epoch.
func (s Secret) GossipKey(cell ed25519.PublicKey) []byte { return s.derive(cell, purposeGossip) }

// RendezvousSecret is what members advertise on the DHT, blinded per
// rendezvous epoch by package discovery: it names nothing.
func (s Secret) RendezvousSecret(cell ed25519.PublicKey) []byte {
	return s.derive(cell, purposeRendezvous)
}

// Keys holds the secrets of every epoch this node has been given, by epoch.
type Keys struct {
	cell    ed25519.PublicKey
	secrets map[uint64]Secret
}

// NewKeys returns an empty key set of a cell.
func NewKeys(cell ed25519.PublicKey) *Keys {
	return &Keys{cell: cell, secrets: make(map[uint64]Secret)}
}

// clone returns a copy that can change without changing k.
func (k *Keys) Clone() *Keys {
	return &Keys{cell: k.cell, secrets: maps.Clone(k.secrets)}
}

// Add records the secret of an epoch.
func (k *Keys) Add(epoch uint64, s Secret) { k.secrets[epoch] = s }

// Secret returns the secret of an epoch.
func (k *Keys) Secret(epoch uint64) (Secret, bool) {
	s, ok := k.secrets[epoch]
	return s, ok
}

// Epochs lists the epochs held, in order.
func (k *Keys) Epochs() []uint64 { return slices.Sorted(maps.Keys(k.secrets)) }

// ErrNoKey means the secret of an epoch is not held: a node removed before
// that epoch began never receives it.
var ErrNoKey = errors.New("cell: no secret for this epoch")

// ErrDecrypt means a ciphertext did not authenticate.
var ErrDecrypt = errors.New("cell: message does not decrypt")

// Seal encrypts plaintext under the data key of an epoch (AES-256-GCM with
// a random nonce) and binds ad. The epoch travels with the ciphertext's
// owner, not inside it.
func (k *Keys) Seal(epoch uint64, plaintext, ad []byte) ([]byte, error) {
	aead, err := k.aead(epoch, purposeData)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nil, plaintext, ad), nil
}

// Open decrypts what Seal made under the same epoch and ad.
func (k *Keys) Open(epoch uint64, ciphertext, ad []byte) ([]byte, error) {
	aead, err := k.aead(epoch, purposeData)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, nil, ciphertext, ad)
	if err != nil {
		return nil, fmt.Errorf("%w (epoch %d)", ErrDecrypt, epoch)
	}
	return pt, nil
}

func (k *Keys) aead(epoch uint64, purpose string) (cipher.AEAD, error) {
	s, ok := k.secrets[epoch]
	if !ok {
		return nil, fmt.Errorf("%w %d", ErrNoKey, epoch)
	}
	return newAEAD(s.derive(k.cell, purpose))
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("cell: %w", err)
	}
	return cipher.NewGCMWithRandomNonce(b)
}

// sealHistory encrypts the secrets of every epoch before epoch under
// epoch's history key.
func (k *Keys) sealHistory(epoch uint64) ([]byte, error) {
	cur, ok := k.secrets[epoch]
	if !ok {
		return nil, fmt.Errorf("%w %d", ErrNoKey, epoch)
	}
	var pt []byte
	for _, e := range k.Epochs() {
		if e < epoch {
			pt = binary.AppendUvarint(pt, e)
			s := k.secrets[e]
			pt = append(pt, s[:]...)
		}
	}
	if len(pt) == 0 {
		return nil, nil
	}
	aead, err := newAEAD(cur.derive(k.cell, purposeHistory))
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nil, pt, historyAD(k.cell, epoch)), nil
}

// openHistory adds the earlier secrets that history, sealed under epoch's
// secret (which must be held), carries.
func (k *Keys) openHistory(epoch uint64, history []byte) error {
	if len(history) == 0 {
		return nil
	}
	cur, ok := k.secrets[epoch]
	if !ok {
		return fmt.Errorf("%w %d", ErrNoKey, epoch)
	}
	aead, err := newAEAD(cur.derive(k.cell, purposeHistory))
	if err != nil {
		return err
	}
	pt, err := aead.Open(nil, nil, history, historyAD(k.cell, epoch))
	if err != nil {
		return fmt.Errorf("%w: epoch history", ErrDecrypt)
	}
	got := make(map[uint64]Secret)
	for len(pt) > 0 {
		e, n := binary.Uvarint(pt)
		if n <= 0 || len(pt)-n < SecretLen || e >= epoch {
			return fmt.Errorf("%w: epoch history is malformed", ErrBadRoster)
		}
		got[e] = Secret(pt[n : n+SecretLen])
		pt = pt[n+SecretLen:]
	}
	maps.Copy(k.secrets, got)
	return nil
}

func historyAD(cell ed25519.PublicKey, epoch uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte("exopeer history\x00"), cell...), epoch)
}

// BoxKey is a member's X25519 key pair: epoch secrets are sealed to it.
type BoxKey struct{ priv *ecdh.PrivateKey }

// NewBoxKey returns a fresh box key made of 32 bytes of rand (read
// directly: ecdh.GenerateKey uses only the system's randomness since Go
// 1.26, and a seed must replay a simulated node's keys).
func NewBoxKey(rand io.Reader) (BoxKey, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return BoxKey{}, fmt.Errorf("cell: box key: %w", err)
	}
	return BoxKeyFromBytes(b[:])
}

// BoxKeyFromBytes restores a box key from its 32 private bytes.
func BoxKeyFromBytes(b []byte) (BoxKey, error) {
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		return BoxKey{}, fmt.Errorf("cell: box key: %w", err)
	}
	return BoxKey{priv: k}, nil
}

// Bytes returns the private key's bytes, for storage.
func (k BoxKey) Bytes() []byte { return k.priv.Bytes() }

// Public returns the public key as it goes on the roster.
func (k BoxKey) Public() [BoxKeyLen]byte { return [BoxKeyLen]byte(k.priv.PublicKey().Bytes()) }

// grantInfo binds a grant to its cell, epoch and member.
func grantInfo(cell ed25519.PublicKey, epoch uint64, member []byte) []byte {
	b := append([]byte("exopeer grant v1\x00"), cell...)
	b = binary.BigEndian.AppendUint64(b, epoch)
	return append(b, member...)
}

var hpkeSuite = struct {
	kdf  hpke.KDF
	aead hpke.AEAD
}{hpke.HKDFSHA256(), hpke.ChaCha20Poly1305()}

// sealGrant seals an epoch secret to a member's box key with HPKE (RFC
// 9180, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305).
func sealGrant(to [BoxKeyLen]byte, cell ed25519.PublicKey, epoch uint64, member []byte, s Secret) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(to[:])
	if err != nil {
		return nil, fmt.Errorf("cell: member box key: %w", err)
	}
	pk, err := hpke.NewDHKEMPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("cell: member box key: %w", err)
	}
	return hpke.Seal(pk, hpkeSuite.kdf, hpkeSuite.aead, grantInfo(cell, epoch, member), s[:])
}

// openGrant opens a grant sealed to k.
func (k BoxKey) openGrant(grant []byte, cell ed25519.PublicKey, epoch uint64, member []byte) (Secret, error) {
	sk, err := hpke.NewDHKEMPrivateKey(k.priv)
	if err != nil {
		return Secret{}, fmt.Errorf("cell: box key: %w", err)
	}
	pt, err := hpke.Open(sk, hpkeSuite.kdf, hpkeSuite.aead, grantInfo(cell, epoch, member), grant)
	if err != nil || len(pt) != SecretLen {
		return Secret{}, fmt.Errorf("%w: the grant of epoch %d", ErrDecrypt, epoch)
	}
	return Secret(pt), nil
}
