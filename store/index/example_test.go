package index_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/index"
)

// Example opens an index, applies two chain entries (a note, then an
// edit of it) and searches it.
func Example() {
	dir, err := os.MkdirTemp("", "index-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ix, err := index.Open(dir, store.NewRegistry(), index.Options{})
	if err != nil {
		panic(err)
	}
	defer ix.Close()
	ctx := context.Background()

	id := store.EntityID{1}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	put := func(doc string) []byte {
		p, err := store.Encode(store.Transaction{Ops: []store.Op{store.PutTrait(id, store.Trait{
			Type: "exo.note", ID: "exo.note", Doc: []byte(doc), Created: at, Modified: at})}})
		if err != nil {
			panic(err)
		}
		return p
	}
	// Arrival order is not chain order: the edit (clock 2) arrives first.
	skips, err := ix.Apply(ctx, []index.Arrival{
		{Index: 0, CID: []byte("b"), Pos: store.Pos{Clock: 2, Key: "b"}, Payload: put(`{"title":"Groceries","body":"milk and eggs","tags":["home"]}`)},
		{Index: 1, CID: []byte("a"), Pos: store.Pos{Clock: 1, Key: "a"}, Payload: put(`{"body":"milk"}`)},
	})
	if err != nil || len(skips) > 0 {
		panic(fmt.Sprint(skips, err))
	}
	page, err := ix.Query(ctx, store.Query{Type: "exo.note", Match: "eggs",
		Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "home"}}})
	if err != nil {
		panic(err)
	}
	for _, h := range page.Hits {
		fmt.Println(h.Entity.ID, string(h.Entity.Traits[0].Doc))
	}
	cp, _ := ix.Checkpoint(ctx)
	fmt.Println("next arrival:", cp.Next)
	// Output:
	// 01000000000000000000000000000000 {"title":"Groceries","body":"milk and eggs","tags":["home"]}
	// next arrival: 2
}
