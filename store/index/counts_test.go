package index

import (
	"testing"

	"github.com/exopeer/exopeer/store"
)

// TestCountsOverManyEntities: the live counts stay right when one Apply
// touches more entities than the writer caches.
func TestCountsOverManyEntities(t *testing.T) {
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	f := &feeder{t: t, ix: ix}
	const n = maxEnts + 904
	var as []Arrival
	for i := 0; i < n; i += store.MaxOps {
		var ops []store.Op
		for j := i; j < min(i+store.MaxOps, n); j++ {
			ops = append(ops, store.PutTrait(eid(j), note("", "b", 1)))
		}
		as = append(as, Arrival{Index: uint64(len(as)), Pos: store.Pos{Clock: uint64(len(as) + 1), Key: "k"}, Payload: f.payload(ops...)})
	}
	var ops []store.Op
	for j := range 900 {
		ops = append(ops, store.DeleteEntity(eid(j)), store.PutTrait(eid(n+j), note("", "c", 1)))
	}
	as = append(as, Arrival{Index: uint64(len(as)), Pos: store.Pos{Clock: 99, Key: "k"}, Payload: f.payload(ops[:store.MaxOps]...)},
		Arrival{Index: uint64(len(as) + 1), Pos: store.Pos{Clock: 100, Key: "k"}, Payload: f.payload(ops[store.MaxOps:]...)})
	if _, err := ix.Apply(t.Context(), as); err != nil {
		t.Fatal(err)
	}
	st, err := ix.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Entities != n || st.Traits != n {
		t.Fatalf("Stats %+v, want %d entities and traits", st, n)
	}
}
