package service

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/store"
)

// TestGroup: entries puts a commit's writes in as few entries as the
// bounds allow (store.MaxPayload bytes, store.MaxBatch transactions), in
// order, each write's encoding unchanged as its transaction (an index
// checks and skips each transaction alone: TestGroupSkipAlone); an entry
// of one write is that write's own encoding.
func TestGroup(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(n int, doc string) []*write {
		var ws []*write
		for i := range n {
			var e store.EntityID
			e[15] = byte(i%3 + 1) // entities written twice too
			tx := store.Transaction{Ops: []store.Op{store.PutTrait(e, store.Trait{Type: "x.t", ID: store.TraitID(fmt.Sprint("t", i)), Doc: []byte(doc), Created: at, Modified: at})}}
			p, err := store.Encode(tx)
			if err != nil {
				t.Fatal(err)
			}
			ws = append(ws, &write{e: e, p: p})
		}
		return ws
	}
	big := `"` + strings.Repeat("a", store.MaxDoc-2) + `"`
	for _, tt := range []struct {
		name string
		ws   []*write
		want []int // the writes in each entry
	}{
		{"one", mk(1, `"x"`), []int{1}},
		{"five", mk(5, `"x"`), []int{5}},
		{"bytes", mk(10, big), []int{3, 3, 3, 1}},
		{"count", mk(store.MaxBatch+2, `"x"`), []int{store.MaxBatch, 2}},
		{"count and one", mk(store.MaxBatch+1, `"x"`), []int{store.MaxBatch, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps := entries(tt.ws)
			if len(ps) != len(tt.want) {
				t.Fatalf("%d entries, want %d", len(ps), len(tt.want))
			}
			w := 0
			for i, p := range ps {
				if len(p) > store.MaxPayload {
					t.Errorf("entry %d of %d bytes, over %d", i, len(p), store.MaxPayload)
				}
				parts, err := store.Split(p)
				if err != nil {
					t.Fatalf("entry %d: %v", i, err)
				}
				if len(parts) != tt.want[i] {
					t.Fatalf("entry %d holds %d writes, want %d", i, len(parts), tt.want[i])
				}
				if len(parts) == 1 && !bytes.Equal(p, tt.ws[w].p) {
					t.Errorf("entry %d of one write is not its own encoding", i)
				}
				for j, part := range parts {
					if !bytes.Equal(part, tt.ws[w].p) || tt.ws[w].ent != i || tt.ws[w].tx != j {
						t.Fatalf("entry %d transaction %d: write %d (at %d.%d), want it there, its encoding unchanged", i, j, w, tt.ws[w].ent, tt.ws[w].tx)
					}
					w++
				}
			}
		})
	}
}
