package store

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Every error of the package wraps one of them.
var (
	// ErrMalformed is a payload or a value that does not decode or breaks
	// the encoding's rules.
	ErrMalformed = errors.New("store: malformed mutation")
	// ErrTooLarge is a length or a count over its cap.
	ErrTooLarge = errors.New("store: too large")
	// ErrVersion is a payload of an encoding version this build does not know.
	ErrVersion = errors.New("store: unknown mutation version")
	// ErrSchema is a document that does not match its trait type's schema.
	ErrSchema = errors.New("store: document does not match its schema")
	// ErrBadID is an entity ID that does not parse.
	ErrBadID = errors.New("store: bad entity id")
)

// Caps on what a mutation may carry. Encode refuses more, and Decode
// refuses it before allocating for it.
const (
	// MaxDoc is the largest trait document, in bytes.
	MaxDoc = 64 << 10
	// MaxOps is the largest number of operations in one transaction.
	MaxOps = 1000
	// MaxTraitID is the longest trait ID, in bytes.
	MaxTraitID = 64
	// MaxType is the longest trait type name, in bytes.
	MaxType = 128
	// MaxPayload is the largest encoded transaction, in bytes: the chain's
	// own payload cap (chain.MaxPayload, 256 KiB).
	MaxPayload = 256 << 10
)

// EntityID names an entity: 16 random bytes. Its text form is 32 lowercase
// hex digits: hex because IDs appear in CLI arguments, URLs and logs, where
// a fixed-length, case-insensitive and unambiguous form matters more than
// the 6 characters base32 would save.
type EntityID [16]byte

// NewEntityID reads a new ID from r (crypto/rand.Reader in a shell, a
// seeded stream in tests).
func NewEntityID(r io.Reader) (EntityID, error) {
	var id EntityID
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return EntityID{}, fmt.Errorf("store: new entity id: %w", err)
	}
	return id, nil
}

// String returns the 32 hex digits of id.
func (id EntityID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero ID, which names no entity.
func (id EntityID) IsZero() bool { return id == EntityID{} }

// ParseEntityID parses what String makes (upper-case digits are accepted).
func ParseEntityID(s string) (EntityID, error) {
	var id EntityID
	if len(s) != 2*len(id) {
		return EntityID{}, fmt.Errorf("%q is not 32 hex digits: %w", s, ErrBadID)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return EntityID{}, fmt.Errorf("%q: %w", s, ErrBadID)
	}
	return id, nil
}

// TraitID names a trait within its entity: 1 to MaxTraitID bytes of UTF-8.
// An entity's traits are ordered by TraitID.
type TraitID string

func (t TraitID) check() error {
	if len(t) == 0 || len(t) > MaxTraitID || !utf8.ValidString(string(t)) {
		return fmt.Errorf("trait id %q: must be 1 to %d bytes of UTF-8: %w", truncate(string(t)), MaxTraitID, ErrMalformed)
	}
	return nil
}

// Trait is one typed JSON document of an entity.
type Trait struct {
	// Type names the trait's schema, for example "exo.note". A type with no
	// registered schema is kept and returned, not indexed.
	Type string
	// ID names the trait within its entity.
	ID TraitID
	// Doc is the document: a JSON value of at most MaxDoc bytes, kept byte
	// for byte as it was written.
	Doc json.RawMessage
	// Created and Modified are the writer's times (a device's clock: they
	// order nothing; the chain orders mutations). Read from the store, a
	// trait's Created is the earliest of its puts' since its latest
	// delete (see the package doc), a zero one counting for none.
	Created, Modified time.Time
}

func (t *Trait) check() error {
	if err := t.ID.check(); err != nil {
		return err
	}
	if len(t.Type) == 0 || len(t.Type) > MaxType || !utf8.ValidString(t.Type) {
		return fmt.Errorf("trait %q: type must be 1 to %d bytes of UTF-8: %w", t.ID, MaxType, ErrMalformed)
	}
	if len(t.Doc) > MaxDoc {
		return fmt.Errorf("trait %q: document of %d bytes, over %d: %w", t.ID, len(t.Doc), MaxDoc, ErrTooLarge)
	}
	if !json.Valid(t.Doc) {
		return fmt.Errorf("trait %q: document is not JSON: %w", t.ID, ErrMalformed)
	}
	if err := checkTime(t.Created); err != nil {
		return fmt.Errorf("trait %q: created: %w", t.ID, err)
	}
	if err := checkTime(t.Modified); err != nil {
		return fmt.Errorf("trait %q: modified: %w", t.ID, err)
	}
	return nil
}

// Entity is an entity's visible state: its ID and its live traits, in
// TraitID order.
type Entity struct {
	ID     EntityID
	Traits []Trait
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
