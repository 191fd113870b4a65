package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/exopeer/exopeer/chain/replica"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/service"
)

// held is a node whose commits stop in the commit hook until the test
// lets each go, so that the test decides which writes queue behind one.
type held struct {
	n       *p.Node
	s       *service.Service
	entered chan int      // the number of each commit that reached the hook
	release chan struct{} // one value lets one commit go
}

func holdCommits(t *testing.T, seed byte) *held {
	t.Helper()
	n := cellNode(t, seed)
	h := &held{n: n, s: n.Store(), entered: make(chan int, 16), release: make(chan struct{})}
	var mu sync.Mutex
	calls := 0
	service.SetCommitHook(h.s, func() {
		mu.Lock()
		calls++
		c := calls
		mu.Unlock()
		h.entered <- c
		<-h.release
	})
	return h
}

// put starts a Put of traits on e and returns where its result goes.
func (h *held) put(t *testing.T, e store.EntityID, traits ...store.Trait) <-chan putResult {
	out := make(chan putResult, 1)
	go func() {
		w, err := h.s.Put(t.Context(), e, traits)
		out <- putResult{w, err}
	}()
	return out
}

type putResult struct {
	w   service.Written
	err error
}

// queued waits until n writes wait in the queue.
func (h *held) queued(t *testing.T, n int) {
	t.Helper()
	nodetest.Eventually(t, 10*time.Second, fmt.Sprint(n, " writes queued"), func() bool { return service.Queued(h.s) == n })
}

func (h *held) length(t *testing.T) int {
	t.Helper()
	st, err := h.n.Chain().Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.Length
}

// TestGroupCommit: writes that arrive while a commit is under way are
// committed together, in one chain entry (a batch of their transactions)
// and one synced write; each returns its own entity and its own
// transaction in that entry, readable from the index when Put returns.
func TestGroupCommit(t *testing.T) {
	const n = 24
	h := holdCommits(t, 50)
	start := h.length(t)
	first := h.put(t, store.EntityID{}, note("first"))
	<-h.entered
	var rs []<-chan putResult
	for i := range n {
		rs = append(rs, h.put(t, store.EntityID{}, note(fmt.Sprint("queued ", i))))
	}
	h.queued(t, n)
	h.release <- struct{}{}
	if r := <-first; r.err != nil {
		t.Fatal(r.err)
	}
	<-h.entered
	h.release <- struct{}{}
	seen := map[store.EntityID]bool{}
	txs := map[int]bool{}
	var entry service.Written
	for i, c := range rs {
		r := <-c
		if r.err != nil {
			t.Fatalf("write %d: %v", i, r.err)
		}
		if seen[r.w.Entity] {
			t.Fatalf("write %d: entity %s returned twice", i, r.w.Entity)
		}
		seen[r.w.Entity] = true
		if i == 0 {
			entry = r.w
		}
		if r.w.CID != entry.CID || r.w.Pos != entry.Pos || r.w.Tx < 0 || r.w.Tx >= n || txs[r.w.Tx] {
			t.Fatalf("write %d in entry %s transaction %d, want entry %s and a transaction of its own below %d", i, r.w.CID, r.w.Tx, entry.CID, n)
		}
		txs[r.w.Tx] = true
		got, err := h.s.Get(t.Context(), r.w.Entity, nil)
		if err != nil || len(got.Traits) != 1 || string(got.Traits[0].Doc) != string(note(fmt.Sprint("queued ", i)).Doc) {
			t.Fatalf("write %d read back: %+v, %v", i, got, err)
		}
	}
	if got := h.length(t) - start; got != 2 {
		t.Errorf("%d writes in 2 commits made %d chain entries, want one per commit", n+1, got)
	}
	if got := service.Commits(h.s); got != 2 {
		t.Errorf("%d commits, want 2", got)
	}
	st, err := h.s.Status(t.Context())
	if err != nil || st.Next != uint64(h.length(t)) || st.Behind != 0 {
		t.Errorf("index status %+v, %v; want it at the chain's %d arrivals", st, err, h.length(t))
	}
}

