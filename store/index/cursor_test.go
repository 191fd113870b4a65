package index

import (
	"errors"
	"testing"

	"github.com/exopeer/exopeer/store"
	"github.com/google/go-cmp/cmp"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, k := range []any{nil, -1.5, "open", []byte{1, 2, 3}} {
		c := cursor{fp: [8]byte{1, 2}, entity: eid(3), key: k}
		got, err := decodeCursor(c.encode())
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(c, got, cmp.AllowUnexported(cursor{})) {
			t.Fatalf("round trip of %v: %+v", k, got)
		}
	}
}

// FuzzCursor: any text either decodes to a cursor that re-encodes to a
// cursor decoding the same, or is refused with store.ErrQuery; never a
// panic; and a query given it as After answers or refuses it cleanly.
func FuzzCursor(f *testing.F) {
	for _, k := range []any{nil, 2.0, "work", timeKey(t0)} {
		f.Add(cursor{entity: eid(1), key: k}.encode())
	}
	f.Add("")
	f.Add("AQ")
	ix := openIndex(f, f.TempDir(), testRegistry(f))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			if !errors.Is(err, store.ErrQuery) {
				t.Fatalf("decode %q: %v, not ErrQuery", s, err)
			}
			return
		}
		again, err := decodeCursor(c.encode())
		if err != nil || !cmp.Equal(c, again, cmp.AllowUnexported(cursor{})) {
			t.Fatalf("re-encoding %q: %+v, %v", s, again, err)
		}
		// With a query's own fingerprint, the cursor reaches SQL.
		for _, q := range []store.Query{{Type: "test.task", Order: "prio"}, {Type: "exo.note"}, {Type: "test.task", Order: "status", Desc: true}} {
			p, err := ix.compile(q)
			if err != nil {
				t.Fatal(err)
			}
			c.fp = p.fp
			q.After = c.encode()
			if _, err := ix.Query(t.Context(), q); err != nil && !errors.Is(err, store.ErrQuery) {
				t.Fatalf("query after %+v: %v", c, err)
			}
		}
	})
}
