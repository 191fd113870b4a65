package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/exopeer/exopeer/store/internal/jsonscan"
)

// IndexKind says how a field is indexed.
type IndexKind uint8

// The index kinds.
const (
	// Keyword: a string matched whole (equality, prefix), e.g. a tag.
	Keyword IndexKind = iota + 1
	// Text: a string indexed for full-text search.
	Text
	// Number: a JSON number (equality, ranges, order).
	Number
	// Time: an RFC 3339 string (equality, ranges, order).
	Time
	// Reference: the ID of another entity (EntityID.String), for "entities
	// that point to X".
	Reference
)

func (k IndexKind) String() string {
	switch k {
	case Keyword:
		return "keyword"
	case Text:
		return "text"
	case Number:
		return "number"
	case Time:
		return "time"
	case Reference:
		return "reference"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Field is one indexed field of a trait type: a top-level member of the
// document's JSON object.
type Field struct {
	Name string
	Kind IndexKind
	// List: the value is a JSON array of values of Kind (e.g. tags).
	List bool
	// Required: a document without the field is refused.
	Required bool
	// Kept: the field is checked as the others (its kind, Required) but
	// not indexed: it gives no term and no text, and a query may neither
	// filter nor order by it (store.ErrQuery says it is kept). For members
	// a type must carry that nobody looks a trait up by: each indexed
	// field is a row and an index entry more in every write of the type.
	Kept bool
}

// Schema describes a trait type. Members of a document that are not among
// Fields are kept and not indexed.
type Schema struct {
	Type   string
	Fields []Field
}

// Registry holds the trait types a node knows. The zero Registry is empty
// and ready; it is not safe for concurrent use while Register runs (a node
// registers its types before it applies mutations, then only reads).
type Registry struct {
	types map[string]Schema
}

// NoteSchema is the schema of exo.note, the first entity type.
var NoteSchema = Schema{
	Type: "exo.note",
	Fields: []Field{
		{Name: "title", Kind: Text},
		{Name: "body", Kind: Text, Required: true},
		{Name: "tags", Kind: Keyword, List: true},
	},
}

// FileSchema is the schema of exo.file, a file of the cell (package
// blob/service writes them): its base name, its plaintext size in bytes,
// its media type, the capability that reads it (exo://blob/...), the peer
// ID of the node that added it and when. The blocks are not in the store:
// the capability names them.
var FileSchema = Schema{
	Type: "exo.file",
	Fields: []Field{
		{Name: "name", Kind: Text, Required: true},
		{Name: "size", Kind: Number, Required: true},
		{Name: "media", Kind: Keyword},
		{Name: "cap", Kind: Keyword, Required: true},
		{Name: "by", Kind: Keyword},
		{Name: "added", Kind: Time, Required: true},
	},
}

// ShareSchema is the schema of exo.share, a blob the cell shares with a
// contact (package blob/service writes them, one entity per contact and
// blob): the contact's cell key (64 hex digits), the blob's root CID, the
// peer ID of the device that shared it and when. Every device of the
// cell serves the blob's blocks it holds to the contact's devices.
var ShareSchema = Schema{
	Type: "exo.share",
	Fields: []Field{
		{Name: "contact", Kind: Keyword, Required: true},
		{Name: "root", Kind: Keyword, Required: true},
		{Name: "by", Kind: Keyword, Kept: true},
		{Name: "added", Kind: Time, Required: true, Kept: true},
	},
}

// ContactSchema is the schema of exo.contact, another cell this cell
// talks to (package contact/service writes them; contact has the
// encodings): the name this cell calls it by, its cell key (64 hex
// digits), the version of its device list held, the name on its card,
// the peer ID of the node that added it and when. Kept, not indexed:
// "devices", the signed device list (base64 of contact's wire form),
// "verified" (true once someone compared the safety number) and
// "receipts_off" (true: no read receipts go to the contact; absent:
// false).
var ContactSchema = Schema{
	Type: "exo.contact",
	Fields: []Field{
		{Name: "name", Kind: Keyword, Required: true},
		{Name: "cell", Kind: Keyword, Required: true},
		{Name: "version", Kind: Number, Required: true},
		{Name: "card_name", Kind: Text},
		{Name: "by", Kind: Keyword},
		{Name: "added", Kind: Time, Required: true},
	},
}

// DevicesSchema is the schema of exo.devices, the cell's own signed list
// of the devices that take messages (an admin writes it whenever the
// roster changes, so that every member can hand out the cell's card):
// the cell key (64 hex digits), the list's version (the roster's), the
// peer ID of the admin that signed it and when. Kept, not indexed:
// "list", the signed list (base64 of package contact's wire form), and
// "keys", the epochs whose mailbox keys the lists carried, since when
// (package contact/service).
var DevicesSchema = Schema{
	Type: "exo.devices",
	Fields: []Field{
		{Name: "cell", Kind: Keyword, Required: true},
		{Name: "version", Kind: Number, Required: true},
		{Name: "by", Kind: Keyword},
		{Name: "signed", Kind: Time},
	},
}

// MessageSchema is the schema of exo.message, one message of a
// conversation with a contact (package message/service writes them;
// message has the envelope): the conversation (the contact's cell key,
// 64 hex digits), the direction ("in" or "out"), the message ID (32 hex
// digits), the sender's cell key and device (peer ID), the sender's sent
// time and this cell's received time, the order key that sorts the
// conversation (message.OrderKey), the text, and the state
// (message/service/states.go: "sent": recorded, not yet acknowledged
// by the contact's cell; "stored": also left in a blind mailbox for
// the contact, still pending; "delivered": acknowledged, directly or by
// an ack in a blind mailbox, or, for a message in, recorded; "read":
// read by its recipient, told by a read receipt for a message out;
// "undeliverable": a pending record that makes no valid envelope). Its entity ID is
// derived from the sender's cell key and the message ID
// (message.EntityOf), so a message is one entity in each cell. Indexed:
// the conversation, the order, the state and the text (what the
// conversation, the inbox, the pending messages and a search look up);
// the others are Kept: checked, not indexed (a message is found by its
// entity ID, not by a query on its ID), since each indexed field costs
// every message a row and an index entry (a new message's index commit
// wrote 20-26 pages with ten indexed fields).
var MessageSchema = Schema{
	Type: "exo.message",
	Fields: []Field{
		{Name: "conversation", Kind: Keyword, Required: true},
		{Name: "direction", Kind: Keyword, Required: true, Kept: true},
		{Name: "id", Kind: Keyword, Required: true, Kept: true},
		{Name: "cell", Kind: Keyword, Required: true, Kept: true},
		{Name: "device", Kind: Keyword, Required: true, Kept: true},
		{Name: "sent", Kind: Time, Required: true, Kept: true},
		{Name: "received", Kind: Time, Kept: true},
		{Name: "order", Kind: Keyword, Required: true},
		{Name: "text", Kind: Text, Required: true},
		{Name: "state", Kind: Keyword, Required: true},
	},
}

// ReadSchema is the schema of exo.read, this cell's read marker of one
// conversation (package message/service writes them): the conversation
// (the contact's cell key, 64 hex digits), the order key read up to
// (Kept), and the state of the read receipt that says so ("sent": to
// be sent, the courier's; "delivered": acknowledged by the contact's
// cell; "off": read with receipts off for the contact, nothing to
// send). Its entity ID is derived from the conversation
// (message.ReadEntityOf): one marker per conversation, the same on
// every device of the cell. Indexed: the conversation and the state
// (what the courier looks up).
var ReadSchema = Schema{
	Type: "exo.read",
	Fields: []Field{
		{Name: "conversation", Kind: Keyword, Required: true},
		{Name: "upto", Kind: Keyword, Required: true, Kept: true},
		{Name: "state", Kind: Keyword, Required: true},
	},
}

// NewRegistry returns a registry holding the built-in types (exo.note,
// exo.file, exo.share, exo.contact, exo.devices, exo.message, exo.read). Built-in types live here, not with the parts that write
// them, so that every node (a store member indexing, a thin member
// checking its writes) knows the same types whatever parts it runs.
func NewRegistry() *Registry {
	r := &Registry{}
	for _, s := range []Schema{NoteSchema, FileSchema, ShareSchema, ContactSchema, DevicesSchema, MessageSchema, ReadSchema} {
		if err := r.Register(s); err != nil {
			panic(err) // the built-in schemas are valid
		}
	}
	return r
}

// ErrRegister is a schema that cannot be registered.
var ErrRegister = errors.New("store: bad schema")

// Register adds s. A type is registered once; field names are unique and
// non-empty; kinds are known.
func (r *Registry) Register(s Schema) error {
	if s.Type == "" || len(s.Type) > MaxType {
		return fmt.Errorf("type %q: must be 1 to %d bytes: %w", s.Type, MaxType, ErrRegister)
	}
	if _, ok := r.types[s.Type]; ok {
		return fmt.Errorf("type %q: already registered: %w", s.Type, ErrRegister)
	}
	seen := make(map[string]bool, len(s.Fields))
	for _, f := range s.Fields {
		if f.Name == "" || seen[f.Name] {
			return fmt.Errorf("type %q: field %q: empty or repeated: %w", s.Type, f.Name, ErrRegister)
		}
		if f.Kind < Keyword || f.Kind > Reference {
			return fmt.Errorf("type %q: field %q: %s: %w", s.Type, f.Name, f.Kind, ErrRegister)
		}
		seen[f.Name] = true
	}
	if r.types == nil {
		r.types = make(map[string]Schema)
	}
	s.Fields = slices.Clone(s.Fields)
	r.types[s.Type] = s
	return nil
}

// Lookup returns the schema of typ, if it is registered.
func (r *Registry) Lookup(typ string) (Schema, bool) {
	s, ok := r.types[typ]
	return s, ok
}

// Types returns the registered schemas, by type name.
func (r *Registry) Types() []Schema {
	out := make([]Schema, 0, len(r.types))
	for _, s := range r.types {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Schema) int { return cmpString(a.Type, b.Type) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// FieldError is a document refused by its schema. It names the type and
// the field's path (name, or name[i] for an element of a list) and wraps
// ErrSchema.
type FieldError struct {
	Type, Path, Reason string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("store: %s: %s", e.Type, e.Reason)
	}
	return fmt.Sprintf("store: %s: field %s: %s", e.Type, e.Path, e.Reason)
}

// Unwrap returns ErrSchema.
func (e *FieldError) Unwrap() error { return ErrSchema }

// Validate checks doc against the schema of typ: doc must be JSON, of at
// most MaxDoc bytes; for a registered type it must be an object whose
// fields have the JSON type of their kind, with every required field
// present (null counts as absent). A type that is not registered is
// accepted: its documents are kept, not indexed. A refusal is a
// *FieldError or wraps ErrTooLarge.
func (r *Registry) Validate(typ string, doc json.RawMessage) error {
	if len(doc) > MaxDoc {
		return fmt.Errorf("store: %s: document of %d bytes, over %d: %w", typ, len(doc), MaxDoc, ErrTooLarge)
	}
	if !json.Valid(doc) {
		return &FieldError{Type: typ, Reason: "document is not valid JSON"}
	}
	s, ok := r.types[typ]
	if !ok {
		return nil
	}
	// One pass over the document, which json.Valid accepted: its
	// top-level members, the last of a repeated name counting, as
	// decoding it into a map would (FuzzValidate checks that).
	ms, ok := jsonscan.Members(doc)
	if !ok {
		return &FieldError{Type: typ, Reason: "document is not a JSON object"}
	}
	for _, f := range s.Fields {
		v, ok := jsonscan.Lookup(ms, f.Name)
		if !ok || isNull(v) {
			if f.Required {
				return &FieldError{Type: typ, Path: f.Name, Reason: "required, missing"}
			}
			continue
		}
		if !f.List {
			if reason := checkValue(f.Kind, v); reason != "" {
				return &FieldError{Type: typ, Path: f.Name, Reason: reason}
			}
			continue
		}
		elems, ok := jsonscan.Elements(v)
		if !ok {
			return &FieldError{Type: typ, Path: f.Name, Reason: "want a list, got " + jsonType(v)}
		}
		for i, e := range elems {
			if reason := checkValue(f.Kind, e); reason != "" {
				return &FieldError{Type: typ, Path: f.Name + "[" + strconv.Itoa(i) + "]", Reason: reason}
			}
		}
	}
	return nil
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// checkValue returns why v is not a value of kind k, or "".
func checkValue(k IndexKind, v json.RawMessage) string {
	got := jsonType(v)
	switch k {
	case Number:
		if got != "number" {
			return "want a number, got " + got
		}
		return ""
	}
	if got != "string" {
		return "want a string (" + k.String() + "), got " + got
	}
	s, ok := jsonscan.String(v)
	if !ok {
		return "bad string"
	}
	return checkString(k, s)
}

// checkString returns why s is not a string of kind k, or "".
func checkString(k IndexKind, s string) string {
	switch k {
	case Time:
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Sprintf("want an RFC 3339 time, got %q", truncate(s))
		}
	case Reference:
		if _, err := ParseEntityID(s); err != nil {
			return fmt.Sprintf("want an entity id (32 hex digits), got %q", truncate(s))
		}
	}
	return ""
}

// jsonType names the JSON type of a valid JSON value.
func jsonType(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "list"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}