// TestGroupCommitOrder: writes committed together keep their callers'
// order (of one entity, the later wins), each a transaction of its own
// in their entry, in that order.
func TestGroupCommitOrder(t *testing.T) {
	h := holdCommits(t, 51)
	w, err := func() (service.Written, error) {
		go func() { <-h.entered; h.release <- struct{}{} }()
		return h.s.Put(t.Context(), store.EntityID{}, []store.Trait{note("zero")})
	}()
	if err != nil {
		t.Fatal(err)
	}
	e := w.Entity
	lead := h.put(t, store.EntityID{}, note("lead"))
	<-h.entered
	one := h.put(t, e, note("one"))
	h.queued(t, 1)
	other := h.put(t, store.EntityID{}, note("other"))
	h.queued(t, 2)
	two := h.put(t, e, note("two"))
	h.queued(t, 3)
	h.release <- struct{}{}
	<-h.entered
	h.release <- struct{}{}
	for _, c := range []<-chan putResult{lead} {
		if r := <-c; r.err != nil {
			t.Fatal(r.err)
		}
	}
	r1, ro, r2 := <-one, <-other, <-two
	for _, r := range []putResult{r1, ro, r2} {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	if r1.w.Pos != ro.w.Pos || ro.w.Pos != r2.w.Pos || r1.w.Tx != 0 || ro.w.Tx != 1 || r2.w.Tx != 2 {
		t.Errorf("one %v.%d, other %v.%d, two %v.%d; want them in one entry, in that order", r1.w.Pos, r1.w.Tx, ro.w.Pos, ro.w.Tx, r2.w.Pos, r2.w.Tx)
	}
	got, err := h.s.Get(t.Context(), e, nil)
	if err != nil || len(got.Traits) != 1 || string(got.Traits[0].Doc) != string(note("two").Doc) {
		t.Fatalf("entity after both writes: %+v, %v; want the later write's note", got, err)
	}
}

// TestGroupCommitFails: a commit that fails (the replica closed under it)
// fails exactly the writes in it: the commit before it stands, readable;
// a write refused for its own sake fails alone, before it queues.
func TestGroupCommitFails(t *testing.T) {
	h := holdCommits(t, 52)
	lead := h.put(t, store.EntityID{}, note("lead"))
	<-h.entered
	a := h.put(t, store.EntityID{}, note("a"))
	b := h.put(t, store.EntityID{}, note("b"))
	h.queued(t, 2)
	if _, err := h.s.Put(t.Context(), store.EntityID{}, []store.Trait{{Type: "exo.note", Doc: []byte(`{"title":"no body"}`)}}); !errors.Is(err, store.ErrSchema) {
		t.Fatalf("a write its schema refuses: %v, want store.ErrSchema", err)
	}
	h.release <- struct{}{}
	rl := <-lead
	if rl.err != nil {
		t.Fatal(rl.err)
	}
	<-h.entered
	if err := h.n.Chain().Close(); err != nil {
		t.Fatal(err)
	}
	h.release <- struct{}{}
	for _, c := range []<-chan putResult{a, b} {
		if r := <-c; !errors.Is(r.err, replica.ErrClosed) {
			t.Errorf("write in the failed commit: %+v, want replica.ErrClosed", r)
		}
	}
	if got, err := h.s.Get(t.Context(), rl.w.Entity, nil); err != nil || len(got.Traits) != 1 {
		t.Errorf("the write committed before: %+v, %v", got, err)
	}
	page, err := h.s.Query(t.Context(), store.Query{Type: "exo.note"})
	if err != nil || len(page.Hits) != 1 || page.Hits[0].Entity.ID != rl.w.Entity {
		t.Errorf("index after the failed commit: %+v, %v; want the one entity committed", page, err)
	}
}

// TestGroupCommitClose: Close while writes wait in the queue fails them
// with ErrClosed (the commit under way ends as it would), and leaves no
// goroutine behind (TestMain checks).
func TestGroupCommitClose(t *testing.T) {
	h := holdCommits(t, 53)
	lead := h.put(t, store.EntityID{}, note("lead"))
	<-h.entered
	a := h.put(t, store.EntityID{}, note("a"))
	b := h.put(t, store.EntityID{}, note("b"))
	h.queued(t, 2)
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []<-chan putResult{a, b} {
		if r := <-c; !errors.Is(r.err, service.ErrClosed) {
			t.Errorf("queued write at Close: %+v, want ErrClosed", r)
		}
	}
	h.release <- struct{}{}
	if r := <-lead; r.err != nil {
		t.Errorf("the commit under way at Close: %v", r.err)
	}
	if _, err := h.s.Put(t.Context(), store.EntityID{}, []store.Trait{note("late")}); !errors.Is(err, service.ErrClosed) {
		t.Errorf("Put after Close: %v, want ErrClosed", err)
	}
}

// TestGroupCommitCancel: a write whose ctx ends while it waits in the
// queue leaves it with ctx's error and is not committed; the others are.
func TestGroupCommitCancel(t *testing.T) {
	h := holdCommits(t, 54)
	start := h.length(t)
	lead := h.put(t, store.EntityID{}, note("lead"))
	<-h.entered
	ctx, cancel := context.WithCancel(t.Context())
	gone := make(chan error, 1)
	go func() {
		_, err := h.s.Put(ctx, store.EntityID{}, []store.Trait{note("gone")})
		gone <- err
	}()
	h.queued(t, 1)
	kept := h.put(t, store.EntityID{}, note("kept"))
	h.queued(t, 2)
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("write canceled in the queue: %v, want context.Canceled", err)
	}
	h.queued(t, 1)
	h.release <- struct{}{}
	<-h.entered
	h.release <- struct{}{}
	for _, c := range []<-chan putResult{lead, kept} {
		if r := <-c; r.err != nil {
			t.Fatal(r.err)
		}
	}
	if got := h.length(t) - start; got != 2 {
		t.Errorf("%d chain entries, want 2 (the canceled write not among them)", got)
	}
	page, err := h.s.Query(t.Context(), store.Query{Type: "exo.note"})
	if err != nil || len(page.Hits) != 2 {
		t.Errorf("index: %+v, %v; want the 2 writes committed, not the canceled one", page, err)
	}
}
