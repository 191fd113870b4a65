package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/api"
)

// TestStorePageCutByItsEncodedSize: a page is cut by the size of its
// answer as encoded, not by the size of its documents: documents whose
// JSON grows on the way out (characters HTML-escaped to \u003c, arrays
// indented one element a line) still come in pages the client reads.
func TestStorePageCutByItsEncodedSize(t *testing.T) {
	_, c := storeNode(t)
	ctx := t.Context()
	docs := []json.RawMessage{
		json.RawMessage(`"` + strings.Repeat("<", 60<<10) + `"`),                           // 6 times as large
		json.RawMessage(`[` + strings.TrimSuffix(strings.Repeat("1,", 30<<10), ",") + `]`), // indented: 7 times
	}
	// A document crosses as written (its spacing aside): < stays <.
	w, err := c.StorePut(ctx, api.StorePutRequest{Traits: []api.StoreTraitInput{{Type: "exo.note", Doc: json.RawMessage(`{"body":"<b> & </b>"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := c.StoreGet(ctx, w.Entity, nil); err != nil || len(e.Traits) != 1 || string(e.Traits[0].Doc) != `{"body":"<b> & </b>"}` {
		t.Fatalf("get: %+v, %v; want the document as written", e, err)
	}
	if _, err := c.StoreDelete(ctx, w.Entity, nil); err != nil {
		t.Fatal(err)
	}
	const entities = 30 // of 4 traits: 7 MiB of documents, some 50 MiB as answered
	for i := range entities {
		ts := make([]api.StoreTraitInput, 4)
		for j := range ts {
			ts[j] = api.StoreTraitInput{Type: "app.big", ID: fmt.Sprint(j), Doc: docs[(i+j)%2]}
		}
		if _, err := c.StorePut(ctx, api.StorePutRequest{Traits: ts}); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	q := api.StoreQuery{Type: "", Limit: entities}
	seen := 0
	for pages := 0; pages < entities; pages++ {
		page, err := c.StoreQuery(ctx, q)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		seen += len(page.Hits)
		if q.After = page.Next; q.After == "" {
			break
		}
	}
	if seen != entities {
		t.Errorf("%d entities read in pages, want %d", seen, entities)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for l, err := range c.StoreWatch(wctx, api.StoreQuery{Limit: entities}) {
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		if l.Page == nil || len(l.Page.Hits) == 0 || (len(l.Page.Hits) < entities && l.Page.Next == "") {
			t.Errorf("watch's first line: page %v", l.Page != nil)
		}
		break
	}
}
