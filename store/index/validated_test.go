package index

import (
	"errors"
	"testing"

	"github.com/exopeer/exopeer/store"
)

// TestApplyValidated: an arrival marked Validated is not validated again
// (its caller did it, against this registry); an arrival not marked is,
// and a document its schema refuses is skipped, with the writes after
// it applied. A document the registry refuses stands for "validated by
// someone else": were Apply to validate a marked arrival, it would skip
// it.
func TestApplyValidated(t *testing.T) {
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	bad := `{"title":"t","prio":"high"}` // prio is a number
	mk := func(i int, validated bool) Arrival {
		tm := t0
		p, err := store.Encode(store.Transaction{Ops: []store.Op{
			store.PutTrait(eid(i), store.Trait{Type: taskSchema.Type, ID: "task", Doc: []byte(bad), Created: tm, Modified: tm}),
		}})
		if err != nil {
			t.Fatal(err)
		}
		return Arrival{Index: uint64(i), CID: []byte{'c', byte(i)}, Pos: store.Pos{Clock: uint64(i + 1), Key: "k"}, Payload: p, Validated: validated}
	}
	skips, err := ix.Apply(t.Context(), []Arrival{mk(0, false), mk(1, true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(skips) != 1 || skips[0].Index != 0 || skips[0].Reason != store.SkipSchema {
		t.Errorf("skips = %+v, want arrival 0 skipped for its schema", skips)
	}
	if _, err := ix.Get(t.Context(), eid(0), nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of the unmarked refused document: %v, want ErrNotFound", err)
	}
	if _, err := ix.Get(t.Context(), eid(1), nil); err != nil {
		t.Errorf("Get of the marked document: %v, want it applied without validating it again", err)
	}
}
