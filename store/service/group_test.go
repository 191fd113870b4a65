package service

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/exopeer/exopeer/store"
)

// TestGroup: payloads makes each write a payload of its own, in order, its
// encoding unchanged (an index checks and skips a transaction whole:
// TestGroupSkipAlone).
func TestGroup(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ws []*write
	for i := range 5 {
		var e store.EntityID
		e[15] = byte(i%3 + 1) // entities written twice too
		tx := store.Transaction{Ops: []store.Op{store.PutTrait(e, store.Trait{Type: "x.t", ID: store.TraitID(fmt.Sprint("t", i)), Doc: []byte(`"x"`), Created: at, Modified: at})}}
		p, err := store.Encode(tx)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, &write{e: e, p: p})
	}
	ps := payloads(ws)
	if len(ps) != len(ws) {
		t.Fatalf("%d payloads of %d writes, want one each", len(ps), len(ws))
	}
	for i, w := range ws {
		if !bytes.Equal(ps[i], w.p) {
			t.Errorf("payload %d is not write %d's own", i, i)
		}
	}
}
