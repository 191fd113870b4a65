package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// OpKind says what an Op does.
type OpKind uint8

// The operations. Their values are part of the encoding.
const (
	// OpPutTrait writes a trait whole (created or replaced).
	OpPutTrait OpKind = 1
	// OpDeleteTrait deletes one trait: a tombstone for (entity, trait ID).
	OpDeleteTrait OpKind = 2
	// OpDeleteEntity deletes an entity: a tombstone for all of its traits
	// written before it in chain order.
	OpDeleteEntity OpKind = 3
)

func (k OpKind) String() string {
	switch k {
	case OpPutTrait:
		return "put"
	case OpDeleteTrait:
		return "delete-trait"
	case OpDeleteEntity:
		return "delete-entity"
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// Op is one operation on one entity. For OpPutTrait, Trait is the whole
// trait; for OpDeleteTrait only Trait.ID is used (the rest must be zero);
// for OpDeleteEntity Trait must be zero.
type Op struct {
	Kind   OpKind
	Entity EntityID
	Trait  Trait
}

// PutTrait returns the operation that writes t into entity e.
func PutTrait(e EntityID, t Trait) Op { return Op{Kind: OpPutTrait, Entity: e, Trait: t} }

// DeleteTrait returns the operation that deletes trait id of entity e.
func DeleteTrait(e EntityID, id TraitID) Op {
	return Op{Kind: OpDeleteTrait, Entity: e, Trait: Trait{ID: id}}
}

// DeleteEntity returns the operation that deletes entity e.
func DeleteEntity(e EntityID) Op { return Op{Kind: OpDeleteEntity, Entity: e} }

// Check reports whether o is well formed (the encoding's rules and caps;
// schemas are checked by Registry.Validate).
func (o *Op) Check() error {
	if o.Entity.IsZero() {
		return fmt.Errorf("%s: zero entity id: %w", o.Kind, ErrMalformed)
	}
	switch o.Kind {
	case OpPutTrait:
		return o.Trait.check()
	case OpDeleteTrait:
		if err := o.Trait.ID.check(); err != nil {
			return err
		}
		if o.Trait.Type != "" || o.Trait.Doc != nil || !o.Trait.Created.IsZero() || !o.Trait.Modified.IsZero() {
			return fmt.Errorf("delete-trait %q: carries more than a trait id: %w", o.Trait.ID, ErrMalformed)
		}
		return nil
	case OpDeleteEntity:
		if o.Trait.ID != "" || o.Trait.Type != "" || o.Trait.Doc != nil || !o.Trait.Created.IsZero() || !o.Trait.Modified.IsZero() {
			return fmt.Errorf("delete-entity: carries a trait: %w", ErrMalformed)
		}
		return nil
	}
	return fmt.Errorf("unknown operation %d: %w", uint8(o.Kind), ErrMalformed)
}

// Transaction is a batch of operations carried by one chain entry, alone
// or in a batch of transactions (EncodeBatch): they apply all or nothing,
// in their order, at the entry's position (and their transaction's place
// in it: OpPlace).
type Transaction struct {
	Ops []Op
}

// Check reports whether tx is well formed: 1 to MaxOps operations, each
// well formed.
func (tx *Transaction) Check() error {
	if len(tx.Ops) == 0 {
		return fmt.Errorf("empty transaction: %w", ErrMalformed)
	}
	if len(tx.Ops) > MaxOps {
		return fmt.Errorf("%d operations, over %d: %w", len(tx.Ops), MaxOps, ErrTooLarge)
	}
	for i := range tx.Ops {
		if err := tx.Ops[i].Check(); err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
	}
	return nil
}

// The encoding's first two bytes.
const (
	// Magic marks a store mutation among chain payloads.
	Magic byte = 0xE5
	// Version is the encoding's version.
	Version byte = 1
)

// Encode returns the encoding of tx, the payload of a chain entry:
//
//	magic 0xE5, version 1, uvarint count of ops, then each op:
//	  kind (1 byte), entity (16 bytes), and for a put:
//	    uvarint length + trait id, uvarint length + type,
//	    uvarint length + document,
//	    created and modified: each zigzag varint Unix seconds, uvarint nanoseconds (< 1e9);
//	  for a delete-trait: uvarint length + trait id;
//	  for a delete-entity: nothing more.
//
// Times are kept to the nanosecond; their location is not kept (Decode
// returns UTC). Encode refuses a transaction that Check refuses or whose
// encoding is over MaxPayload.
func Encode(tx Transaction) ([]byte, error) {
	if err := tx.Check(); err != nil {
		return nil, fmt.Errorf("store: encode: %w", err)
	}
	return EncodeChecked(tx)
}

// EncodeChecked is Encode for a transaction that Check has just accepted
// (a store write checks its transaction first, to refuse it before
// anything else, then encodes it): it does not check it again, Check
// parsing every document, but still refuses an encoding over MaxPayload.
// Given a transaction that Check refuses, it returns an error or a
// payload that every node skips (store.SkipDecode): it checks the deletes
// (cheap, and their encoding drops what Check refuses them for carrying),
// and Decode refuses the rest.
func EncodeChecked(tx Transaction) ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, Magic, Version)
	b = binary.AppendUvarint(b, uint64(len(tx.Ops)))
	for i := range tx.Ops {
		if o := &tx.Ops[i]; o.Kind != OpPutTrait {
			if err := o.Check(); err != nil {
				return nil, fmt.Errorf("store: encode: op %d: %w", i, err)
			}
		}
		b = appendOp(b, &tx.Ops[i])
	}
	if len(b) > MaxPayload {
		return nil, fmt.Errorf("store: encode: %d bytes, over %d: %w", len(b), MaxPayload, ErrTooLarge)
	}
	return b, nil
}

