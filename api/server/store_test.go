package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/api/server"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
	"github.com/exopeer/exopeer/store"
)

// storeNode runs a loopback node with its control API (and its store
// directory, as nodetest.Serve gives it), in a cell of its own (so with
// the store role), and returns its data dir and a client of it.
func storeNode(t *testing.T) (string, *client.Client) {
	t.Helper()
	dir, c, _ := storeServer(t)
	return dir, c
}

// storeServer is storeNode, and the API's server too.
func storeServer(t *testing.T) (string, *client.Client, *server.Server) {
	t.Helper()
	dir, _, srv := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CellCreate(t.Context(), api.CellCreateRequest{Name: "home", Member: "laptop"}); err != nil {
		t.Fatal(err)
	}
	return dir, c, srv
}

// wantProblemType fails unless err is an answer of the API with that
// status and problem type.
func wantProblemType(t *testing.T, what string, err error, status int, typ api.ProblemType) *client.StatusError {
	t.Helper()
	var se *client.StatusError
	if !errors.As(err, &se) || se.Status != status || se.Type != typ || se.Detail == "" {
		t.Errorf("%s: error %v, want a %d problem of type %s", what, err, status, typ)
		return nil
	}
	return se
}

func note(body string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"body": body})
	return b
}

// TestStoreAPIInNoCell: the store's routes answer 409 not-in-cell, saying
// how to get a cell, on a node in no cell.
func TestStoreAPIInNoCell(t *testing.T) {
	dir, _, _ := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	id := strings.Repeat("ab", 16)
	calls := map[string]func() error{
		"put": func() error {
			_, err := c.StorePut(ctx, api.StorePutRequest{Traits: []api.StoreTraitInput{{Type: "exo.note", Doc: note("x")}}})
			return err
		},
		"get":     func() error { _, err := c.StoreGet(ctx, id, nil); return err },
		"delete":  func() error { _, err := c.StoreDelete(ctx, id, nil); return err },
		"query":   func() error { _, err := c.StoreQuery(ctx, api.StoreQuery{}); return err },
		"reindex": func() error { _, err := c.StoreReindex(ctx); return err },
		"status":  func() error { _, err := c.StoreStatus(ctx); return err },
		"watch": func() error {
			for _, err := range c.StoreWatch(ctx, api.StoreQuery{}) {
				return err
			}
			return nil
		},
	}
	for name, call := range calls {
		err := call()
		wantProblemType(t, name, err, http.StatusConflict, api.ProblemNotInCell)
		if !errors.Is(err, client.ErrNotInCell) || !strings.Contains(fmt.Sprint(err), "exopeer cell create") {
			t.Errorf("%s in no cell: %v, want ErrNotInCell and the way out named", name, err)
		}
	}
	// The types need no cell.
	ts, err := c.StoreTypes(ctx)
	if err != nil || len(ts) != 7 || ts[0].Type != "exo.contact" || ts[1].Type != "exo.devices" || ts[2].Type != "exo.file" || ts[3].Type != "exo.message" || ts[4].Type != "exo.note" || ts[5].Type != "exo.read" || ts[6].Type != "exo.share" {
		t.Errorf("types: %+v, %v", ts, err)
	}
}

