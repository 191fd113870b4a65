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
	purposeBlob       = "exopeer blob dedup v1"
	purposeMailbox    = "exopeer mailbox key v1"
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

// BlobSecret is the secret from which the cell's blob keys are derived,
// each from it and the hash of the blob's content (package blob): the same
// file added twice in one epoch is stored once, while nobody without the
// secret can tell that two blobs hold the same file.
func (s Secret) BlobSecret(cell ed25519.PublicKey) []byte { return s.derive(cell, purposeBlob) }

// RendezvousSecret is what members advertise on the DHT, blinded per
// rendezvous epoch by package discovery: it names nothing.
func (s Secret) RendezvousSecret(cell ed25519.PublicKey) []byte {
	return s.derive(cell, purposeRendezvous)
}

// MailboxKey is the cell's X25519 mailbox key of this epoch: its private
// key is the 32 bytes derived for "exopeer mailbox key v1" (an X25519
// scalar, clamped when used). Every member holds the epoch secret, so every
// member computes the same key; a member removed loses it at the next
// epoch. Its public key goes to contacts; with a contact's, package
// message/mailbox derives the pair's blind mailboxes.
func (s Secret) MailboxKey(cell ed25519.PublicKey) *ecdh.PrivateKey {
	k, err := ecdh.X25519().NewPrivateKey(s.derive(cell, purposeMailbox))
	if err != nil {
		panic("cell: x25519: " + err.Error()) // only for a length other than 32
	}
	return k
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
// a nonce read from rand) and binds ad. The epoch travels with the
// ciphertext's owner, not inside it.
func (k *Keys) Seal(epoch uint64, plaintext, ad []byte, rand io.Reader) ([]byte, error) {
	s, ok := k.secrets[epoch]
	if !ok {
		return nil, fmt.Errorf("%w %d", ErrNoKey, epoch)
	}
	return sealGCM(rand, s.derive(k.cell, purposeData), plaintext, ad)
}

// Open decrypts what Seal made under the same epoch and ad.
func (k *Keys) Open(epoch uint64, ciphertext, ad []byte) ([]byte, error) {
	s, ok := k.secrets[epoch]
	if !ok {
		return nil, fmt.Errorf("%w %d", ErrNoKey, epoch)
	}
	pt, err := openGCM(s.derive(k.cell, purposeData), ciphertext, ad)
	if err != nil {
		return nil, fmt.Errorf("%w (epoch %d)", ErrDecrypt, epoch)
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("cell: %w", err)
	}
	return cipher.NewGCM(b)
}

// sealGCM seals plaintext under key with AES-256-GCM and a nonce read from
// rand: nonce ‖ ciphertext ‖ tag, the form of crypto/cipher's
// NewGCMWithRandomNonce, which draws its nonces from the system's source,
// which a seed cannot replay.
func sealGCM(rand io.Reader, key, plaintext, ad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(plaintext)+gcm.Overhead())
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("cell: nonce: %w", err)
	}
	return gcm.Seal(nonce, nonce, plaintext, ad), nil
}

// errOpen is what openGCM returns for anything that does not open; callers
// wrap ErrDecrypt instead.
var errOpen = errors.New("cell: message does not open")

// openGCM opens what sealGCM sealed under key with ad.
func openGCM(key, sealed, ad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	n := gcm.NonceSize()
	if len(sealed) < n+gcm.Overhead() {
		return nil, errOpen
	}
	return gcm.Open(nil, sealed[:n], sealed[n:], ad)
}

// sealHistory encrypts the secrets of every epoch before epoch under
// epoch's history key, with a nonce read from rand.
func (k *Keys) sealHistory(epoch uint64, rand io.Reader) ([]byte, error) {
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
	return sealGCM(rand, cur.derive(k.cell, purposeHistory), pt, historyAD(k.cell, epoch))
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
	pt, err := openGCM(cur.derive(k.cell, purposeHistory), history, historyAD(k.cell, epoch))
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
// 9180, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305), its
// ephemeral key read from rand.
func sealGrant(rand io.Reader, to [BoxKeyLen]byte, cell ed25519.PublicKey, epoch uint64, member []byte, s Secret) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(to[:])
	if err != nil {
		return nil, fmt.Errorf("cell: member box key: %w", err)
	}
	return hpkeSeal(rand, pub, grantInfo(cell, epoch, member), s[:])
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
