package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
	"github.com/exopeer/exopeer/store"
)

// storeNode runs a loopback node with its control API and an index dir,
// in a cell of its own (so with the store role), and returns its data dir
// and a client of it.
func storeNode(t *testing.T) (string, *client.Client) {
	t.Helper()
	index := t.TempDir()
	dir, _, _ := nodetest.Serve(t, func(o *p.Options) { o.Store.Dir = index })
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CellCreate(t.Context(), api.CellCreateRequest{Name: "home", Member: "laptop"}); err != nil {
		t.Fatal(err)
	}
	return dir, c
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
	if err != nil || len(ts) == 0 || ts[0].Type != "exo.note" {
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
