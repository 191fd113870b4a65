package chain

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// sizedEntry is a fakeEntry whose encoding is size bytes long.
func sizedEntry(cell []byte, author peer.ID, seq, clock uint64, id cid.Cid, size int, parents ...cid.Cid) *Entry {
	e := fakeEntry(cell, author, seq, clock, id, parents...)
	e.raw = make([]byte, size)
	return e
}

// TestWaitingBytes: entries waiting for their parents are bounded in
// bytes, per author and overall; what does not fit is dropped with its
// reason counted, and joins when given again once its parents are held.
func TestWaitingBytes(t *testing.T) {
	cell := cellKey("test cell")
	const size = 10_000
	lim := Limits{Waiting: 100, WaitingBytes: 10 * size, AuthorBytes: 3 * size}
	cost := waitingCost(sizedEntry(cell, "x", 1, 2, fakeCID(0), size, fakeCID(1)), 1)
	if cost <= size || 3*cost <= lim.AuthorBytes || 9*cost > lim.WaitingBytes {
		t.Fatalf("a waiting entry of %d bytes costs %d: the test's limits do not fit", size, cost)
	}
	s := NewState(cell)
	s.SetLimits(lim)
	root := fakeEntry(cell, "root", 1, 1, fakeCID(0))
	// One author's chain on a missing root: two fit its share.
	var mine []*Entry
	prev := root.CID()
	for i := range 4 {
		e := sizedEntry(cell, "greedy", uint64(i+1), uint64(i+2), fakeCID(uint64(100+i)), size, SortCIDs([]cid.Cid{root.CID(), prev})...)
		if i == 0 {
			e.Parents = []cid.Cid{root.CID()}
		}
		mine = append(mine, e)
		prev = e.CID()
	}
	rd := s.Add(mine)
	greedy := waitingCost(mine[0], 1) + waitingCost(mine[1], 2)
	if rd.Waiting != 2 || rd.Dropped != 2 || rd.DroppedAuthor != 2 || s.WaitingBytes() != greedy {
		t.Fatalf("one author's 4 orphans: waiting %d, dropped %d (author %d), %d bytes; want 2, 2, 2, %d", rd.Waiting, rd.Dropped, rd.DroppedAuthor, s.WaitingBytes(), greedy)
	}
	// Others fill the rest; past the overall budget they are dropped too.
	var others []*Entry
	for i := range 9 {
		others = append(others, sizedEntry(cell, peer.ID(fmt.Sprint("other ", i)), 1, 2, fakeCID(uint64(200+i)), size, root.CID()))
	}
	rd = s.Add(others)
	if rd.Waiting != 9 || rd.Dropped != 2 || rd.DroppedAuthor != 0 || s.WaitingBytes() != greedy+7*cost {
		t.Fatalf("9 more orphans: waiting %d, dropped %d (author %d), %d bytes; want 9, 2, 0, %d", rd.Waiting, rd.Dropped, rd.DroppedAuthor, s.WaitingBytes(), greedy+7*cost)
	}
	for _, e := range []*Entry{mine[2], mine[3], others[7], others[8]} {
		if s.Has(e.CID(), true) {
			t.Errorf("dropped entry %s is held", e.CID())
		}
	}
	// The count bound holds too.
	small := NewState(cell)
	small.SetLimits(Limits{Waiting: 3, WaitingBytes: lim.WaitingBytes, AuthorBytes: lim.AuthorBytes})
	if rd := small.Add(others); rd.Waiting != 3 || rd.Dropped != 6 {
		t.Errorf("count bound of 3: waiting %d, dropped %d", rd.Waiting, rd.Dropped)
	}
	// The root releases everything; the dropped entries join when given
	// again.
	rd = s.Add([]*Entry{root})
	if len(rd.Accepted) != 10 || s.Waiting() != 0 || s.WaitingBytes() != 0 {
		t.Fatalf("Add of the root: %d accepted, %d waiting, %d bytes", len(rd.Accepted), s.Waiting(), s.WaitingBytes())
	}
	rd = s.Add([]*Entry{mine[3], others[8], mine[2], others[7]})
	if len(rd.Accepted) != 4 || rd.Waiting != 0 || len(rd.Rejected) != 0 {
		t.Fatalf("the dropped entries, again: %+v", rd)
	}
	if len(s.waitingByAuthor) != 0 {
		t.Errorf("per-author accounts left: %v", s.waitingByAuthor)
	}
}

