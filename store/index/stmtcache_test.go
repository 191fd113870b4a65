package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/exopeer/exopeer/store"
)

// closedStmt reports whether st, a statement without parameters, is
// closed (database/sql refuses it); an open one is run.
func closedStmt(t *testing.T, st *sql.Stmt) bool {
	t.Helper()
	var v any
	switch err := st.QueryRowContext(context.Background()).Scan(&v); {
	case err == nil, errors.Is(err, sql.ErrNoRows):
		return false
	case err.Error() == "sql: statement is closed":
		return true
	default:
		t.Fatalf("statement: %v", err)
		return false
	}
}

func TestStmtCacheEvictsLeastRecentlyUsed(t *testing.T) {
	ix := openIndex(t, t.TempDir(), testRegistry(t))
	r, err := ix.read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Rollback()
	c := newStmtCache(r.conn, 3)
	defer c.close()
	get := func(n int) *sql.Stmt {
		t.Helper()
		st, err := c.get(t.Context(), fmt.Sprintf("SELECT %d", n))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	sts := map[int]*sql.Stmt{}
	for n := 1; n <= 5; n++ {
		sts[n] = get(n)
	}
	if c.len() != 3 || c.prepares != 5 {
		t.Fatalf("after 5 texts: %d cached, %d prepared; want 3, 5", c.len(), c.prepares)
	}
	for n, want := range map[int]bool{1: true, 2: true, 3: false, 4: false, 5: false} {
		if got := closedStmt(t, sts[n]); got != want {
			t.Errorf("SELECT %d closed %t, want %t", n, got, want)
		}
	}
	if get(3) != sts[3] || c.prepares != 5 {
		t.Fatalf("a cached text was prepared again (%d prepares)", c.prepares)
	}
	// 3 is now the most recently used, 4 the least: 1 evicts 4.
	sts[1] = get(1)
	if c.len() != 3 || c.prepares != 6 {
		t.Fatalf("after 1 again: %d cached, %d prepared; want 3, 6", c.len(), c.prepares)
	}
	for n, want := range map[int]bool{1: false, 3: false, 4: true, 5: false} {
		if got := closedStmt(t, sts[n]); got != want {
			t.Errorf("after 1 again: SELECT %d closed %t, want %t", n, got, want)
		}
	}
	c.close()
	for _, n := range []int{1, 3, 5} {
		if !closedStmt(t, sts[n]) {
			t.Errorf("SELECT %d open after close", n)
		}
	}
	if c.len() != 0 {
		t.Errorf("%d cached after close", c.len())
	}
}

// TestReaderPreparesOnce: Gets and Queries on one reader prepare each
// statement text once.
func TestReaderPreparesOnce(t *testing.T) {
	ix, err := Open(t.TempDir(), testRegistry(t), Options{Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	f := &feeder{t: t, ix: ix}
	for i := range 3 {
		f.apply(store.PutTrait(eid(i), note("", fmt.Sprint("note ", i), i, "tag")))
	}
	q := store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "tag"}}}
	var first int
	for round := range 5 {
		for i := range 3 {
			if _, err := ix.Get(t.Context(), eid(i), nil); err != nil {
				t.Fatal(err)
			}
		}
		p, err := ix.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Hits) != 3 {
			t.Fatalf("%d hits, want 3", len(p.Hits))
		}
		n := ix.rd.idle[0].stmts.prepares
		if round == 0 {
			first = n
			continue
		}
		if n != first {
			t.Fatalf("round %d: %d statements prepared, %d after the first round", round, n, first)
		}
	}
	// Get (1 ID), the query's plan and its fetch (4 IDs: 3 padded).
	if first != 3 {
		t.Errorf("%d statements prepared, want 3", first)
	}
}

// TestCloseClosesReaders: Close closes every reader's statements and
// transaction statements, and a read after Close is refused.
func TestCloseClosesReaders(t *testing.T) {
	ix, err := Open(t.TempDir(), testRegistry(t), Options{Readers: 2})
	if err != nil {
		t.Fatal(err)
	}
	f := &feeder{t: t, ix: ix}
	f.apply(store.PutTrait(eid(1), note("", "a note", 1)))
	// Two readers at once, so that the pool makes both.
	r1, err := ix.read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r2, err := ix.read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var sts, cached []*sql.Stmt
	for _, r := range []*reader{r1, r2} {
		if _, err := fetch(t.Context(), r, []store.EntityID{eid(1)}, true, nil); err != nil {
			t.Fatal(err)
		}
		sts = append(sts, r.begin, r.rollback)
		for e := r.stmts.lru.Front(); e != nil; e = e.Next() {
			cached = append(cached, e.Value.(*cachedStmt).st)
		}
	}
	r1.Rollback()
	r2.Rollback()
	if len(cached) != 2 {
		t.Fatalf("%d statements cached, want 2", len(cached))
	}
	for i, st := range cached {
		// fetch's statement has a parameter: run without, it fails,
		// but not as closed.
		if _, err := st.QueryContext(t.Context()); err != nil && err.Error() == "sql: statement is closed" {
			t.Fatalf("statement %d closed before Close", i)
		}
	}
	sts = append(sts, cached...)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	for i, st := range sts {
		if !closedStmt(t, st) {
			t.Errorf("statement %d open after Close", i)
		}
	}
	if _, err := ix.Get(t.Context(), eid(1), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
}
