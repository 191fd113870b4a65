package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// TestStoreWatch watches a query over the API: the first page, then each
// change to it as it is written (added, changed, removed); the stream
// ends with the API, saying so.
func TestStoreWatch(t *testing.T) {
	_, c, srv := storeServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	first, err := c.StorePut(ctx, api.StorePutRequest{Traits: []api.StoreTraitInput{{Type: "exo.note", Doc: note("first")}}})
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan api.StoreWatchLine, 100)
	ended := make(chan error, 1)
	go func() {
		var err error
		for l, werr := range c.StoreWatch(ctx, api.StoreQuery{Type: "exo.note"}) {
			if werr != nil {
				err = werr
				break
			}
			lines <- l
		}
		ended <- err
	}()
	next := func() api.StoreWatchLine {
		t.Helper()
		select {
		case l := <-lines:
			return l
		case <-ctx.Done():
			t.Fatal("watch: no line within 30 s")
			return api.StoreWatchLine{}
		}
	}
	// change waits for the change of one entity (a writer's update may
	// come in more than one event, but each entity changes once here).
	change := func(kind, id, body string) {
		t.Helper()
		l := next()
		if len(l.Changes) != 1 || l.Page != nil {
			t.Fatalf("watch line %+v, want one change", l)
		}
		ch := l.Changes[0]
		if ch.Kind != kind || ch.Hit.Entity.ID != id {
			t.Fatalf("change %+v, want %s of %s", ch, kind, id)
		}
		if body != "" && (len(ch.Hit.Entity.Traits) != 1 || compactJSON(t, ch.Hit.Entity.Traits[0].Doc) != `{"body":"`+body+`"}`) {
			t.Fatalf("change %+v, want the body %q", ch, body)
		}
	}
	if l := next(); l.Page == nil || len(l.Page.Hits) != 1 || l.Page.Hits[0].Entity.ID != first.Entity || len(l.Changes) != 0 {
		t.Fatalf("first line %+v, want the page of the first note", l)
	}
	second, err := c.StorePut(ctx, api.StorePutRequest{Traits: []api.StoreTraitInput{{Type: "exo.note", Doc: note("second")}}})
	if err != nil {
		t.Fatal(err)
	}
	change("added", second.Entity, "second")
	if _, err := c.StorePut(ctx, api.StorePutRequest{Entity: first.Entity, Traits: []api.StoreTraitInput{{Type: "exo.note", Doc: note("first, again")}}}); err != nil {
		t.Fatal(err)
	}
	change("changed", first.Entity, "first, again")
	// A trait of another type is not the query's: no change.
	if _, err := c.StorePut(ctx, api.StorePutRequest{Traits: []api.StoreTraitInput{{Type: "app.thing", Doc: note("x")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StoreDelete(ctx, second.Entity, nil); err != nil {
		t.Fatal(err)
	}
	change("removed", second.Entity, "")

	// The API's Close ends the stream, and the client hears why.
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("api Close with a watch open: %v", err)
	}
	select {
	case err := <-ended:
		if !isProblem(err, api.ProblemUnavailable) || !strings.Contains(err.Error(), "stopping") {
			t.Errorf("watch ended with %v, want the API stopping as a problem of type %s", err, api.ProblemUnavailable)
		}
	case <-ctx.Done():
		t.Fatal("watch did not end with the API")
	}
	if len(lines) != 0 {
		t.Errorf("watch gave %+v more", <-lines)
	}
}

// TestStoreWatchEndsWithTheStore: a watch whose store stops (the node
// closes while its API still serves) ends with a line that says so.
func TestStoreWatchEndsWithTheStore(t *testing.T) {
	dir, n, _ := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := c.CellCreate(ctx, api.CellCreateRequest{Name: "home"}); err != nil {
		t.Fatal(err)
	}
	pages := 0
	var end error
	for l, err := range c.StoreWatch(ctx, api.StoreQuery{}) {
		if err != nil {
			end = err
			break
		}
		if l.Page != nil {
			pages++
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if pages != 1 || !isProblem(end, api.ProblemUnavailable) || !strings.Contains(end.Error(), "store ended the watch") {
		t.Errorf("%d pages, then %v; want 1, then the store's end", pages, end)
	}
}
