package service

import (
	"testing"
	"time"

	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/index"
)

// TestGroupSkipAlone: writes merged into one entry must behave, on every
// device of the cell, as if committed one by one. A device whose
// registry refuses one write's document (a type it has a schema for and
// the writer has not, or another version of it) skips that write; it
// must not skip the writes merged with it. An entry's transaction is
// checked and skipped whole, so today the other writes are lost there.
func TestGroupSkipAlone(t *testing.T) {
	t.Skip("defect: a merged entry is skipped whole by an index whose schema refuses one of its writes: the writes merged with it are lost on that device (design: a batch encoding with one transaction per write, each checked and skipped alone)")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(entity byte, typ, doc string) *write {
		var e store.EntityID
		e[15] = entity
		tx := store.Transaction{Ops: []store.Op{store.PutTrait(e, store.Trait{Type: typ, ID: store.TraitID(typ), Doc: []byte(doc), Created: at, Modified: at})}}
		p, err := store.Encode(tx)
		if err != nil {
			t.Fatal(err)
		}
		return &write{e: e, p: p, ops: 1}
	}
	// The writer knows no schema of x.task: it takes any due.
	ws := []*write{mk(1, "x.task", `{"due":"tomorrow"}`), mk(2, "exo.note", `{"body":"kept"}`)}
	payloads, groups := group(ws)
	if len(payloads) != 1 || len(groups[0]) != 2 {
		t.Fatalf("%d payloads, want the two writes in one", len(payloads))
	}
	// Another device of the cell has x.task's schema: due is a time.
	reg := store.NewRegistry()
	for _, s := range []store.Schema{{Type: "x.task", Fields: []store.Field{{Name: "due", Kind: store.Time}}}} {
		if err := reg.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	ix, err := index.Open(t.TempDir(), reg, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if _, err := ix.Apply(t.Context(), []index.Arrival{{Index: 0, CID: []byte("c0"), Pos: store.Pos{Clock: 1, Key: "k"}, Payload: payloads[0]}}); err != nil {
		t.Fatal(err)
	}
	var note store.EntityID
	note[15] = 2
	if _, err := ix.Get(t.Context(), note, nil); err != nil {
		t.Errorf("the note merged with a write this device's schema refuses: %v, want it applied as alone", err)
	}
}
