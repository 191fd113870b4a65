package mailbox

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

const (
	// EpochLength is a mailbox epoch: a Unix day (UTC). Both cells of a
	// pair must name the same epochs without talking, so it is fixed.
	EpochLength = 24 * time.Hour

	// Retention is how long a slot's record is valid after it is written:
	// dht.MaxRecordTTL, the longest the DHT allows. A reader looks at
	// every epoch of the last Retention (ReadEpochs).
	Retention = 7 * 24 * time.Hour

	// SlotsPerEpoch bounds the slots of one direction in one epoch: a
	// writer fills index 0 first, then 1, and so on; a reader reads them
	// in order and stops at the first that is not found, but in the
	// oldest epoch it reads (ReadEveryIndex).
	SlotsPerEpoch = 8

	// RecordName is the DHT record name of every slot: its key is
	// "/exo/<slot's peer ID>/mailbox".
	RecordName = "mailbox"

	// PairLen is the length of a pair's secret.
	PairLen = 32
)

// Labels of the HKDF derivations (doc.go).
const (
	labelPair  = "exopeer mailbox pair v1"
	labelOwner = "exopeer mailbox owner v1"
	labelValue = "exopeer mailbox value v1"
)

var (
	// ErrBadKey means a cell key or mailbox key is malformed, the two
	// cells are the same, or the X25519 exchange gives the all-zero value
	// (a low-order public key).
	ErrBadKey = errors.New("mailbox: bad key")
	// ErrBadSlot means a slot's index is out of range, or a Slot was not
	// made by NewSlot.
	ErrBadSlot = errors.New("mailbox: bad slot")
)

// Pair is the secret two cells share for their blind mailboxes. Only the
// two cells (their members of the epochs whose mailbox keys were used)
// can compute it.
type Pair [PairLen]byte

// PairSecret computes the pair's secret from this cell's mailbox private
// key (cell/core Secret.MailboxKey) and the contact cell's mailbox public
// key: X25519, then HKDF-SHA256 bound to both cells' Ed25519 keys and both
// mailbox public keys in canonical order (doc.go). The contact computes
// the same from its side. It fails with ErrBadKey for keys of the wrong
// length, the same cell twice, or a low-order public key.
func PairSecret(own *ecdh.PrivateKey, ownCell, theirCell ed25519.PublicKey, theirs *ecdh.PublicKey) (Pair, error) {
	if own == nil || theirs == nil || own.Curve() != ecdh.X25519() || theirs.Curve() != ecdh.X25519() {
		return Pair{}, fmt.Errorf("%w: mailbox keys must be X25519", ErrBadKey)
	}
	if len(ownCell) != ed25519.PublicKeySize || len(theirCell) != ed25519.PublicKeySize {
		return Pair{}, fmt.Errorf("%w: cell keys must be %d bytes", ErrBadKey, ed25519.PublicKeySize)
	}
	c := bytes.Compare(ownCell, theirCell)
	if c == 0 {
		return Pair{}, fmt.Errorf("%w: a cell has no mailbox with itself", ErrBadKey)
	}
	shared, err := own.ECDH(theirs)
	if err != nil {
		return Pair{}, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	ownPub, theirPub := own.PublicKey().Bytes(), theirs.Bytes()
	loCell, hiCell, loPub, hiPub := ownCell, theirCell, ownPub, theirPub
	if c > 0 {
		loCell, hiCell, loPub, hiPub = theirCell, ownCell, theirPub, ownPub
	}
	info := append([]byte(labelPair), 0)
	info = append(append(append(append(info, loCell...), hiCell...), loPub...), hiPub...)
	return Pair(derive(shared, info)), nil
}

// derive is HKDF-SHA256 with an empty salt, 32 bytes out.
func derive(secret, info []byte) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, string(info), 32)
	if err != nil {
		panic("mailbox: hkdf: " + err.Error()) // only for lengths out of range
	}
	return k
}

// Epoch returns the mailbox epoch of t: its Unix day, 0 before 1970.
func Epoch(t time.Time) uint64 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return uint64(s / int64(EpochLength/time.Second))
}

// ReadEpochs returns the first and last epochs a reader looks at, at now:
// those in which a record still valid may have been written, from
// Epoch(now - Retention) to Epoch(now), so 8 epochs (a writer's clock a
// little ahead of the reader's is covered by the next poll).
func ReadEpochs(now time.Time) (first, last uint64) {
	return Epoch(now.Add(-Retention)), Epoch(now)
}

// ReadEveryIndex says whether a reader at now reads every index of epoch
// rather than stopping at the first slot not found: in the oldest epoch of
// ReadEpochs, a slot written early in the day has expired (Retention after
// it was written) while a later index, written later, may not have.
func ReadEveryIndex(epoch uint64, now time.Time) bool {
	first, _ := ReadEpochs(now)
	return epoch <= first
}

// Slot is one blind mailbox: the DHT record one cell writes to another in
// one epoch at one index. Only the pair can derive it. A Slot is a value;
// it is safe for concurrent use.
type Slot struct {
	owner crypto.PrivKey
	id    peer.ID
	key   string
	aead  [32]byte
	epoch uint64
	index int
}

// NewSlot derives the slot that cell from writes to cell to in epoch at
// index (0 to SlotsPerEpoch-1): its throwaway Ed25519 identity, which
// signs the record (dht.SealRecord), its record key and its AEAD key
// (doc.go). The other direction, another epoch, index or pair gives an
// unrelated slot.
func NewSlot(pair Pair, from, to ed25519.PublicKey, epoch uint64, index int) (Slot, error) {
	if len(from) != ed25519.PublicKeySize || len(to) != ed25519.PublicKeySize || bytes.Equal(from, to) {
		return Slot{}, fmt.Errorf("%w: two distinct %d-byte cell keys", ErrBadKey, ed25519.PublicKeySize)
	}
	if index < 0 || index >= SlotsPerEpoch {
		return Slot{}, fmt.Errorf("%w: index %d is not within [0, %d)", ErrBadSlot, index, SlotsPerEpoch)
	}
	info := func(label string) []byte {
		b := append([]byte(label), 0)
		b = append(append(b, from...), to...)
		b = binary.BigEndian.AppendUint64(b, epoch)
		return binary.BigEndian.AppendUint32(b, uint32(index))
	}
	seed := derive(pair[:], info(labelOwner))
	owner, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		return Slot{}, fmt.Errorf("mailbox: slot key: %w", err)
	}
	id, err := peer.IDFromPrivateKey(owner)
	if err != nil {
		return Slot{}, fmt.Errorf("mailbox: slot peer ID: %w", err)
	}
	s := Slot{owner: owner, id: id, epoch: epoch, index: index}
	s.key = "/exo/" + id.String() + "/" + RecordName // dht.RecordKey(id, RecordName)
	copy(s.aead[:], derive(pair[:], info(labelValue)))
	return s, nil
}

// Owner is the slot's private key: the shell signs the slot's record
// with it (dht.SealRecord(s.Owner(), RecordName, value, seq, expiry)).
func (s Slot) Owner() crypto.PrivKey { return s.owner }

// Peer is the slot's peer ID, the record's owner in its DHT key.
func (s Slot) Peer() peer.ID { return s.id }

// RecordKey is the slot record's DHT key, "/exo/<Peer>/mailbox".
func (s Slot) RecordKey() string { return s.key }

// Epoch is the slot's epoch.
func (s Slot) Epoch() uint64 { return s.epoch }

// Index is the slot's index within its epoch.
func (s Slot) Index() int { return s.index }
