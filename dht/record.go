package dht

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/ambient"
)

// This file is the pure part of the package: the record envelope, its
// signature and the record.Validator. No network, no goroutines, and the
// clock is a field of the validator.

const (
	// Namespace is the DHT key namespace of exopeer's signed records: every
	// record key starts with "/exo/".
	Namespace = "exo"

	// MaxValueSize is the largest user value a record may carry, in bytes.
	MaxValueSize = 16 << 10

	// MaxNameLen is the longest record name, in bytes.
	MaxNameLen = 128

	// MaxRecordTTL is the longest validity a record may claim. Validators
	// reject records whose expiry is further away than this (plus
	// maxClockSkew), so an old record cannot outlive its owner's intent for
	// long.
	MaxRecordTTL = 7 * 24 * time.Hour

	// maxClockSkew is the tolerance for a publisher whose clock runs ahead.
	maxClockSkew = time.Hour

	envelopeVersion = 1
	maxPubKeyLen    = 64 // marshalled Ed25519 keys are 36 bytes
	sigLen          = 64 // Ed25519
	// MaxRecordSize is the largest encoded envelope.
	MaxRecordSize = 1 + 2 + maxPubKeyLen + 4 + MaxValueSize + 8 + 8 + 2 + sigLen

	// signDomain separates record signatures from every other use of a
	// node key.
	signDomain = "exopeer/dht/record/v1\x00"
)

var (
	// ErrBadRecord means an envelope could not be decoded.
	ErrBadRecord = errors.New("dht: malformed record")
	// ErrBadKey means a record key is not "/exo/<peer ID>/<name>".
	ErrBadKey = errors.New("dht: bad record key")
	// ErrBadName means a record name is empty, too long or not UTF-8.
	ErrBadName = errors.New("dht: bad record name")
	// ErrTooLarge means a record value exceeds MaxValueSize.
	ErrTooLarge = errors.New("dht: record value too large")
	// ErrWrongOwner means the key's peer ID does not match the public key
	// in the envelope.
	ErrWrongOwner = errors.New("dht: record owner does not match its key")
	// ErrBadSignature means the envelope's signature does not verify.
	ErrBadSignature = errors.New("dht: bad record signature")
	// ErrExpired means the record's expiry has passed.
	ErrExpired = errors.New("dht: record expired")
	// ErrTooFarAhead means the record claims a validity past MaxRecordTTL.
	ErrTooFarAhead = errors.New("dht: record expiry too far ahead")
)

// RecordKey returns the DHT key of the record called name published by
// owner: "/exo/" + owner.String() + "/" + name. The owner is in its
// canonical string form (base58btc multihash, e.g. "12D3KooW..."), which
// holds no '/', so the name is everything after the second '/'.
func RecordKey(owner peer.ID, name string) string {
	return "/" + Namespace + "/" + owner.String() + "/" + name
}

// parseKey splits a record key into owner and name.
func parseKey(key string) (peer.ID, string, error) {
	rest, ok := strings.CutPrefix(key, "/"+Namespace+"/")
	if !ok {
		return "", "", fmt.Errorf("dht: key without /%s/ prefix: %w", Namespace, ErrBadKey)
	}
	owner, name, ok := strings.Cut(rest, "/")
	if !ok {
		return "", "", fmt.Errorf("dht: key without name: %w", ErrBadKey)
	}
	id, err := peer.Decode(owner)
	if err != nil || id.String() != owner {
		return "", "", fmt.Errorf("dht: key owner is not a canonical peer ID: %w", ErrBadKey)
	}
	if err := checkName(name); err != nil {
		return "", "", err
	}
	return id, name, nil
}

func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen || !utf8.ValidString(name) {
		return fmt.Errorf("dht: name must be 1 to %d bytes of UTF-8: %w", MaxNameLen, ErrBadName)
	}
	return nil
}

// envelope is a decoded record value. PubKey is the marshalled libp2p
// public key of the owner.
type envelope struct {
	PubKey []byte
	Value  []byte
	Seq    uint64
	Expiry int64 // unix nanoseconds
	Sig    []byte
}