func appendOp(b []byte, o *Op) []byte {
	b = append(b, byte(o.Kind))
	b = append(b, o.Entity[:]...)
	switch o.Kind {
	case OpPutTrait:
		b = appendString(b, string(o.Trait.ID))
		b = appendString(b, o.Trait.Type)
		b = appendString(b, string(o.Trait.Doc))
		b = appendTime(b, o.Trait.Created)
		b = appendTime(b, o.Trait.Modified)
	case OpDeleteTrait:
		b = appendString(b, string(o.Trait.ID))
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// The times a trait may carry: years 1 to 9999, UTC.
const (
	minUnix = -62135596800 // 0001-01-01T00:00:00Z, the zero time.Time
	maxUnix = 253402300799 // 9999-12-31T23:59:59Z
)

func checkTime(t time.Time) error {
	if s := t.Unix(); s < minUnix || s > maxUnix {
		return fmt.Errorf("%s is outside years 1 to 9999: %w", t, ErrMalformed)
	}
	return nil
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// Decode parses a payload made by Encode: one transaction (a batch's
// transactions are decoded one by one, after Split). It accepts only the canonical
// encoding (minimal varints, no trailing bytes), so what it returns
// re-encodes to the same bytes; it checks every length and count against
// its cap before allocating for it, and allocates only as input is
// consumed. Every error wraps ErrMalformed, ErrTooLarge or ErrVersion.
func Decode(p []byte) (Transaction, error) {
	tx, err := decode(p)
	if err != nil {
		return Transaction{}, fmt.Errorf("store: decode: %w", err)
	}
	return tx, nil
}

func decode(p []byte) (Transaction, error) {
	if len(p) > MaxPayload {
		return Transaction{}, fmt.Errorf("%d bytes, over %d: %w", len(p), MaxPayload, ErrTooLarge)
	}
	if len(p) < 2 || p[0] != Magic {
		return Transaction{}, fmt.Errorf("no magic byte: %w", ErrMalformed)
	}
	if p[1] == BatchVersion {
		return Transaction{}, fmt.Errorf("a batch of transactions, not one (Split it): %w", ErrMalformed)
	}
	if p[1] != Version {
		return Transaction{}, fmt.Errorf("version %d: %w", p[1], ErrVersion)
	}
	d := decoder{b: p[2:]}
	n, err := d.uvarint()
	if err != nil {
		return Transaction{}, fmt.Errorf("op count: %w", err)
	}
	if n == 0 {
		return Transaction{}, fmt.Errorf("empty transaction: %w", ErrMalformed)
	}
	if n > MaxOps {
		return Transaction{}, fmt.Errorf("%d operations, over %d: %w", n, MaxOps, ErrTooLarge)
	}
	var tx Transaction
	for i := range int(n) {
		o, err := d.op()
		if err != nil {
			return Transaction{}, fmt.Errorf("op %d: %w", i, err)
		}
		tx.Ops = append(tx.Ops, o)
	}
	if len(d.b) != 0 {
		return Transaction{}, fmt.Errorf("%d trailing bytes: %w", len(d.b), ErrMalformed)
	}
	if err := tx.Check(); err != nil {
		return Transaction{}, err
	}
	return tx, nil
}

type decoder struct{ b []byte }

func (d *decoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		return 0, fmt.Errorf("bad varint: %w", ErrMalformed)
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		return 0, fmt.Errorf("non-minimal varint: %w", ErrMalformed)
	}
	d.b = d.b[n:]
	return v, nil
}

func (d *decoder) varint() (int64, error) {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		return 0, fmt.Errorf("bad varint: %w", ErrMalformed)
	}
	if n != len(binary.AppendVarint(nil, v)) {
		return 0, fmt.Errorf("non-minimal varint: %w", ErrMalformed)
	}
	d.b = d.b[n:]
	return v, nil
}

// bytes reads a length-prefixed field of at most max bytes.
func (d *decoder) bytes(what string, max int) ([]byte, error) {
	n, err := d.uvarint()
	if err != nil {
		return nil, fmt.Errorf("%s length: %w", what, err)
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%s of %d bytes, over %d: %w", what, n, max, ErrTooLarge)
	}
	if n > uint64(len(d.b)) {
		return nil, fmt.Errorf("%s: truncated: %w", what, ErrMalformed)
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v, nil
}

func (d *decoder) time(what string) (time.Time, error) {
	s, err := d.varint()
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", what, err)
	}
	ns, err := d.uvarint()
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", what, err)
	}
	if s < minUnix || s > maxUnix {
		return time.Time{}, fmt.Errorf("%s: %d seconds, outside years 1 to 9999: %w", what, s, ErrMalformed)
	}
	if ns >= 1e9 {
		return time.Time{}, fmt.Errorf("%s: %d nanoseconds: %w", what, ns, ErrMalformed)
	}
	return time.Unix(s, int64(ns)).UTC(), nil
}

