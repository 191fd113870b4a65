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
// must not skip the writes committed with it. A transaction is checked
// and skipped whole, so each write is a transaction of its own, in one
// entry or several.
func TestGroupSkipAlone(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(entity byte, typ, doc string) *write {
		var e store.EntityID
		e[15] = entity
		tx := store.Transaction{Ops: []store.Op{store.PutTrait(e, store.Trait{Type: typ, ID: store.TraitID(typ), Doc: []byte(doc), Created: at, Modified: at})}}
		p, err := store.Encode(tx)
		if err != nil {
			t.Fatal(err)
		}
		return &write{e: e, p: p}
	}
	// The writer knows no schema of x.task: it takes any due.
	ws := []*write{mk(1, "x.task", `{"due":"tomorrow"}`), mk(2, "exo.note", `{"body":"kept"}`)}
	ps := entries(ws)
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
	var as []index.Arrival
	for i, p := range ps {
		as = append(as, index.Arrival{Index: uint64(i), CID: []byte{'c', byte(i)}, Pos: store.Pos{Clock: uint64(i + 1), Key: "k"}, Payload: p})
	}
	if _, err := ix.Apply(t.Context(), as); err != nil {
		t.Fatal(err)
	}
	var note store.EntityID
	note[15] = 2
	if _, err := ix.Get(t.Context(), note, nil); err != nil {
		t.Errorf("the note merged with a write this device's schema refuses: %v, want it applied as alone", err)
	}
}