// encode returns the wire form of e (see doc.go). It does not check sizes;
// sealEnvelope and decodeEnvelope do.
func (e *envelope) encode() []byte {
	b := make([]byte, 0, 1+2+len(e.PubKey)+4+len(e.Value)+8+8+2+len(e.Sig))
	b = append(b, envelopeVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.PubKey)))
	b = append(b, e.PubKey...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Value)))
	b = append(b, e.Value...)
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Expiry))
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Sig)))
	return append(b, e.Sig...)
}

// decodeEnvelope parses the wire form strictly: known version, every length
// within its limit, no trailing bytes. The returned slices alias b.
func decodeEnvelope(b []byte) (*envelope, error) {
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("dht: envelope of %d bytes exceeds %d: %w", len(b), MaxRecordSize, ErrBadRecord)
	}
	r := reader{b: b}
	if v := r.byte(); !r.bad && v != envelopeVersion {
		return nil, fmt.Errorf("dht: unknown envelope version %d: %w", v, ErrBadRecord)
	}
	var e envelope
	e.PubKey = r.bytes(int(r.uint16()), maxPubKeyLen)
	e.Value = r.bytes(int(r.uint32()), MaxValueSize)
	e.Seq = r.uint64()
	e.Expiry = int64(r.uint64())
	e.Sig = r.bytes(int(r.uint16()), sigLen)
	if r.bad {
		return nil, fmt.Errorf("dht: truncated envelope or field over its limit: %w", ErrBadRecord)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("dht: %d trailing bytes after envelope: %w", len(r.b), ErrBadRecord)
	}
	return &e, nil
}

// reader consumes big-endian fields. After the first short read or
// over-limit length, bad is set and every later read returns zero.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad, r.b = true, nil
		return make([]byte, 8) // zeros for the fixed-size readers; unused once bad
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) byte() byte     { return r.take(1)[0] }
func (r *reader) uint16() uint16 { return binary.BigEndian.Uint16(r.take(2)) }
func (r *reader) uint32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *reader) uint64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }

func (r *reader) bytes(n, limit int) []byte {
	if n > limit {
		r.bad, r.b = true, nil
		return nil
	}
	return r.take(n)
}

// signedBytes is the message the owner signs: a domain tag, then the key,
// value, sequence and expiry, each length-prefixed or fixed-size.
func signedBytes(key string, value []byte, seq uint64, expiry int64) []byte {
	b := make([]byte, 0, len(signDomain)+2+len(key)+4+len(value)+16)
	b = append(b, signDomain...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	b = append(b, value...)
	b = binary.BigEndian.AppendUint64(b, seq)
	return binary.BigEndian.AppendUint64(b, uint64(expiry))
}

// sealEnvelope signs value under name with priv and returns the encoded
// envelope together with its DHT key.
func sealEnvelope(priv crypto.PrivKey, name string, value []byte, seq uint64, expiry time.Time) (key string, enc []byte, err error) {
	if priv == nil || priv.Type() != cryptopb.KeyType_Ed25519 {
		return "", nil, errors.New("dht: record keys must be Ed25519")
	}
	if err := checkName(name); err != nil {
		return "", nil, err
	}
	if len(value) > MaxValueSize {
		return "", nil, fmt.Errorf("dht: value of %d bytes exceeds %d: %w", len(value), MaxValueSize, ErrTooLarge)
	}
	owner, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return "", nil, fmt.Errorf("dht: owner peer ID: %w", err)
	}
	pub, err := crypto.MarshalPublicKey(priv.GetPublic())
	if err != nil {
		return "", nil, fmt.Errorf("dht: marshal public key: %w", err)
	}
	key = RecordKey(owner, name)
	e := envelope{PubKey: pub, Value: value, Seq: seq, Expiry: expiry.UnixNano()}
	e.Sig, err = priv.Sign(signedBytes(key, value, e.Seq, e.Expiry))
	if err != nil {
		return "", nil, fmt.Errorf("dht: sign record: %w", err)
	}
	return key, e.encode(), nil
}

