package chain

import (
	"bytes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/chacha20poly1305"
)

// payloadOverhead is what sealing adds to a plaintext: a random
// XChaCha20-Poly1305 nonce and the tag.
const payloadOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// Reasons an entry is refused. ErrNotAuthor and ErrUnknownEpoch may pass
// once this node has a newer roster (see Deferred); the others (and
// ErrPastCutoff) never do.
var (
	ErrOtherCell    = errors.New("chain: entry of another cell")
	ErrNotAuthor    = errors.New("chain: author may not write in this epoch")
	ErrUnknownEpoch = errors.New("chain: no cell secret for this epoch")
	ErrBadSignature = errors.New("chain: bad signature")
	ErrDecrypt      = errors.New("chain: payload does not decrypt")
	ErrBadLink      = errors.New("chain: entry breaks the chain's rules")
)

// Deferred reports whether err, from Verify, may go away once this node
// learns a newer roster: the entry is not stored now, and is fetched again
// later.
func Deferred(err error) bool {
	return errors.Is(err, ErrNotAuthor) || errors.Is(err, ErrUnknownEpoch)
}

// Roster says who may write. *cell.Roster has it. Its methods are only
// read; the slice Cutoff returns belongs to the Roster.
type Roster interface {
	// CanAuthor reports whether id may write entries of a key epoch.
	CanAuthor(id peer.ID, epoch uint64) bool
	// Cutoff returns, for a removed author, the highest sequence number
	// of its entries the cell keeps and the CIDs of its entries with that
	// number; ok is false for anyone not removed.
	Cutoff(id peer.ID) (seq uint64, last []cid.Cid, ok bool)
}

// Secrets returns the cell secret of a key epoch, and whether this node
// has it. The returned slice is only read.
type Secrets func(epoch uint64) ([]byte, bool)

// Draft is what an author fills in; Seal and Sign make an entry of it.
// State.Next gives Seq, Clock and Parents.
type Draft struct {
	Cell    ed25519.PublicKey
	Seq     uint64
	Clock   uint64
	Parents []cid.Cid
	Epoch   uint64
}

// Write seals plaintext under the epoch's secret with a nonce read from
// rand, and has key (the author's node key, Ed25519) sign the entry.
func Write(d Draft, key crypto.PrivKey, secret, plaintext []byte, rand io.Reader) (*Entry, error) {
	if len(plaintext) > MaxPayload {
		return nil, fmt.Errorf("chain: payload of %d bytes, limit %d", len(plaintext), MaxPayload)
	}
	author, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("chain: author key: %w", err)
	}
	e := &Entry{Cell: d.Cell, Author: author, Seq: d.Seq, Clock: d.Clock, Parents: d.Parents, Epoch: d.Epoch}
	aead, err := payloadAEAD(secret, e.Cell, e.Epoch)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, payloadOverhead+len(plaintext))
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("chain: nonce: %w", err)
	}
	e.Payload = aead.Seal(nonce, nonce, plaintext, payloadAD(e))
	if err := e.check(); err != nil {
		return nil, err
	}
	msg, err := e.signed()
	if err != nil {
		return nil, err
	}
	if e.Sig, err = key.Sign(msg); err != nil {
		return nil, fmt.Errorf("chain: sign: %w", err)
	}
	if e.raw, err = e.encode(true); err != nil {
		return nil, err
	}
	if len(e.raw) > MaxEntrySize {
		return nil, fmt.Errorf("chain: entry of %d bytes, limit %d", len(e.raw), MaxEntrySize)
	}
	if e.id, err = cidPrefix.Sum(e.raw); err != nil {
		return nil, fmt.Errorf("chain: hash entry: %w", err)
	}
	return e, nil
}

