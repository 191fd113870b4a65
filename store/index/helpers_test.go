package index

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/exopeer/exopeer/internal/leaktest"
	"github.com/exopeer/exopeer/store"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(cleanM{m}) }

// cleanM removes the benchmarks' shared index after the run.
type cleanM struct{ m *testing.M }

func (c cleanM) Run() int {
	defer removeBuilt()
	return c.m.Run()
}

// taskSchema is a second registered type with every kind of field.
var taskSchema = store.Schema{
	Type: "test.task",
	Fields: []store.Field{
		{Name: "title", Kind: store.Text},
		{Name: "status", Kind: store.Keyword},
		{Name: "prio", Kind: store.Number},
		{Name: "due", Kind: store.Time},
		{Name: "about", Kind: store.Reference, List: true},
	},
}

func testRegistry(t testing.TB) *store.Registry {
	t.Helper()
	reg := store.NewRegistry()
	if err := reg.Register(taskSchema); err != nil {
		t.Fatal(err)
	}
	return reg
}

func openIndex(t testing.TB, dir string, reg *store.Registry) *Index {
	t.Helper()
	ix, err := Open(dir, reg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

// eid is entity n's ID.
func eid(n int) store.EntityID {
	var id store.EntityID
	id[0] = 0xE0
	binary.BigEndian.PutUint64(id[8:], uint64(n))
	return id
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// note returns an exo.note trait (ID exo.note) modified at t0 + minute m.
func note(title, body string, m int, tags ...string) store.Trait {
	doc := map[string]any{"body": body}
	if title != "" {
		doc["title"] = title
	}
	if tags != nil {
		doc["tags"] = tags
	}
	b, _ := json.Marshal(doc)
	return store.Trait{Type: "exo.note", ID: "exo.note", Doc: b, Created: t0, Modified: t0.Add(time.Duration(m) * time.Minute)}
}

func task(id store.TraitID, doc string, m int) store.Trait {
	return store.Trait{Type: "test.task", ID: id, Doc: json.RawMessage(doc), Created: t0.Add(time.Duration(m) * time.Second), Modified: t0.Add(time.Duration(m) * time.Minute)}
}

// feeder builds arrivals and applies them one Apply per call.
type feeder struct {
	t     testing.TB
	ix    *Index
	next  uint64
	clock uint64
}

func (f *feeder) payload(ops ...store.Op) []byte {
	p, err := store.Encode(store.Transaction{Ops: ops})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// apply applies one entry of ops at the next clock.
func (f *feeder) apply(ops ...store.Op) {
	f.t.Helper()
	f.clock++
	f.raw(store.Pos{Clock: f.clock, Key: "k"}, f.payload(ops...))
}

func (f *feeder) raw(pos store.Pos, p []byte) []Skip {
	f.t.Helper()
	a := Arrival{Index: f.next, CID: []byte(fmt.Sprint("cid", f.next)), Pos: pos, Payload: p}
	skips, err := f.ix.Apply(f.t.Context(), []Arrival{a})
	if err != nil {
		f.t.Fatal(err)
	}
	f.next++
	return skips
}