// openEnvelope decodes and fully verifies a record found under key at time
// now: owner, signature, expiry and size.
func openEnvelope(key string, b []byte, now time.Time) (*envelope, error) {
	owner, _, err := parseKey(key)
	if err != nil {
		return nil, err
	}
	e, err := decodeEnvelope(b)
	if err != nil {
		return nil, err
	}
	pub, err := crypto.UnmarshalPublicKey(e.PubKey)
	if err != nil || pub.Type() != cryptopb.KeyType_Ed25519 {
		return nil, fmt.Errorf("dht: owner key is not an Ed25519 public key: %w", ErrBadRecord)
	}
	if !owner.MatchesPublicKey(pub) {
		return nil, ErrWrongOwner
	}
	ok, err := pub.Verify(signedBytes(key, e.Value, e.Seq, e.Expiry), e.Sig)
	if err != nil || !ok {
		return nil, ErrBadSignature
	}
	nowNs := now.UnixNano()
	if e.Expiry <= nowNs {
		return nil, ErrExpired
	}
	if e.Expiry-nowNs > int64(MaxRecordTTL+maxClockSkew) {
		return nil, ErrTooFarAhead
	}
	return e, nil
}

// SealRecord signs value under name with priv, which need not be the
// node's key, and returns the record's DHT key, "/exo/<priv's peer ID>/<name>",
// and its encoded envelope (see the package doc), ready for a put. It is
// pure: a blind mailbox (package message/mailbox) signs its records with
// a throwaway identity only the two cells of a pair can derive. priv must
// be Ed25519; value at most MaxValueSize bytes; expiry at most MaxRecordTTL
// ahead of the time the record is validated.
func SealRecord(priv crypto.PrivKey, name string, value []byte, seq uint64, expiry time.Time) (key string, record []byte, err error) {
	return sealEnvelope(priv, name, value, seq, expiry)
}

// Record is a verified record's content.
type Record struct {
	Value  []byte // aliases the encoded record
	Seq    uint64
	Expiry time.Time
}

// OpenRecord decodes and fully verifies a record found under key at time
// now, as the Validator does, and returns its value, sequence number and
// expiry (a blind mailbox's value binds the sequence number).
func OpenRecord(key string, record []byte, now time.Time) (Record, error) {
	e, err := openEnvelope(key, record, now)
	if err != nil {
		return Record{}, err
	}
	return Record{Value: e.Value, Seq: e.Seq, Expiry: time.Unix(0, e.Expiry)}, nil
}

// Validator is the record.Validator of the "exo" namespace. It is safe for
// concurrent use.
type Validator struct {
	now func() time.Time
}

var _ record.Validator = Validator{}

// NewValidator returns a Validator that reads the time from now (nil means
// the real clock).
func NewValidator(now func() time.Time) Validator {
	return Validator{now: ambient.NowOr(now)}
}

// Validate checks that value is a well-formed envelope for key, signed by
// the key's owner and not expired.
func (v Validator) Validate(key string, value []byte) error {
	_, err := openEnvelope(key, value, ambient.NowOr(v.now)())
	return err
}

// Select returns the index of the best value: the highest sequence number,
// then the latest expiry, then (for a stable choice) the larger encoding.
// Values that do not decode or belong to another owner are never chosen.
// It does not verify signatures: the DHT validates values before it selects.
func (v Validator) Select(key string, values [][]byte) (int, error) {
	owner, _, err := parseKey(key)
	if err != nil {
		return 0, err
	}
	best, bestEnv := -1, (*envelope)(nil)
	for i, b := range values {
		e, err := decodeEnvelope(b)
		if err != nil {
			continue
		}
		pub, err := crypto.UnmarshalPublicKey(e.PubKey)
		if err != nil || !owner.MatchesPublicKey(pub) {
			continue
		}
		if best < 0 || better(e, b, bestEnv, values[best]) {
			best, bestEnv = i, e
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("dht: no valid record among %d: %w", len(values), ErrBadRecord)
	}
	return best, nil
}

func better(a *envelope, aEnc []byte, b *envelope, bEnc []byte) bool {
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	if a.Expiry != b.Expiry {
		return a.Expiry > b.Expiry
	}
	return bytes.Compare(aEnc, bEnc) > 0
}