func (d *decoder) op() (Op, error) {
	if len(d.b) < 1+len(EntityID{}) {
		return Op{}, fmt.Errorf("truncated: %w", ErrMalformed)
	}
	o := Op{Kind: OpKind(d.b[0])}
	copy(o.Entity[:], d.b[1:17])
	d.b = d.b[17:]
	switch o.Kind {
	case OpPutTrait:
		id, err := d.bytes("trait id", MaxTraitID)
		if err != nil {
			return Op{}, err
		}
		typ, err := d.bytes("type", MaxType)
		if err != nil {
			return Op{}, err
		}
		doc, err := d.bytes("document", MaxDoc)
		if err != nil {
			return Op{}, err
		}
		o.Trait.ID, o.Trait.Type = TraitID(id), string(typ)
		o.Trait.Doc = json.RawMessage(append([]byte(nil), doc...))
		if o.Trait.Created, err = d.time("created"); err != nil {
			return Op{}, err
		}
		if o.Trait.Modified, err = d.time("modified"); err != nil {
			return Op{}, err
		}
	case OpDeleteTrait:
		id, err := d.bytes("trait id", MaxTraitID)
		if err != nil {
			return Op{}, err
		}
		o.Trait.ID = TraitID(id)
	case OpDeleteEntity:
	default:
		return Op{}, fmt.Errorf("unknown operation %d: %w", uint8(o.Kind), ErrMalformed)
	}
	return o, nil
}

// IsMutation reports whether a chain payload is the store's: the magic
// byte, then a version byte (any version below 0x80, so that a newer
// encoding is recognised, and skipped as such, by an older node). Other
// payloads on the chain (`exopeer chain append TEXT`) are not the store's;
// a text that starts with the UTF-8 lead byte 0xE5 has a continuation byte
// (0x80 to 0xBF) second, so it is not taken for one.
func IsMutation(p []byte) bool { return len(p) >= 2 && p[0] == Magic && p[1] < 0x80 }