// Verify checks that e belongs to the cell, that its author may write in
// its epoch and, if removed, that e is not past its cut-off
// (ErrPastCutoff), its signature, and that its payload decrypts; it
// returns the plaintext. It does not check e's place in the chain (State.Add does).
func Verify(e *Entry, cell ed25519.PublicKey, r Roster, secrets Secrets) ([]byte, error) {
	if !bytes.Equal(e.Cell, cell) {
		return nil, ErrOtherCell
	}
	if !r.CanAuthor(e.Author, e.Epoch) {
		return nil, fmt.Errorf("%w: %s in epoch %d", ErrNotAuthor, e.Author, e.Epoch)
	}
	if err := checkCutoff(e, r); err != nil {
		return nil, err
	}
	pub, err := e.Author.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	msg, err := e.signed()
	if err != nil {
		return nil, err
	}
	if ok, err := pub.Verify(msg, e.Sig); err != nil || !ok {
		return nil, ErrBadSignature
	}
	return Open(e, secrets)
}

// Open decrypts e's payload without checking anything else: for entries
// that were verified when they were stored.
func Open(e *Entry, secrets Secrets) ([]byte, error) {
	secret, ok := secrets(e.Epoch)
	if !ok {
		return nil, fmt.Errorf("%w %d", ErrUnknownEpoch, e.Epoch)
	}
	aead, err := payloadAEAD(secret, e.Cell, e.Epoch)
	if err != nil {
		return nil, err
	}
	n := chacha20poly1305.NonceSizeX
	pt, err := aead.Open(nil, e.Payload[:n], e.Payload[n:], payloadAD(e))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// signed returns what the author signs: a domain prefix, then the entry's
// encoding without its signature. For a decoded entry it is cut out of the
// canonical block rather than encoded again (see unsigned).
func (e *Entry) signed() ([]byte, error) {
	if body := e.unsigned(); body != nil {
		return body, nil
	}
	body, err := e.encode(false)
	if err != nil {
		return nil, err
	}
	return append([]byte(signDomain), body...), nil
}

// sigField is the "sig" key and the header of its 64-byte value.
var sigField = []byte{0x63, 's', 'i', 'g', 0x58, 0x40}

// unsigned returns the domain prefix and e's canonical encoding without
// "sig", taken from e.raw: the map of 9 fields becomes one of 8 (header
// 0xa9 → 0xa8), and "sig", which follows "v": 1 and "seq" in canonical
// order, is left out. nil if e has no raw block or it is not laid out so.
func (e *Entry) unsigned() []byte {
	// 0xa9, "v": 1, "seq", then seq's unsigned integer.
	i := 1 + 3 + 4 + cborUintLen(e.Seq)
	end := i + len(sigField) + ed25519.SignatureSize
	if len(e.raw) < end || e.raw[0] != 0xa9 || !bytes.Equal(e.raw[i:i+len(sigField)], sigField) {
		return nil
	}
	out := make([]byte, 0, len(signDomain)+len(e.raw)-(end-i))
	out = append(out, signDomain...)
	out = append(out, 0xa8)
	out = append(out, e.raw[1:i]...)
	return append(out, e.raw[end:]...)
}

// cborUintLen is the length of the shortest CBOR encoding of v.
func cborUintLen(v uint64) int {
	switch {
	case v < 24:
		return 1
	case v <= 0xff:
		return 2
	case v <= 0xffff:
		return 3
	case v <= 0xffffffff:
		return 5
	}
	return 9
}

const (
	signDomain = "exopeer chain entry v1\x00"
	keyInfo    = "exopeer chain payload v1"
)

func payloadAEAD(secret []byte, cell ed25519.PublicKey, epoch uint64) (cipher.AEAD, error) {
	info := binary.BigEndian.AppendUint64([]byte(keyInfo), epoch)
	key, err := hkdf.Key(sha256.New, secret, cell, string(info), chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("chain: derive key: %w", err)
	}
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("chain: cipher: %w", err)
	}
	return a, nil
}

// payloadAD binds a payload to its entry's cell, author, sequence number
// and epoch, so that it cannot be moved into another entry.
func payloadAD(e *Entry) []byte {
	ad := make([]byte, 0, len(e.Cell)+len(e.Author)+24)
	ad = append(ad, e.Cell...)
	ad = binary.AppendUvarint(ad, uint64(len(e.Author)))
	ad = append(ad, e.Author...)
	ad = binary.BigEndian.AppendUint64(ad, e.Seq)
	return binary.BigEndian.AppendUint64(ad, e.Epoch)
}
