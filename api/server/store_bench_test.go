package server_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// BenchmarkStoreOverTheAPI measures the control API's round trips on a
// node holding 1,000 notes: a put (one chain entry on disk, indexed), a
// get, a query by tag (a page of 10) and a full-text query, each from the
// client's call to its decoded answer.
func BenchmarkStoreOverTheAPI(b *testing.B) {
	dir, _, _ := nodetest.Serve(b)
	c, err := client.Dial(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if _, err := c.CellCreate(ctx, api.CellCreateRequest{Name: "home"}); err != nil {
		b.Fatal(err)
	}
	doc := func(i int) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"title": "note %d", "body": "word%d and some text to search", "tags": ["t%d"]}`, i, i%100, i%10))
	}
	var id string
	for i := range 1000 {
		w, err := c.StorePut(ctx, api.StorePutRequest{Traits: []api.StoreTraitInput{{Type: "exo.note", Doc: doc(i)}}})
		if err != nil {
			b.Fatal(err)
		}
		id = w.Entity
	}
	b.Run("put", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := c.StorePut(ctx, api.StorePutRequest{Entity: id, Traits: []api.StoreTraitInput{{Type: "exo.note", Doc: doc(i)}}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.StoreGet(ctx, id, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("query-where", func(b *testing.B) {
		q := api.StoreQuery{Type: "exo.note", Where: []api.StorePredicate{{Field: "tags", Op: "=", Value: "t3"}}, Limit: 10}
		for b.Loop() {
			if p, err := c.StoreQuery(ctx, q); err != nil || len(p.Hits) != 10 {
				b.Fatal(len(p.Hits), err)
			}
		}
	})
	b.Run("query-match", func(b *testing.B) {
		q := api.StoreQuery{Match: "word42", Limit: 10}
		for b.Loop() {
			if p, err := c.StoreQuery(ctx, q); err != nil || len(p.Hits) != 10 {
				b.Fatal(len(p.Hits), err)
			}
		}
	})
}