// TestWaitingKeepsRawBytes: a waiting entry holds its encoding once (its
// payload and signature share it), not a decoded copy beside it.
func TestWaitingKeepsRawBytes(t *testing.T) {
	const n = 20
	c := newTestCell(t, 8, n+1)
	src := NewState(c.key)
	a1 := c.append(t, src, c.authors[0], []byte("a1"))
	var orphans []*Entry
	for i := range n {
		d := Draft{Cell: c.key, Seq: 1, Clock: 2, Parents: []cid.Cid{a1.CID()}, Epoch: testEpoch}
		orphans = append(orphans, c.write(t, c.authors[i+1], d, make([]byte, MaxPayload)))
	}
	s := NewState(c.key)
	s.SetLimits(Limits{Waiting: n, WaitingBytes: 1 << 30, AuthorBytes: 1 << 30})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	// Decoded again, as the shell hands them over: raw and payload apart.
	fresh := make([]*Entry, n)
	for i, e := range orphans {
		var err error
		if fresh[i], err = Decode(e.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	rd := s.Add(fresh)
	fresh = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(orphans)
	if rd.Waiting != n {
		t.Fatalf("waiting %d, want %d", rd.Waiting, n)
	}
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if limit := int64(n) * (MaxPayload + MaxPayload/4); held > limit {
		t.Errorf("%d waiting entries of %d KiB hold %d KiB more heap, want at most %d KiB", n, MaxPayload>>10, held>>10, limit>>10)
	}
	rd = s.Add([]*Entry{a1})
	if len(rd.Accepted) != n+1 {
		t.Fatalf("release: %d accepted, rejected %v", len(rd.Accepted), rd.Rejected)
	}
	for _, e := range rd.Accepted {
		if _, err := Verify(e, c.key, c.roster, c.secret); err != nil {
			t.Fatalf("a released entry no longer verifies: %v", err)
		}
	}
}

// FuzzWaitingBudget adds entries of a fixed set in an order and batches
// the input chooses, under small waiting limits it chooses too: the
// budget's accounts stay exact and within the limits, a valid entry is
// never refused, and once every valid entry is given parents first the
// State is the one that got them in order (nothing dropped is lost).
func FuzzWaitingBudget(f *testing.F) {
	sc := newStateCorpus(f)
	n := len(sc.all)
	all := make([]byte, n)
	for i := range all {
		all[i] = byte(i)
	}
	rev := slices.Clone(all)
	slices.Reverse(rev)
	f.Add(byte(3), byte(2), byte(4), rev)
	f.Add(byte(0), byte(0), byte(0), rev)
	f.Add(byte(7), byte(7), byte(7), slices.Concat(rev, []byte{byte(n)}, all))
	ref := viewOf(refState(f, sc.cell, sc.order))
	f.Fuzz(func(t *testing.T, count, author, total byte, data []byte) {
		data = data[:min(len(data), 3*(n+1))]
		const unit = 700 // about one small entry's cost
		lim := Limits{Waiting: 1 + int(count%8), AuthorBytes: unit * (1 + int(author%4)), WaitingBytes: unit * (1 + int(total%8))}
		s := NewState(sc.cell.key)
		s.SetLimits(lim)
		add := func(batch []*Entry) {
			rd := s.Add(batch)
			for _, r := range rd.Rejected {
				if sc.valid[r.CID] != nil {
					t.Fatalf("refused a valid entry: %v", r.Err)
				}
			}
			checkWaiting(t, s, lim)
			if rd.Waiting != s.Waiting() || rd.DroppedAuthor > rd.Dropped {
				t.Fatalf("Ready.Waiting %d, Waiting() %d, dropped %d (author %d)", rd.Waiting, s.Waiting(), rd.Dropped, rd.DroppedAuthor)
			}
		}
		var batch []*Entry
		for _, b := range data {
			if i := int(b) % (n + 1); i < n {
				batch = append(batch, sc.all[i])
				continue
			}
			add(batch)
			batch = nil
		}
		add(batch)
		add(sc.order)
		got := viewOf(s)
		got.Waiting = ref.Waiting
		if diff := cmp.Diff(ref, got, cmpOpts); diff != "" {
			t.Fatalf("after every valid entry, parents first, the state differs (-want +got):\n%s", diff)
		}
		for c := range s.waiting {
			if sc.valid[c] != nil {
				t.Fatalf("valid entry %s still waits", c)
			}
		}
	})
}

// checkWaiting checks the waiting budget's accounts against the entries
// waiting, and against lim.
func checkWaiting(t *testing.T, s *State, lim Limits) {
	t.Helper()
	total, byAuthor := 0, make(map[peer.ID]int)
	for c, w := range s.waiting {
		missing := 0
		for _, p := range w.e.Parents {
			if _, ok := s.metas[p]; !ok {
				missing++
				if !slices.Contains(s.blocked[p], w) {
					t.Fatalf("%s waits for %s but is not blocked on it", c, p)
				}
			}
		}
		if missing == 0 || missing != w.missing {
			t.Fatalf("%s waits for %d parents, counted %d", c, missing, w.missing)
		}
		total += w.cost
		byAuthor[w.e.Author] += w.cost
	}
	records, live := 0, 0
	for p, l := range s.blocked {
		records += len(l)
		for _, w := range l {
			if s.waiting[w.c] == w {
				live++
				if !slices.Contains(w.e.Parents, p) {
					t.Fatalf("%s is blocked on %s, not its parent", w.c, p)
				}
			}
		}
	}
	if records != s.records || live != s.live || records-live > live+compactSlack {
		t.Fatalf("records of missing parents: %d (counted %d), %d live (counted %d)", records, s.records, live, s.live)
	}
	if total != s.WaitingBytes() || !maps.Equal(byAuthor, s.waitingByAuthor) {
		t.Fatalf("accounts: %d bytes, %v; entries waiting: %d bytes, %v", s.WaitingBytes(), s.waitingByAuthor, total, byAuthor)
	}
	if len(s.waiting) > lim.Waiting || total > lim.WaitingBytes {
		t.Fatalf("%d entries of %d bytes wait, limits %+v", len(s.waiting), total, lim)
	}
	for a, b := range byAuthor {
		if b > lim.AuthorBytes {
			t.Fatalf("author %s: %d bytes wait, limit %d", a, b, lim.AuthorBytes)
		}
	}
}

// TestWaitingRefusedParentForgotten: an entry waiting for two parents is
// refused with the first (a parent that breaks the rules); it leaves no
// record behind on the other, so that given again it waits for both
// again, is not released when only the other comes (that joined it with a
// parent missing: a nil dereference), and an author repeating this does
// not grow the State past its budget.
func TestWaitingRefusedParentForgotten(t *testing.T) {
	cell := cellKey("test cell")
	s := NewState(cell)
	lim := Limits{Waiting: 8, WaitingBytes: 8 * 1024, AuthorBytes: 8 * 1024}
	s.SetLimits(lim)
	root := fakeEntry(cell, "root", 1, 1, fakeCID(0))
	if rd := s.Add([]*Entry{root}); len(rd.Accepted) != 1 {
		t.Fatalf("Add of the root: %+v", rd)
	}
	good := fakeEntry(cell, "good", 1, 2, fakeCID(1), root.CID())
	for i := range 1000 {
		// bad breaks the rules (its clock is wrong); x waits for bad
		// and good.
		bad := fakeEntry(cell, "bad", 1, 9, fakeCID(uint64(1000+i)), root.CID())
		x := fakeEntry(cell, "x", 1, 10, fakeCID(uint64(100_000+i)), bad.CID(), good.CID())
		if rd := s.Add([]*Entry{x}); rd.Waiting != 1 {
			t.Fatalf("round %d: x does not wait: %+v", i, rd)
		}
		rd := s.Add([]*Entry{bad})
		if len(rd.Rejected) != 2 || s.Waiting() != 0 {
			t.Fatalf("round %d: bad and x are not both refused: %+v", i, rd)
		}
		checkWaiting(t, s, lim)
		if i == 0 {
			// Given again, x waits for both again.
			if rd := s.Add([]*Entry{x}); rd.Waiting != 1 {
				t.Fatalf("x given again does not wait: %+v", rd)
			}
			checkWaiting(t, s, lim)
			rd := s.Add([]*Entry{good})
			if len(rd.Accepted) != 1 || rd.Accepted[0] != good || s.Waiting() != 1 || !s.Has(x.CID(), true) || s.Has(x.CID(), false) {
				t.Fatalf("good joins: accepted %d, waiting %d; want good alone, and x waiting for bad", len(rd.Accepted), s.Waiting())
			}
			checkWaiting(t, s, lim)
			s.Add([]*Entry{bad})
		}
	}
	checkWaiting(t, s, lim)
	if n := blockedRecords(s); n > 64 {
		t.Fatalf("after 1000 entries refused with one of two missing parents, %d records of missing parents are kept, for %d entries waiting", n, s.Waiting())
	}
}

// blockedRecords counts the records of missing parents a State keeps.
func blockedRecords(s *State) int {
	n := 0
	for _, l := range s.blocked {
		n += len(l)
	}
	return n
}

// BenchmarkRefusedParentFlood: 100,000 entries wait for two parents, one
// shared by all; the other, refused, takes them all down with it. Each
// leaves a stale record on the shared parent, which compactBlocked removes
// in one pass (removing them one by one would scan the shared list each
// time: quadratic).
func BenchmarkRefusedParentFlood(b *testing.B) {
	const n = 100_000
	cell := cellKey("test cell")
	root := fakeEntry(cell, "root", 1, 1, fakeCID(0))
	bad := fakeEntry(cell, "bad", 1, 9, fakeCID(1), root.CID())
	shared := fakeCID(2)
	es := make([]*Entry, n)
	for i := range es {
		es[i] = fakeEntry(cell, peer.ID(fmt.Sprint("x", i%1000)), uint64(i/1000+1), 10, fakeCID(uint64(10+i)), bad.CID(), shared)
	}
	b.ReportAllocs()
	for b.Loop() {
		s := NewState(cell)
		s.SetLimits(Limits{Waiting: n, WaitingBytes: 1 << 30, AuthorBytes: 1 << 30})
		s.Add([]*Entry{root})
		if rd := s.Add(es); rd.Waiting != n {
			b.Fatalf("%d waiting, want %d", rd.Waiting, n)
		}
		if rd := s.Add([]*Entry{bad}); len(rd.Rejected) != n+1 || s.Waiting() != 0 {
			b.Fatalf("%d refused, %d waiting", len(rd.Rejected), s.Waiting())
		}
		if len(s.blocked) != 0 {
			b.Fatalf("%d parents still blocked", len(s.blocked))
		}
	}
}