// TestStorePutRefusals: a put the API or the store refuses appends
// nothing, and says why with the problem of its kind, naming the part at
// fault; the put that follows them writes one chain entry, the store's
// encoding of what was asked.
func TestStorePutRefusals(t *testing.T) {
	dir, c := storeNode(t)
	r := newRaw(t, dir)
	ctx := t.Context()
	put := func(entity string, ts ...api.StoreTraitInput) error {
		_, err := c.StorePut(ctx, api.StorePutRequest{Entity: entity, Traits: ts})
		return err
	}
	big := note(strings.Repeat("a", store.MaxDoc))
	many := make([]api.StoreTraitInput, store.MaxOps+1)
	for i := range many {
		many[i] = api.StoreTraitInput{Type: "t", ID: fmt.Sprint(i), Doc: json.RawMessage("1")}
	}
	for _, tt := range []struct {
		name   string
		err    error
		status int
		typ    api.ProblemType
		detail string
	}{
		{"no traits", put(""), 400, api.ProblemBadRequest, "traits"},
		{"bad entity", put("nope", api.StoreTraitInput{Type: "exo.note", Doc: note("x")}), 400, api.ProblemBadEntityID, "nope"},
		{"no type", put("", api.StoreTraitInput{Doc: note("x")}), 400, api.ProblemBadRequest, "no type"},
		{"document too large", put("", api.StoreTraitInput{Type: "exo.note", Doc: big}), 413, api.ProblemPayloadTooLarge, "65536"},
		{"too many traits", put("", many...), 413, api.ProblemPayloadTooLarge, "1001 traits"},
		{"required field missing", put("", api.StoreTraitInput{Type: "exo.note", Doc: json.RawMessage(`{"title": "t"}`)}),
			400, api.ProblemBadDocument, "field body: required"},
		{"field of the wrong type", put("", api.StoreTraitInput{Type: "exo.note", Doc: json.RawMessage(`{"body": "b", "tags": ["a", 5]}`)}),
			400, api.ProblemBadDocument, "field tags[1]"},
		{"not an object", put("", api.StoreTraitInput{Type: "exo.note", Doc: json.RawMessage(`[1]`)}), 400, api.ProblemBadDocument, "not a JSON object"},
		{"trait id too long", put("", api.StoreTraitInput{Type: "exo.note", ID: strings.Repeat("i", store.MaxTraitID+1), Doc: note("x")}),
			400, api.ProblemBadRequest, "trait id"},
		{"trait id twice", put("", api.StoreTraitInput{Type: "t", ID: "a", Doc: note("x")}, api.StoreTraitInput{Type: "u", ID: "a", Doc: note("y")}),
			400, api.ProblemBadRequest, "twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if se := wantProblemType(t, tt.name, tt.err, tt.status, tt.typ); se != nil && !strings.Contains(se.Detail, tt.detail) {
				t.Errorf("%s: detail %q does not name %q", tt.name, se.Detail, tt.detail)
			}
		})
	}
	for _, tt := range []struct {
		name, method, path, body string
		status                   int
		kind                     api.ProblemType
	}{
		{"put: unknown field", "POST", "/v1/store/entities", `{"traits": [], "x": 1}`, 400, api.ProblemBadRequest},
		{"put: no doc", "POST", "/v1/store/entities", `{"traits": [{"type": "t"}]}`, 400, api.ProblemBadRequest},
		{"put: not JSON", "POST", "/v1/store/entities", `{"traits": [{"type": "t", "doc": {]}`, 400, api.ProblemBadRequest},
		{"put: body over the cap", "POST", "/v1/store/entities",
			`{"traits": [{"type": "t", "doc": "` + strings.Repeat("a", 1<<20) + `"}]}`, 413, api.ProblemPayloadTooLarge},
		{"get: bad id", "GET", "/v1/store/entities/nope", "", 400, api.ProblemBadEntityID},
		{"get: id too long", "GET", "/v1/store/entities/" + strings.Repeat("a", 34), "", 400, api.ProblemBadEntityID},
		{"delete: bad id", "DELETE", "/v1/store/entities/" + strings.Repeat("g", 32), "", 400, api.ProblemBadEntityID},
		{"query: unknown field", "POST", "/v1/store/query", `{"typ": "exo.note"}`, 400, api.ProblemBadRequest},
		{"query: too many conditions", "POST", "/v1/store/query",
			`{"where": [` + strings.TrimSuffix(strings.Repeat(`{"field": "tags", "op": "=", "value": "a"},`, store.MaxPredicates+1), ",") + `]}`,
			400, api.ProblemBadQuery},
		{"query: bad reference", "POST", "/v1/store/query", `{"refersTo": "x"}`, 400, api.ProblemBadQuery},
		{"query: body over the cap", "POST", "/v1/store/query", `{"match": "` + strings.Repeat("a", 65<<10) + `"}`, 413, api.ProblemPayloadTooLarge},
		{"watch: bad reference", "POST", "/v1/store/watch", `{"refersTo": "x"}`, 400, api.ProblemBadQuery},
		{"watch: not JSON", "POST", "/v1/store/watch", `{`, 400, api.ProblemBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, ctype, answer := r.do(t, tt.method, tt.path, tt.body, "", "")
			wantProblem(t, tt.name, status, ctype, answer, tt.status, tt.kind)
		})
	}

	// Nothing was appended; then a put appends one entry that decodes to
	// the put asked for.
	if st, err := c.ChainStatus(ctx); err != nil || st.Length != 0 {
		t.Fatalf("chain after the refusals: %d entries, %v; want 0", st.Length, err)
	}
	w, err := c.StorePut(ctx, api.StorePutRequest{Traits: []api.StoreTraitInput{
		{Type: "exo.note", Doc: json.RawMessage(`{"body":"groceries","tags":["home"]}`)},
		{Type: "app.unknown", ID: "x", Doc: json.RawMessage(`[1,2]`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	log, err := c.ChainLog(ctx, "", 0)
	if err != nil || len(log.Entries) != 1 {
		t.Fatalf("chain log: %+v, %v; want one entry", log, err)
	}
	e := log.Entries[0]
	if e.CID != w.CID || e.Pos != w.Pos || e.Data == nil {
		t.Fatalf("entry %+v, want the put's %+v, as data", e, w)
	}
	tx, err := store.Decode(e.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(tx.Ops) != 2 {
		t.Fatalf("%d ops, want 2", len(tx.Ops))
	}
	for i, want := range []struct{ typ, id, doc string }{
		{"exo.note", "exo.note", `{"body":"groceries","tags":["home"]}`},
		{"app.unknown", "x", `[1,2]`},
	} {
		o := tx.Ops[i]
		if o.Kind != store.OpPutTrait || o.Entity.String() != w.Entity || o.Trait.Type != want.typ ||
			string(o.Trait.ID) != want.id || string(o.Trait.Doc) != want.doc || o.Trait.Created.IsZero() {
			t.Errorf("op %d = %+v, want a put of %+v into %s", i, o, want, w.Entity)
		}
	}
}

// TestStoreOverTheAPI writes, reads, queries and deletes through the
// client, and checks each answer against what was written.
func TestStoreOverTheAPI(t *testing.T) {
	_, c := storeNode(t)
	ctx := t.Context()
	put := func(entity string, ts ...api.StoreTraitInput) api.StoreWritten {
		t.Helper()
		w, err := c.StorePut(ctx, api.StorePutRequest{Entity: entity, Traits: ts})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	milk := put("", api.StoreTraitInput{Type: "exo.note", Doc: json.RawMessage(`{"title":"Milk","body":"buy milk","tags":["home"]}`)})
	put(milk.Entity, api.StoreTraitInput{Type: "app.thing", ID: "extra", Doc: json.RawMessage(`{"n":1}`)})
	eggs := put("", api.StoreTraitInput{Type: "exo.note", Doc: json.RawMessage(`{"body":"eggs and milk","tags":["home","errands"]}`)})
	other := put("", api.StoreTraitInput{Type: "exo.note", Doc: json.RawMessage(`{"body":"call the bank"}`)})

	e, err := c.StoreGet(ctx, milk.Entity, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != milk.Entity || len(e.Traits) != 2 || e.Traits[0].ID != "exo.note" || e.Traits[1].ID != "extra" ||
		e.Traits[1].Type != "app.thing" || compactJSON(t, e.Traits[1].Doc) != `{"n":1}` ||
		e.Traits[0].Created.IsZero() || e.Traits[0].Modified.Before(e.Traits[0].Created) {
		t.Errorf("get = %+v", e)
	}
	if e, err := c.StoreGet(ctx, milk.Entity, []string{"app.thing"}); err != nil || len(e.Traits) != 1 || e.Traits[0].Type != "app.thing" {
		t.Errorf("get of app.thing = %+v, %v", e, err)
	}
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	_, err = c.StoreGet(ctx, milk.Entity, many)
	wantProblemType(t, "get projected to 65 types", err, http.StatusBadRequest, api.ProblemBadQuery)
	_, err = c.StoreQuery(ctx, api.StoreQuery{Traits: &many})
	wantProblemType(t, "query projected to 65 types", err, http.StatusBadRequest, api.ProblemBadQuery)
	_, err = c.StoreGet(ctx, strings.Repeat("0", 32), nil)
	wantProblemType(t, "get of nothing", err, http.StatusNotFound, api.ProblemNotFound)
	if !errors.Is(err, client.ErrNotFound) {
		t.Errorf("get of nothing: %v, want ErrNotFound", err)
	}

	ids := func(p api.StorePage) []string {
		var out []string
		for _, h := range p.Hits {
			out = append(out, h.Entity.ID)
		}
		return out
	}
	home := []api.StorePredicate{{Field: "tags", Op: "=", Value: "home"}}
	for _, tt := range []struct {
		name string
		q    api.StoreQuery
		want []string
	}{
		{"newest first", api.StoreQuery{Type: "exo.note"}, []string{other.Entity, eggs.Entity, milk.Entity}},
		{"oldest first", api.StoreQuery{Type: "exo.note", Asc: true}, []string{milk.Entity, eggs.Entity, other.Entity}},
		{"by tag", api.StoreQuery{Type: "exo.note", Where: home, Asc: true}, []string{milk.Entity, eggs.Entity}},
		{"by two tags", api.StoreQuery{Type: "exo.note", Where: append(home, api.StorePredicate{Field: "tags", Op: "=", Value: "errands"})}, []string{eggs.Entity}},
		{"by prefix", api.StoreQuery{Type: "exo.note", Where: []api.StorePredicate{{Field: "tags", Op: "^=", Value: "err"}}}, []string{eggs.Entity}},
		{"by words", api.StoreQuery{Match: "bank"}, []string{other.Entity}},
	} {
		page, err := c.StoreQuery(ctx, tt.q)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := ids(page); strings.Join(got, " ") != strings.Join(tt.want, " ") || page.Next != "" {
			t.Errorf("%s: %v (next %q), want %v", tt.name, got, page.Next, tt.want)
		}
	}
	words, err := c.StoreQuery(ctx, api.StoreQuery{Match: "milk"})
	if err != nil || len(words.Hits) != 2 || words.Hits[0].Rank == 0 {
		t.Errorf("match milk: %+v, %v; want 2 hits with a rank", words, err)
	}

	// Pages of one, by cursor, read the same order; a projection to no
	// trait returns the IDs only.
	none := []string{}
	var paged []string
	q := api.StoreQuery{Type: "exo.note", Limit: 1, Traits: &none}
	for range 4 {
		page, err := c.StoreQuery(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range page.Hits {
			if len(h.Entity.Traits) != 0 {
				t.Errorf("projection to none: %+v", h)
			}
		}
		paged = append(paged, ids(page)...)
		if q.After = page.Next; page.Next == "" {
			break
		}
	}
	if want := []string{other.Entity, eggs.Entity, milk.Entity}; strings.Join(paged, " ") != strings.Join(want, " ") {
		t.Errorf("paged: %v, want %v", paged, want)
	}

	for _, tt := range []struct {
		name, part string
		q          api.StoreQuery
	}{
		{"a field of a type with no schema", "colour", api.StoreQuery{Type: "nope", Where: []api.StorePredicate{{Field: "colour", Op: "=", Value: "red"}}}},
		{"unknown field", "colour", api.StoreQuery{Type: "exo.note", Where: []api.StorePredicate{{Field: "colour", Op: "=", Value: "red"}}}},
		{"range on a keyword", "tags", api.StoreQuery{Type: "exo.note", Where: []api.StorePredicate{{Field: "tags", Op: ">", Value: "a"}}}},
		{"bad operator", "tags", api.StoreQuery{Type: "exo.note", Where: []api.StorePredicate{{Field: "tags", Op: "~", Value: "a"}}}},
		{"bad cursor", "", api.StoreQuery{After: "nope"}},
		{"limit over the cap", "limit", api.StoreQuery{Limit: store.MaxLimit + 1}},
		{"match too long", "match", api.StoreQuery{Match: strings.Repeat("a", store.MaxMatch+1)}},
	} {
		_, err := c.StoreQuery(ctx, tt.q)
		se := wantProblemType(t, tt.name, err, http.StatusBadRequest, api.ProblemBadQuery)
		if se != nil && !strings.Contains(se.Detail, tt.part) || !errors.Is(err, client.ErrBadQuery) {
			t.Errorf("%s: %v, want ErrBadQuery naming %q", tt.name, err, tt.part)
		}
	}

	// Deletes: a trait, then the entity; then neither is found.
	if _, err := c.StoreDelete(ctx, milk.Entity, []string{"extra"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.StoreDelete(ctx, milk.Entity, []string{"extra"})
	wantProblemType(t, "delete of a deleted trait", err, http.StatusNotFound, api.ProblemNotFound)
	if e, err := c.StoreGet(ctx, milk.Entity, nil); err != nil || len(e.Traits) != 1 {
		t.Errorf("get after a trait's delete: %+v, %v", e, err)
	}
	if _, err := c.StoreDelete(ctx, milk.Entity, nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.StoreGet(ctx, milk.Entity, nil)
	wantProblemType(t, "get of a deleted entity", err, http.StatusNotFound, api.ProblemNotFound)
	_, err = c.StoreDelete(ctx, milk.Entity, nil)
	wantProblemType(t, "delete of a deleted entity", err, http.StatusNotFound, api.ProblemNotFound)

	st, err := c.StoreStatus(ctx)
	if err != nil || st.Role != "store" || st.Entities != 2 || st.Traits != 2 || st.Next != 6 || st.Behind != 0 || st.Bytes <= 0 {
		t.Errorf("status = %+v, %v", st, err)
	}
	re, err := c.StoreReindex(ctx)
	if err != nil || re.Entries != 6 || re.Entities != 2 {
		t.Errorf("reindex = %+v, %v", re, err)
	}
	if page, err := c.StoreQuery(ctx, api.StoreQuery{Type: "exo.note"}); err != nil || strings.Join(ids(page), " ") != other.Entity+" "+eggs.Entity {
		t.Errorf("after the reindex: %v, %v", ids(page), err)
	}
}

func compactJSON(t *testing.T, doc json.RawMessage) string {
	t.Helper()
	var b strings.Builder
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(&b)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(b.String())
}

// TestStoreQueryCutsALargePage: a page whose entities would make an
// answer over the cut (8 MiB; 256 KiB here) is cut short, with the cursor
// that reads on from its last hit, so that every entity is read once, in
// order.
func TestStoreQueryCutsALargePage(t *testing.T) {
	t.Cleanup(server.SetStorePageBytes(256 << 10))
	_, c := storeNode(t)
	ctx := t.Context()
	doc := note(strings.Repeat("x", 20<<10))
	const entities = 20 // of 3 traits of 20 KiB: 1.2 MiB
	for i := range entities {
		ts := make([]api.StoreTraitInput, 3)
		for j := range ts {
			ts[j] = api.StoreTraitInput{Type: "exo.note", ID: fmt.Sprint(j), Doc: doc}
		}
		if _, err := c.StorePut(ctx, api.StorePutRequest{Traits: ts}); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	q := api.StoreQuery{Type: "exo.note", Limit: entities}
	seen := map[string]bool{}
	pages := 0
	for pages < entities {
		page, err := c.StoreQuery(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, h := range page.Hits {
			if seen[h.Entity.ID] || len(h.Entity.Traits) != 3 {
				t.Fatalf("hit %s: seen before %v, %d traits", h.Entity.ID, seen[h.Entity.ID], len(h.Entity.Traits))
			}
			seen[h.Entity.ID] = true
		}
		if q.After = page.Next; q.After == "" {
			break
		}
	}
	if len(seen) != entities || pages < 4 {
		t.Errorf("%d entities in %d pages, want %d in 4 or more", len(seen), pages, entities)
	}

	// A watch's first page is cut the same way.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for l, err := range c.StoreWatch(wctx, api.StoreQuery{Type: "exo.note", Limit: entities}) {
		if err != nil {
			t.Fatal(err)
		}
		if l.Page == nil || len(l.Page.Hits) == 0 || len(l.Page.Hits) >= entities || l.Page.Next == "" {
			t.Errorf("watch's first line: page %v", l.Page != nil)
		}
		break
	}
}
