package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testID(b byte) EntityID {
	var id EntityID
	id[0], id[15] = b, 0x5a
	return id
}

func noteTrait(id TraitID, body string) Trait {
	doc, _ := json.Marshal(map[string]any{"body": body, "tags": []string{"a"}})
	return Trait{
		Type: "exo.note", ID: id, Doc: doc,
		Created:  time.Date(2026, 11, 25, 22, 0, 0, 123456789, time.UTC),
		Modified: time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC),
	}
}

func TestEntityID(t *testing.T) {
	r := rand.NewChaCha8([32]byte{1})
	a, err := NewEntityID(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewEntityID(r)
	if a == b || a.IsZero() {
		t.Fatalf("ids %s and %s", a, b)
	}
	s := a.String()
	if len(s) != 32 || strings.ToLower(s) != s {
		t.Fatalf("String = %q", s)
	}
	for _, in := range []string{s, strings.ToUpper(s)} {
		got, err := ParseEntityID(in)
		if err != nil || got != a {
			t.Fatalf("ParseEntityID(%q) = %s, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", s[:31], s + "0", "zz" + s[2:]} {
		if _, err := ParseEntityID(bad); !errors.Is(err, ErrBadID) {
			t.Errorf("ParseEntityID(%q) = %v, want ErrBadID", bad, err)
		}
	}
	if _, err := NewEntityID(strings.NewReader("short")); err == nil {
		t.Error("NewEntityID from 5 bytes succeeded")
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		tx   Transaction
	}{
		{"put", Transaction{Ops: []Op{PutTrait(testID(1), noteTrait("n", "hello"))}}},
		{"delete trait", Transaction{Ops: []Op{DeleteTrait(testID(1), "n")}}},
		{"delete entity", Transaction{Ops: []Op{DeleteEntity(testID(2))}}},
		{"zero times and unknown type", Transaction{Ops: []Op{PutTrait(testID(3), Trait{Type: "x.y", ID: "t", Doc: json.RawMessage(`[1,2]`)})}}},
		{"batch", Transaction{Ops: []Op{
			PutTrait(testID(1), noteTrait("a", "one")),
			PutTrait(testID(1), noteTrait("b", "two")),
			DeleteTrait(testID(4), "c"),
			DeleteEntity(testID(5)),
		}}},
		{"largest document", Transaction{Ops: []Op{PutTrait(testID(1), Trait{Type: "x", ID: "t", Doc: json.RawMessage(`"` + strings.Repeat("a", MaxDoc-2) + `"`)})}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Encode(tt.tx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.tx, got); diff != "" {
				t.Fatalf("decode(encode(tx)) differs (-want +got):\n%s", diff)
			}
			again, err := Encode(got)
			if err != nil || !bytes.Equal(again, p) {
				t.Fatalf("re-encoding differs: %v", err)
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	big := json.RawMessage(`"` + strings.Repeat("a", MaxDoc-1) + `"`)
	full := json.RawMessage(`"` + strings.Repeat("a", MaxDoc-2) + `"`)
	ops := make([]Op, MaxOps+1)
	for i := range ops {
		ops[i] = DeleteEntity(testID(1))
	}
	tests := []struct {
		name string
		tx   Transaction
		want error
	}{
		{"empty", Transaction{}, ErrMalformed},
		{"too many ops", Transaction{Ops: ops}, ErrTooLarge},
		{"zero entity", Transaction{Ops: []Op{DeleteEntity(EntityID{})}}, ErrMalformed},
		{"document over cap", Transaction{Ops: []Op{PutTrait(testID(1), Trait{Type: "x", ID: "t", Doc: big})}}, ErrTooLarge},
		{"document not JSON", Transaction{Ops: []Op{PutTrait(testID(1), Trait{Type: "x", ID: "t", Doc: json.RawMessage(`{`)})}}, ErrMalformed},
		{"no document", Transaction{Ops: []Op{PutTrait(testID(1), Trait{Type: "x", ID: "t"})}}, ErrMalformed},
		{"no type", Transaction{Ops: []Op{PutTrait(testID(1), Trait{ID: "t", Doc: json.RawMessage(`1`)})}}, ErrMalformed},
		{"empty trait id", Transaction{Ops: []Op{DeleteTrait(testID(1), "")}}, ErrMalformed},
		{"long trait id", Transaction{Ops: []Op{DeleteTrait(testID(1), TraitID(strings.Repeat("t", MaxTraitID+1)))}}, ErrMalformed},
		{"bad UTF-8 type", Transaction{Ops: []Op{PutTrait(testID(1), Trait{Type: "\xff", ID: "t", Doc: json.RawMessage(`1`)})}}, ErrMalformed},
		{"year 10000", Transaction{Ops: []Op{PutTrait(testID(1), Trait{Type: "x", ID: "t", Doc: json.RawMessage(`1`), Created: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})}}, ErrMalformed},
		{"delete trait with a type", Transaction{Ops: []Op{{Kind: OpDeleteTrait, Entity: testID(1), Trait: Trait{ID: "t", Type: "x"}}}}, ErrMalformed},
		{"delete entity with a trait", Transaction{Ops: []Op{{Kind: OpDeleteEntity, Entity: testID(1), Trait: Trait{ID: "t"}}}}, ErrMalformed},
		{"unknown kind", Transaction{Ops: []Op{{Kind: 9, Entity: testID(1)}}}, ErrMalformed},
		{"over the payload cap", Transaction{Ops: []Op{
			PutTrait(testID(1), Trait{Type: "x", ID: "1", Doc: full}),
			PutTrait(testID(1), Trait{Type: "x", ID: "2", Doc: full}),
			PutTrait(testID(1), Trait{Type: "x", ID: "3", Doc: full}),
			PutTrait(testID(1), Trait{Type: "x", ID: "4", Doc: full}),
		}}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Encode(tt.tx); !errors.Is(err, tt.want) {
				t.Fatalf("Encode = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, err := Encode(Transaction{Ops: []Op{PutTrait(testID(1), noteTrait("n", "hi"))}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"bad magic", append([]byte{0}, good[1:]...), ErrMalformed},
		{"version 3", append([]byte{Magic, 3}, good[2:]...), ErrVersion},
		{"a batch (version 2: Split)", append([]byte{Magic, BatchVersion}, good[2:]...), ErrMalformed},
		{"zero ops", []byte{Magic, Version, 0}, ErrMalformed},
		{"op count over cap", []byte{Magic, Version, 0xe9, 0x07}, ErrTooLarge},
		{"non-minimal count", []byte{Magic, Version, 0x81, 0x00}, ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), ErrMalformed},
		{"document length over cap", append([]byte{Magic, Version, 1, byte(OpPutTrait)}, append(make([]byte, 16), 1, 't', 1, 'x', 0x81, 0x80, 0x04)...), ErrTooLarge},
		{"over the payload cap", make([]byte, MaxPayload+1), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.p); !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzDecodeMutation: Split and Decode never panic; a batch Split
// accepts re-encodes (EncodeBatch) to the same bytes; a transaction Decode
// accepts re-encodes to the same bytes and decodes to the same
// transaction.
func FuzzDecodeMutation(f *testing.F) {
	var seeds [][]byte
	for _, tx := range []Transaction{
		{Ops: []Op{PutTrait(testID(1), noteTrait("n", "hello"))}},
		{Ops: []Op{DeleteTrait(testID(1), "n"), DeleteEntity(testID(2))}},
		{Ops: []Op{PutTrait(testID(3), Trait{Type: "x", ID: "t", Doc: json.RawMessage(`{"a":[1,"b",null]}`)})}},
	} {
		p, err := Encode(tx)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
		seeds = append(seeds, p)
	}
	b, err := EncodeBatch(seeds)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, p []byte) {
		parts, err := Split(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrVersion) {
				t.Fatalf("Split error wraps no sentinel: %v", err)
			}
		} else if len(parts) > 1 {
			again, err := EncodeBatch(parts)
			if err != nil {
				t.Fatalf("EncodeBatch of a split batch: %v", err)
			}
			if !bytes.Equal(again, p) {
				t.Fatalf("re-encoding the batch differs:\n in %x\nout %x", p, again)
			}
			for _, part := range parts {
				checkDecode(t, part)
			}
			return
		}
		checkDecode(t, p)
	})
}

// checkDecode: what Decode accepts of p re-encodes to p and decodes to
// the same transaction.
func checkDecode(t *testing.T, p []byte) {
	t.Helper()
	tx, err := Decode(p)
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrVersion) {
			t.Fatalf("Decode error wraps no sentinel: %v", err)
		}
		return
	}
	again, err := Encode(tx)
	if err != nil {
		t.Fatalf("Encode of a decoded transaction: %v", err)
	}
	if !bytes.Equal(again, p) {
		t.Fatalf("re-encoding differs:\n in %x\nout %x", p, again)
	}
	tx2, err := Decode(again)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tx, tx2); diff != "" {
		t.Fatalf("decode(encode(x)) != x:\n%s", diff)
	}
}

func TestIsMutation(t *testing.T) {
	tx := Transaction{Ops: []Op{DeleteEntity(EntityID{1})}}
	p, err := Encode(tx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    []byte
		want bool
	}{
		{p, true},
		{[]byte{Magic, BatchVersion}, true}, // a batch
		{[]byte{Magic, 3}, true},            // a newer version: the store's, skipped when decoded
		{[]byte("圖書"), false},               // UTF-8 text whose first byte is 0xE5
		{[]byte("hello"), false},
		{[]byte{Magic}, false},
		{nil, false},
	} {
		if got := IsMutation(c.p); got != c.want {
			t.Errorf("IsMutation(%x) = %v, want %v", c.p, got, c.want)
		}
	}
}

// TestEncodeChecked: EncodeChecked, for a transaction Check accepted,
// gives Encode's bytes, and still refuses an encoding over MaxPayload.
func TestEncodeChecked(t *testing.T) {
	full := json.RawMessage(`"` + strings.Repeat("a", MaxDoc-2) + `"`)
	for _, tx := range []Transaction{
		{Ops: []Op{PutTrait(testID(1), noteTrait("n", "hello"))}},
		{Ops: []Op{PutTrait(testID(1), noteTrait("a", "one")), DeleteTrait(testID(4), "c"), DeleteEntity(testID(5))}},
	} {
		want, err := Encode(tx)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := EncodeChecked(tx); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("EncodeChecked = %x, %v; want %x", got, err, want)
		}
	}
	var over Transaction
	for i := range 4 {
		over.Ops = append(over.Ops, PutTrait(testID(1), Trait{Type: "x", ID: TraitID(fmt.Sprint(i)), Doc: full}))
	}
	if _, err := EncodeChecked(over); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("EncodeChecked over the payload cap: %v, want ErrTooLarge", err)
	}
}

// TestEncodeCheckedRefused: given a transaction that Check refuses,
// EncodeChecked refuses it or returns a payload that Decode refuses
// (every node skips it), as its doc says. A delete carrying a trait's
// fields was encoded without them, as a well-formed delete that every
// node applied.
func TestEncodeCheckedRefused(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		tx   Transaction
	}{
		{"empty", Transaction{}},
		{"zero entity", Transaction{Ops: []Op{DeleteEntity(EntityID{})}}},
		{"delete-entity with a trait id", Transaction{Ops: []Op{{Kind: OpDeleteEntity, Entity: testID(1), Trait: Trait{ID: "x"}}}}},
		{"delete-entity with a document", Transaction{Ops: []Op{{Kind: OpDeleteEntity, Entity: testID(1), Trait: Trait{Doc: json.RawMessage(`1`)}}}}},
		{"delete-trait with a type", Transaction{Ops: []Op{{Kind: OpDeleteTrait, Entity: testID(1), Trait: Trait{ID: "x", Type: "exo.note"}}}}},
		{"delete-trait with a time", Transaction{Ops: []Op{{Kind: OpDeleteTrait, Entity: testID(1), Trait: Trait{ID: "x", Modified: at}}}}},
		{"unknown kind", Transaction{Ops: []Op{{Kind: 9, Entity: testID(1)}}}},
		{"document not JSON", Transaction{Ops: []Op{PutTrait(testID(1), Trait{Type: "x", ID: "t", Doc: json.RawMessage(`{`), Created: at, Modified: at})}}},
		{"year 10000", Transaction{Ops: []Op{PutTrait(testID(1), Trait{Type: "x", ID: "t", Doc: json.RawMessage(`1`), Created: at.AddDate(8000, 0, 0), Modified: at})}}},
		{"no type", Transaction{Ops: []Op{PutTrait(testID(1), Trait{ID: "t", Doc: json.RawMessage(`1`), Created: at, Modified: at})}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.tx.Check() == nil {
				t.Fatal("Check accepts the case")
			}
			p, err := EncodeChecked(tt.tx)
			if err != nil {
				return
			}
			if tx, err := Decode(p); err == nil {
				t.Errorf("EncodeChecked gave a payload that decodes to %+v, applied by every node", tx)
			}
		})
	}
}
