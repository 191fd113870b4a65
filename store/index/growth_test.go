package index

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/store"
)

// TestFirstsOneEntry: one batch entry of store.MaxBatch transactions, each
// a put of one trait with a later Created than the last (a device's puts
// committed together, Put writing now offline), keeps one put in the
// trait's firsts, not one per transaction: no other entry sorts between
// two operations of one entry, so a delete leaves all of them or none,
// and the first of them is the earliest while any is. Kept apart, the
// k-th put rewrites a column of k places: the entry costs O(k²) bytes
// (about 75 bytes a place, 40 MB for one entry of 1024).
func TestFirstsOneEntry(t *testing.T) {
	e := eid(1)
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	key := strings.Repeat("b", 59) // a CID's length, about
	txs := make([][]byte, store.MaxBatch)
	for i := range txs {
		doc, _ := json.Marshal(map[string]any{"body": "x"})
		c := t0.Add(time.Duration(i) * time.Second)
		txs[i] = mustEncode(t, store.PutTrait(e, store.Trait{Type: "exo.note", ID: "exo.note", Doc: doc, Created: c, Modified: c}))
	}
	p, err := store.EncodeBatch(txs)
	if err != nil {
		t.Fatal(err)
	}
	reg := testRegistry(t)
	s := store.NewState(reg)
	if err := s.Apply(store.Pos{Clock: 1, Key: key}, p); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(e); len(got.Traits) != 1 || !got.Traits[0].Created.Equal(t0) {
		t.Fatalf("State: %+v, want Created %v", got, t0)
	}
	if n := len(s.Canonical()); n > 4<<10 {
		t.Errorf("State.Canonical of one trait: %d bytes", n)
	}
	ix := openIndex(t, t.TempDir(), reg)
	applyAll(t, ix, rand.New(rand.NewPCG(1, 2)), 0, []entry{{store.Pos{Clock: 1, Key: key}, p}}, 1)
	var b []byte
	if err := ix.db.QueryRowContext(t.Context(), `SELECT firsts FROM traits`).Scan(&b); err != nil {
		t.Fatal(err)
	}
	fs, err := decodeFirsts(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs.puts) != 1 || !fs.created().Equal(t0) {
		t.Fatalf("firsts of one entry: %d puts (%d bytes), want 1 created %v", len(fs.puts), len(b), t0)
	}
}
