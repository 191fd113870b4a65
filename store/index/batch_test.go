package index

import (
	"errors"
	"testing"

	"github.com/exopeer/exopeer/store"
	"github.com/google/go-cmp/cmp"
)

// TestApplyBatchSkipAlone: each transaction of a batch entry is decoded,
// checked and applied or skipped alone (a Skip naming it), in the
// batch's order, each after the one before it, as store.State does; a
// batch whose framing is wrong is skipped whole.
func TestApplyBatchSkipAlone(t *testing.T) {
	reg := testRegistry(t)
	ix := openIndex(t, t.TempDir(), reg)
	f := &feeder{t: t, ix: ix}
	bad := `{"title":"t","prio":"high"}` // prio is a number
	p, err := store.EncodeBatch([][]byte{
		f.payload(store.PutTrait(eid(1), note("", "first", 1))),
		f.payload(store.PutTrait(eid(2), task("task", bad, 1))),
		{store.Magic, store.Version, 1, 9},
		f.payload(store.PutTrait(eid(1), note("", "second", 2)), store.PutTrait(eid(3), task("task", `{"prio":1}`, 2))),
	})
	if err != nil {
		t.Fatal(err)
	}
	pos := store.Pos{Clock: 5, Key: "k"}
	skips := f.raw(pos, p)
	got := make([][2]any, len(skips))
	for i, s := range skips {
		if s.Index != 0 || !errors.Is(s.Err, store.ErrSkipped) {
			t.Errorf("skip %+v", s)
		}
		got[i] = [2]any{s.Tx, s.Reason}
	}
	if diff := cmp.Diff([][2]any{{1, store.SkipSchema}, {2, store.SkipDecode}}, got); diff != "" {
		t.Errorf("skips (-want +got):\n%s", diff)
	}
	s := store.NewState(reg)
	if err := s.Apply(pos, p); err == nil {
		t.Fatal("State skipped nothing")
	}
	for _, e := range []store.EntityID{eid(1), eid(2), eid(3)} {
		want, ok := s.Get(e)
		ent, err := ix.Get(t.Context(), e, nil)
		if !ok {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: index %+v, %v; State none", e, ent, err)
			}
			continue
		}
		if diff := cmp.Diff(want, ent); err != nil || diff != "" {
			t.Errorf("%s: %v (-State +index):\n%s", e, err, diff)
		}
	}
	if ent, err := ix.Get(t.Context(), eid(1), nil); err != nil || string(ent.Traits[0].Doc) != `{"body":"second"}` {
		t.Errorf("entity 1: %+v, %v, want the batch's later transaction's body", ent, err)
	}
	if _, err := ix.Get(t.Context(), eid(3), nil); err != nil {
		t.Errorf("entity 3, after the skipped transactions: %v", err)
	}
	st, err := ix.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped[store.SkipSchema] != 1 || st.Skipped[store.SkipDecode] != 1 {
		t.Errorf("Stats.Skipped = %v, want a schema and a decode skip", st.Skipped)
	}
	// A batch whose framing is wrong is skipped whole (Tx -1).
	skips = f.raw(store.Pos{Clock: 6, Key: "k"}, append(p, 0))
	if len(skips) != 1 || skips[0].Tx != -1 || skips[0].Reason != store.SkipDecode {
		t.Errorf("skips of a batch with a trailing byte = %+v, want one for the whole entry", skips)
	}
}
