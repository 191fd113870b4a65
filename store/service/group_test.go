package service

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/exopeer/exopeer/store"
)

// TestGroup: group merges consecutive writes into one transaction while
// it stays within store.MaxOps operations and store.MaxPayload bytes and
// no two writes touch one entity; each payload decodes to the operations
// of its writes, in order.
func TestGroup(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(t *testing.T, entity byte, ops int, docBytes int) *write {
		t.Helper()
		var e store.EntityID
		e[15] = entity
		tx := store.Transaction{}
		for i := range ops {
			doc, _ := json.Marshal(strings.Repeat("x", docBytes))
			tx.Ops = append(tx.Ops, store.PutTrait(e, store.Trait{Type: "x.t", ID: store.TraitID(fmt.Sprint("t", i)), Doc: doc, Created: at, Modified: at}))
		}
		p, err := store.Encode(tx)
		if err != nil {
			t.Fatal(err)
		}
		return &write{e: e, p: p, ops: ops}
	}
	big := store.MaxDoc - 2 // one trait's document at its largest
	for _, tc := range []struct {
		name   string
		writes func(t *testing.T) []*write
		want   []int // writes per payload
	}{
		{"one", func(t *testing.T) []*write { return []*write{mk(t, 1, 1, 10)} }, []int{1}},
		{"distinct entities", func(t *testing.T) []*write {
			return []*write{mk(t, 1, 1, 10), mk(t, 2, 3, 10), mk(t, 3, 1, 10)}
		}, []int{3}},
		{"one entity twice", func(t *testing.T) []*write {
			return []*write{mk(t, 1, 1, 10), mk(t, 2, 1, 10), mk(t, 1, 1, 20), mk(t, 3, 1, 10)}
		}, []int{2, 2}},
		{"operations", func(t *testing.T) []*write {
			return []*write{mk(t, 1, 600, 0), mk(t, 2, 400, 0), mk(t, 3, 1, 0)}
		}, []int{2, 1}},
		{"bytes", func(t *testing.T) []*write {
			var ws []*write
			for i := range 5 {
				ws = append(ws, mk(t, byte(i+1), 1, big))
			}
			return ws
		}, []int{3, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := tc.writes(t)
			payloads, groups := group(ws)
			var got []int
			for _, g := range groups {
				got = append(got, len(g))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("writes per payload (-want +got):\n%s", diff)
			}
			next := 0
			for i, p := range payloads {
				if len(p) > store.MaxPayload {
					t.Errorf("payload %d: %d bytes, over %d", i, len(p), store.MaxPayload)
				}
				tx, err := store.Decode(p)
				if err != nil {
					t.Fatalf("payload %d: %v", i, err)
				}
				var want []store.Op
				for _, w := range groups[i] {
					if w != ws[next] {
						t.Fatalf("payload %d: writes out of order", i)
					}
					next++
					wtx, err := store.Decode(w.p)
					if err != nil {
						t.Fatal(err)
					}
					want = append(want, wtx.Ops...)
				}
				if diff := cmp.Diff(want, tx.Ops); diff != "" {
					t.Errorf("payload %d operations (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}
