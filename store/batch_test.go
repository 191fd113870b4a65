package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBatchRoundTrip(t *testing.T) {
	a := enc(t, PutTrait(testID(1), noteTrait("n", "one")))
	b := enc(t, DeleteTrait(testID(1), "m"), DeleteEntity(testID(2)))
	p, err := EncodeBatch([][]byte{a, b, a})
	if err != nil {
		t.Fatal(err)
	}
	if !IsMutation(p) || p[1] != BatchVersion {
		t.Fatalf("batch %x: not a version 2 mutation", p[:2])
	}
	if n := 2 + 1 + 3*1 + 2*len(a) + len(b); len(p) != n || len(p) > BatchHeader+2*BatchPart(len(a))+BatchPart(len(b)) {
		t.Fatalf("batch of %d bytes, want %d", len(p), n)
	}
	parts, err := Split(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]byte{a, b, a}, parts); diff != "" {
		t.Fatalf("Split (-want +got):\n%s", diff)
	}
	if one, err := Split(a); err != nil || len(one) != 1 || !bytes.Equal(one[0], a) {
		t.Fatalf("Split of one transaction = %x, %v", one, err)
	}
	if _, err := Decode(p); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Decode of a batch = %v, want ErrMalformed", err)
	}
}

func TestEncodeBatchRefuses(t *testing.T) {
	a := enc(t, DeleteEntity(testID(1)))
	full := json.RawMessage(`"` + strings.Repeat("a", MaxDoc-2) + `"`)
	var big [][]byte
	for range 5 {
		big = append(big, enc(t, PutTrait(testID(1), Trait{Type: "x", ID: "t", Doc: full})))
	}
	nested, err := EncodeBatch([][]byte{a, a})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		txs  [][]byte
		want error
	}{
		{"none", nil, ErrMalformed},
		{"one", [][]byte{a}, ErrMalformed},
		{"over MaxBatch", make([][]byte, MaxBatch+1), ErrTooLarge},
		{"not a transaction", [][]byte{a, []byte("text")}, ErrMalformed},
		{"nested", [][]byte{a, nested}, ErrMalformed},
		{"over MaxPayload", big, ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := EncodeBatch(tt.txs); !errors.Is(err, tt.want) {
				t.Fatalf("EncodeBatch = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSplitRefuses(t *testing.T) {
	a := enc(t, DeleteEntity(testID(1)))
	good, err := EncodeBatch([][]byte{a, a})
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(n uint64) []byte { return binary.AppendUvarint([]byte{Magic, BatchVersion}, n) }
	part := func(b []byte, p []byte) []byte { return append(binary.AppendUvarint(b, uint64(len(p))), p...) }
	for _, tt := range []struct {
		name string
		p    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"no magic", []byte("xx"), ErrMalformed},
		{"version 3", []byte{Magic, 3, 2}, ErrVersion},
		{"no count", []byte{Magic, BatchVersion}, ErrMalformed},
		{"count 0", hdr(0), ErrMalformed},
		{"count 1", part(hdr(1), a), ErrMalformed},
		{"count over MaxBatch", hdr(MaxBatch + 1), ErrTooLarge},
		{"count over the bytes", part(part(hdr(3), a), a), ErrMalformed},
		{"non-minimal count", append([]byte{Magic, BatchVersion, 0x82, 0x00}, good[3:]...), ErrMalformed},
		{"length past the end", append(hdr(2), 0x7f, 1, 2, 3, 4, 5), ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), ErrMalformed},
		{"nested batch", part(part(hdr(2), a), good), ErrMalformed},
		{"not a transaction", part(part(hdr(2), a), []byte("hello")), ErrMalformed},
		{"over MaxPayload", append(hdr(2), make([]byte, MaxPayload)...), ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Split(tt.p); !errors.Is(err, tt.want) {
				t.Fatalf("Split = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestStateBatchSkipAlone: a transaction of a batch that does not decode,
// or whose document the schema refuses, is skipped alone; the others
// apply, in their order, each after the one before it.
func TestStateBatchSkipAlone(t *testing.T) {
	e := testID(1)
	bad := noteTrait("b", "")
	bad.Doc = json.RawMessage(`{"title":"no body"}`)
	p, err := EncodeBatch([][]byte{
		enc(t, PutTrait(e, noteTrait("a", "first"))),
		enc(t, PutTrait(e, bad)),
		{Magic, Version, 1, 9},
		enc(t, PutTrait(e, noteTrait("a", "second")), PutTrait(e, noteTrait("c", "kept"))),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := NewState(NewRegistry())
	err = s.Apply(pos(1), p)
	var fe *FieldError
	if !errors.Is(err, ErrSkipped) || !errors.As(err, &fe) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("Apply = %v, want ErrSkipped for a schema and a decode", err)
	}
	if got, want := bodies(s, e), []string{"a=second", "c=kept"}; !equalStrings(got, want) {
		t.Fatalf("entity %v, want %v", got, want)
	}
	want := Stats{Applied: 2, Ops: 3, Skipped: map[string]int{SkipDecode: 1, SkipSchema: 1}}
	if diff := cmp.Diff(want, s.Stats()); diff != "" {
		t.Fatalf("Stats (-want +got):\n%s", diff)
	}
	// The batch's state is that of one entry at its place holding the
	// valid transactions' operations in their order.
	one := NewState(NewRegistry())
	apply(t, one, entry{pos(1), enc(t, PutTrait(e, noteTrait("a", "first")), PutTrait(e, noteTrait("a", "second")), PutTrait(e, noteTrait("c", "kept")))})
	if got := bodies(one, e); !equalStrings(got, bodies(s, e)) {
		t.Fatalf("one entry: %v, batch: %v", got, bodies(s, e))
	}
	// A later entry wins over every transaction of the batch; an earlier
	// one over none.
	apply(t, s, entry{pos(2), enc(t, PutTrait(e, noteTrait("c", "later")))}, entry{Pos{Clock: 0, Key: "k"}, enc(t, PutTrait(e, noteTrait("a", "earlier")))})
	if got, want := bodies(s, e), []string{"a=second", "c=later"}; !equalStrings(got, want) {
		t.Fatalf("entity %v, want %v", got, want)
	}
}

func equalStrings(a, b []string) bool { return cmp.Equal(a, b) }
