package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/index"
	"github.com/exopeer/exopeer/store/service"
)

// TestPutGetQueryDelete: a store-role node reads its own writes from its
// index: get, query by type, match and predicate, trait and entity
// deletes, and the errors of each.
func TestPutGetQueryDelete(t *testing.T) {
	n := cellNode(t, 4)
	s := n.Store()
	ctx := t.Context()
	w, err := s.Put(ctx, store.EntityID{}, []store.Trait{note("groceries milk", "home"), {Type: "x.other", ID: "o", Doc: json.RawMessage(`{"a":1}`)}})
	if err != nil {
		t.Fatal(err)
	}
	w2, err := s.Put(ctx, store.EntityID{}, []store.Trait{note("meeting notes", "work")})
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Get(ctx, w.Entity, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != w.Entity || len(e.Traits) != 2 || e.Traits[0].ID != "exo.note" || e.Traits[1].ID != "o" {
		t.Fatalf("Get: %+v", e)
	}
	created := e.Traits[0].Created
	if e, err = s.Get(ctx, w.Entity, []string{"x.other"}); err != nil || len(e.Traits) != 1 || e.Traits[0].Type != "x.other" {
		t.Errorf("Get with a projection: %+v, %v", e, err)
	}
	for _, tc := range []struct {
		name string
		q    store.Query
		want []store.EntityID
	}{
		{"type", store.Query{Type: "exo.note", Order: store.OrderCreated, Asc: true}, []store.EntityID{w.Entity, w2.Entity}},
		{"match", store.Query{Match: "milk"}, []store.EntityID{w.Entity}},
		{"where", store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "work"}}}, []store.EntityID{w2.Entity}},
	} {
		pg, err := s.Query(ctx, tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := hitIDs(pg); !equalIDs(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := s.Query(ctx, store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "nope", Op: store.Eq, Value: "x"}}}); !errors.Is(err, store.ErrQuery) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown field: %v", err)
	}

	// A put on a live trait keeps its created time.
	if _, err := s.Put(ctx, w.Entity, []store.Trait{note("groceries bread", "home")}); err != nil {
		t.Fatal(err)
	}
	e, err = s.Get(ctx, w.Entity, []string{"exo.note"})
	if err != nil || len(e.Traits) != 1 || !e.Traits[0].Created.Equal(created) || !bytes.Contains(e.Traits[0].Doc, []byte("bread")) {
		t.Errorf("after a second put: %+v, %v (created %v)", e, err, created)
	}

	if _, err := s.Delete(ctx, w.Entity, []store.TraitID{"o"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, w.Entity, []store.TraitID{"o"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting a deleted trait: %v", err)
	}
	if e, err = s.Get(ctx, w.Entity, nil); err != nil || len(e.Traits) != 1 {
		t.Errorf("after the trait delete: %+v, %v", e, err)
	}
	if _, err := s.Delete(ctx, w.Entity, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, w.Entity, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after the delete: %v", err)
	}
	if _, err := s.Delete(ctx, w.Entity, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting a deleted entity: %v", err)
	}
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Role != service.RoleStore || st.Entities != 1 || st.Behind != 0 || st.Next != 5 || st.Bytes == 0 {
		t.Errorf("Status: %+v", st)
	}
}

// TestWatch: a watched query sends its first page, then the changes of
// each write.
func TestWatch(t *testing.T) {
	n := cellNode(t, 5)
	s := n.Store()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := s.Watch(ctx, store.Query{Type: "exo.note"})
	if err != nil {
		t.Fatal(err)
	}
	ev := next(t, ch)
	if ev.Page == nil || len(ev.Page.Hits) != 0 {
		t.Fatalf("first event: %+v", ev)
	}
	w, err := s.Put(ctx, store.EntityID{}, []store.Trait{note("watched")})
	if err != nil {
		t.Fatal(err)
	}
	ev = next(t, ch)
	if len(ev.Changes) != 1 || ev.Changes[0].Kind != store.Added || ev.Changes[0].Hit.Entity.ID != w.Entity {
		t.Fatalf("after a put: %+v", ev)
	}
	if _, err := s.Delete(ctx, w.Entity, nil); err != nil {
		t.Fatal(err)
	}
	ev = next(t, ch)
	if len(ev.Changes) != 1 || ev.Changes[0].Kind != store.Removed || ev.Changes[0].Hit.Entity.ID != w.Entity {
		t.Fatalf("after a delete: %+v", ev)
	}
	cancel()
	for range ch { // closed when ctx ends
	}
}

// TestSkipsAndText: the chain's text entries are not the store's and are
// passed over; a malformed store payload is skipped, counted and logged,
// and indexing goes on past it.
func TestSkipsAndText(t *testing.T) {
	logs := &logBuffer{}
	n := cellNode(t, 6, func(o *p.Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	s, ch := n.Store(), n.Chain()
	ctx := t.Context()
	if _, err := ch.Append(ctx, []byte("hello, plain text")); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Append(ctx, []byte{store.Magic, store.Version, 0x01, 0x09}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Append(ctx, []byte{store.Magic, store.Version, 0x01, byte(store.OpPutTrait), 1, 2}); err != nil {
		t.Fatal(err)
	}
	w, err := s.Put(ctx, store.EntityID{}, []store.Trait{note("after the bad ones")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, w.Entity, nil); err != nil {
		t.Fatalf("the entry after the skipped ones: %v", err)
	}
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Next != 4 || st.Skipped[store.SkipDecode] != 2 || st.Entities != 1 {
		t.Errorf("Status: %+v, want 4 applied, 2 skipped, 1 entity", st)
	}
	if got := strings.Count(logs.String(), "store entry skipped"); got != 2 {
		t.Errorf("%d skips logged, want 2:\n%s", got, logs)
	}
}

// TestRestartResumes: a restarted node's index resumes from its
// checkpoint, on disk, and does not apply the chain again.
func TestRestartResumes(t *testing.T) {
	opts := nodetest.Options(t, 7)
	opts.Cell, opts.Store.Dir = nodetest.FastCell, t.TempDir()
	logs := &logBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	n, err := p.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ro, err := n.Cell().Create(t.Context(), "test", "n")
	if err != nil {
		t.Fatal(err)
	}
	const puts = 20
	for i := range puts {
		if _, err := n.Store().Put(t.Context(), store.EntityID{}, []store.Trait{note(strings.Repeat("x", i+1))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// The checkpoint is on disk, before the node starts again.
	ix, err := index.Open(filepath.Join(opts.Store.Dir, ro.ID()), store.NewRegistry(), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ix.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if cp.Next != puts || len(cp.Last) == 0 {
		t.Fatalf("checkpoint after the restart %+v, want %d", cp, puts)
	}
	n = nodetest.Start(t, opts)
	if _, err := n.Store().Put(t.Context(), store.EntityID{}, []store.Trait{note("one more")}); err != nil {
		t.Fatal(err)
	}
	st, err := n.Store().Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Next != puts+1 || st.Entities != puts+1 {
		t.Errorf("Status after the restart: %+v", st)
	}
	if strings.Contains(logs.String(), "reindex") {
		t.Errorf("the restarted node reindexed:\n%s", logs)
	}
}

// TestReindex: a reindex empties the index and applies the whole chain
// again, to the same state.
func TestReindex(t *testing.T) {
	n := cellNode(t, 8)
	s := n.Store()
	ctx := t.Context()
	var ids []store.EntityID
	for i := range 5 {
		w, err := s.Put(ctx, store.EntityID{}, []store.Trait{note(strings.Repeat("y", i+1))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.Entity)
	}
	if _, err := s.Delete(ctx, ids[0], nil); err != nil {
		t.Fatal(err)
	}
	before, err := s.Query(ctx, store.Query{Type: "exo.note"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Reindex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Entries != 6 || r.Entities != 4 {
		t.Errorf("Reindex: %+v, want 6 entries, 4 entities", r)
	}
	after, err := s.Query(ctx, store.Query{Type: "exo.note"})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(before)
	b, _ := json.Marshal(after)
	if !bytes.Equal(a, b) {
		t.Errorf("the reindexed index answers otherwise:\n%s\n%s", a, b)
	}
}

// TestNoIndexWhenEmpty: a node in no cell opens no index: its directory
// stays empty. (Once in a cell, the node's blob part reads the cell's
// files from the store at once, and that read opens the index, empty
// chain or not: the index opens to index or to read, as before.)
func TestNoIndexWhenEmpty(t *testing.T) {
	opts := nodetest.Options(t, 10)
	opts.Cell, opts.Store.Dir = nodetest.FastCell, filepath.Join(t.TempDir(), "store")
	n := nodetest.Start(t, opts)
	if _, err := n.Store().Query(t.Context(), store.Query{Type: "exo.note"}); err == nil {
		t.Error("a query in no cell answered")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, err := filepath.Glob(filepath.Join(opts.Store.Dir, "*")); err != nil || len(ents) != 0 {
		t.Errorf("index dir holds %v (%v)", ents, err)
	}
}

func next(t *testing.T, ch <-chan store.WatchEvent) store.WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no watch event within 20 s")
	}
	return store.WatchEvent{}
}

func hitIDs(pg store.Page) []store.EntityID {
	var ids []store.EntityID
	for _, h := range pg.Hits {
		ids = append(ids, h.Entity.ID)
	}
	return ids
}

func equalIDs(a, b []store.EntityID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// logBuffer is a log destination safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWatchEndsWithTheNode: a watched query's channel closes when the
// node closes, its consumer's context still live.
func TestWatchEndsWithTheNode(t *testing.T) {
	n := cellNode(t, 11)
	ch, err := n.Store().Watch(t.Context(), store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.Page == nil {
		t.Fatalf("first event %+v", ev)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-deadline:
			t.Fatal("the watch outlived the node by 20 s")
		}
	}
	if _, err := n.Store().Query(t.Context(), store.Query{}); !errors.Is(err, service.ErrClosed) {
		t.Errorf("Query after Close: %v, want ErrClosed", err)
	}
}
