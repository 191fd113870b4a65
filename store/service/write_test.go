package service_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/service"
)

// thinPair starts a store member a (seed) of a new cell and a member b
// (seed+1) without the store role, joined to it.
func thinPair(t *testing.T, seed byte) (a, b *p.Node) {
	t.Helper()
	a = nodetest.CellNode(t, seed)
	return a, nodetest.Join(t, a, seed+1, cell.RoleChain)
}

func cellNode(t *testing.T, seed byte, tweak ...func(*p.Options)) *p.Node {
	t.Helper()
	return nodetest.CellNode(t, seed, tweak...)
}

func note(body string, tags ...string) store.Trait {
	doc, _ := json.Marshal(map[string]any{"title": "t " + body, "body": body, "tags": tags})
	return store.Trait{Type: "exo.note", Doc: doc}
}

// TestPutRefusals: a write the store would skip is refused before anything
// is appended, with an error saying why.
func TestPutRefusals(t *testing.T) {
	n := cellNode(t, 1)
	s := n.Store()
	for _, tc := range []struct {
		name   string
		traits []store.Trait
		want   error
		say    string
	}{
		{"no traits", nil, store.ErrMalformed, "no traits"},
		{"oversize", []store.Trait{{Type: "exo.note", Doc: json.RawMessage(`{"body":"` + strings.Repeat("x", store.MaxDoc) + `"}`)}}, store.ErrTooLarge, "over"},
		{"schema", []store.Trait{{Type: "exo.note", Doc: json.RawMessage(`{"title":"no body"}`)}}, store.ErrSchema, "body"},
		{"schema kind", []store.Trait{{Type: "exo.note", Doc: json.RawMessage(`{"body":"b","tags":"work"}`)}}, store.ErrSchema, "tags"},
		{"not json", []store.Trait{{Type: "x.y", Doc: json.RawMessage(`{`)}}, store.ErrMalformed, "JSON"},
		{"no type", []store.Trait{{Doc: json.RawMessage(`{}`), ID: "a"}}, store.ErrMalformed, "type"},
		{"twice", []store.Trait{note("a"), note("b")}, store.ErrMalformed, "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Put(t.Context(), store.EntityID{}, tc.traits)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.say) {
				t.Errorf("Put: %v, want %v saying %q", err, tc.want, tc.say)
			}
		})
	}
	var fe *store.FieldError
	if _, err := s.Put(t.Context(), store.EntityID{}, []store.Trait{{Type: "exo.note", Doc: json.RawMessage(`{"title":1,"body":"b"}`)}}); !errors.As(err, &fe) || fe.Path != "title" {
		t.Errorf("schema refusal: %v, want a *store.FieldError naming title", err)
	}
	st, err := n.Chain().Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Length != 0 {
		t.Errorf("refused writes appended %d entries", st.Length)
	}
}

// TestPutAppends: a put is one chain entry holding the transaction, with
// a new entity's ID, the type as trait ID and the node's time.
func TestPutAppends(t *testing.T) {
	n := cellNode(t, 2)
	s := n.Store()
	w, err := s.Put(t.Context(), store.EntityID{}, []store.Trait{note("hello", "work"), {Type: "x.unknown", ID: "extra", Doc: json.RawMessage(`[1,2]`)}})
	if err != nil {
		t.Fatal(err)
	}
	if w.Entity.IsZero() || !w.CID.Defined() {
		t.Fatalf("Written %+v", w)
	}
	log, err := n.Chain().Log(t.Context(), chain.Pos{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || !log[0].CID.Equals(w.CID) || log[0].Pos != w.Pos {
		t.Fatalf("chain %+v, want one entry at %+v", log, w)
	}
	tx, err := store.Decode(log[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(tx.Ops) != 2 {
		t.Fatalf("%d ops", len(tx.Ops))
	}
	o := tx.Ops[0]
	if o.Kind != store.OpPutTrait || o.Entity != w.Entity || o.Trait.ID != "exo.note" || o.Trait.Created.IsZero() || !o.Trait.Modified.Equal(o.Trait.Created) {
		t.Errorf("op 0: %+v", o)
	}
	if !bytes.Contains(o.Trait.Doc, []byte("hello")) || tx.Ops[1].Trait.ID != "extra" {
		t.Errorf("ops: %+v", tx.Ops)
	}
	if _, err := s.Delete(t.Context(), store.EntityID{}, nil); !errors.Is(err, store.ErrMalformed) {
		t.Errorf("delete of the zero entity: %v", err)
	}
	if got := s.Types(); len(got) != 7 || got[0].Type != "exo.contact" || got[1].Type != "exo.devices" || got[2].Type != "exo.file" || got[3].Type != "exo.message" || got[4].Type != "exo.note" || got[5].Type != "exo.read" || got[6].Type != "exo.share" {
		t.Errorf("Types: %+v", got)
	}
}

// TestNotMember: a node in no cell writes nothing and says why.
func TestNotMember(t *testing.T) {
	opts := nodetest.Options(t, 3)
	n := nodetest.Start(t, opts)
	if _, err := n.Store().Put(t.Context(), store.EntityID{}, []store.Trait{note("x")}); !errors.Is(err, service.ErrNotMember) {
		t.Errorf("Put: %v", err)
	}
	if _, err := n.Store().Query(t.Context(), store.Query{}); !errors.Is(err, service.ErrNotMember) {
		t.Errorf("Query: %v", err)
	}
}
