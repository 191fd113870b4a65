package index

import (
	"errors"
	"fmt"
	"testing"

	"github.com/exopeer/exopeer/store"
	"github.com/google/go-cmp/cmp"
)

// FuzzApply: any payload (one transaction or a batch) at any position, after a few known entries, is
// applied, skipped or ignored (never an error, never a panic), as
// store.State does, and the entities it names then read the same from
// the index as from State. Each input starts from an emptied index
// (Reset), so that an input's outcome is its own.
func FuzzApply(f *testing.F) {
	enc := func(ops ...store.Op) []byte {
		p, err := store.Encode(store.Transaction{Ops: ops})
		if err != nil {
			f.Fatal(err)
		}
		return p
	}
	f.Add(uint64(5), enc(store.PutTrait(eid(1), note("t", "b", 1, "x"))))
	f.Add(uint64(3), enc(store.PutTrait(eid(1), task("t", `{"prio":1,"about":["`+eid(2).String()+`"]}`, 2)), store.DeleteTrait(eid(1), "exo.note")))
	f.Add(uint64(4), enc(store.DeleteEntity(eid(1)), store.PutTrait(eid(1), note("", "after", 3))))
	f.Add(uint64(1), []byte("text"))
	f.Add(uint64(2), []byte{store.Magic, store.Version, 1, 1})
	batch, err := store.EncodeBatch([][]byte{
		enc(store.PutTrait(eid(1), note("t", "b", 1, "x"))),
		{store.Magic, store.Version, 1, 1},
		enc(store.DeleteTrait(eid(1), "exo.note"), store.PutTrait(eid(2), task("t", `{"prio":"high"}`, 2))),
		enc(store.PutTrait(eid(1), note("", "after", 3))),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint64(6), batch)
	reg := testRegistry(f)
	ix := openIndex(f, f.TempDir(), reg)
	base := []Arrival{
		{Index: 0, Pos: store.Pos{Clock: 2, Key: "a"}, Payload: enc(store.PutTrait(eid(1), note("t", "b", 1, "x")), store.PutTrait(eid(2), note("", "c", 2)))},
		{Index: 1, Pos: store.Pos{Clock: 4, Key: "b"}, Payload: enc(store.DeleteTrait(eid(2), "t"), store.PutTrait(eid(1), task("t", `{"prio":3}`, 3)))},
		{Index: 2, Pos: store.Pos{Clock: 6, Key: "c"}, Payload: enc(store.DeleteEntity(eid(3)))},
	}
	f.Fuzz(func(t *testing.T, clock uint64, p []byte) {
		if err := ix.Reset(t.Context()); err != nil {
			t.Fatal(err)
		}
		s := store.NewState(reg)
		if _, err := ix.Apply(t.Context(), base); err != nil {
			t.Fatal(err)
		}
		for _, a := range base {
			if err := s.Apply(a.Pos, a.Payload); err != nil {
				t.Fatal(err)
			}
		}
		pos := store.Pos{Clock: clock % 8, Key: fmt.Sprint(clock)}
		skips, err := ix.Apply(t.Context(), []Arrival{{Index: 3, CID: []byte("c"), Pos: pos, Payload: p}})
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if !store.IsMutation(p) {
			if len(skips) != 0 {
				t.Fatalf("not a mutation, skipped: %+v", skips)
			}
			return
		}
		serr := s.Apply(pos, p)
		if (serr != nil) != (len(skips) > 0) {
			t.Fatalf("State: %v; index skips %+v", serr, skips)
		}
		parts, err := store.Split(p)
		if err != nil {
			return
		}
		var ops []store.Op
		for _, part := range parts {
			if tx, err := store.Decode(part); err == nil {
				ops = append(ops, tx.Ops...)
			}
		}
		for _, o := range ops {
			want, ok := s.Get(o.Entity)
			got, err := ix.Get(t.Context(), o.Entity, nil)
			if !ok {
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("%s: index has %+v, %v; State none", o.Entity, got, err)
				}
				continue
			}
			if diff := cmp.Diff(want, got); err != nil || diff != "" {
				t.Fatalf("%s: %v (-State +index):\n%s", o.Entity, err, diff)
			}
		}
	})
}
