package chain

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// forkFlood returns an author's first entry and n entries of its that all
// have sequence number 2 on it: n−1 forks.
func forkFlood(cell []byte, author peer.ID, n int) (*Entry, []*Entry) {
	root := fakeEntry(cell, author, 1, 1, fakeCID(0))
	flood := make([]*Entry, n)
	for i := range flood {
		flood[i] = fakeEntry(cell, author, 2, 2, fakeCID(uint64(i+1)), root.CID())
	}
	return root, flood
}

// TestForkEvidenceBounded: however many entries one author writes with
// one sequence number, the State keeps two of them, reports the fork
// once, and refuses the others as ErrForked (not a broken rule).
func TestForkEvidenceBounded(t *testing.T) {
	cell := cellKey("test cell")
	const author = peer.ID("forker")
	root, flood := forkFlood(cell, author, 300)
	s := NewState(cell)
	s.Add([]*Entry{root})
	reported, refused := 0, 0
	for i := 0; i < len(flood); {
		n := min(1+i/10, len(flood)-i) // one by one first, then in batches
		rd := s.Add(flood[i : i+n])
		i += n
		reported += len(rd.Forks)
		for _, r := range rd.Rejected {
			if !errors.Is(r.Err, ErrForked) || errors.Is(r.Err, ErrBadLink) || r.Author != author {
				t.Fatalf("after %d forked entries: refused %s with %v", i, r.CID, r.Err)
			}
			refused++
		}
		if s.Len() != min(1+i, 3) || s.Waiting() != 0 {
			t.Fatalf("after %d forked entries: Len %d, waiting %d; want the root and two", i, s.Len(), s.Waiting())
		}
		fs := s.Forks()
		if i >= 2 && (len(fs) != 1 || len(fs[0].CIDs) != MaxForkWidth) {
			t.Fatalf("after %d forked entries: evidence %v, want one fork of %d entries", i, fs, MaxForkWidth)
		}
	}
	if reported != 1 || refused != len(flood)-MaxForkWidth {
		t.Fatalf("reported %d forks, refused %d entries; want 1 and %d", reported, refused, len(flood)-MaxForkWidth)
	}
	if h := [4]int{s.Held(author, 0), s.Held(author, 1), s.Held(author, 2), s.Held(author, 3)}; h != [4]int{0, 1, MaxForkWidth, 0} {
		t.Errorf("Held at sequence numbers 0 to 3 = %v", h)
	}
	want := Fork{Author: author, Seq: 2, CIDs: SortCIDs([]cid.Cid{flood[0].CID(), flood[1].CID()})}
	if diff := cmp.Diff([]Fork{want}, s.Forks(), cmpOpts); diff != "" {
		t.Errorf("Forks (-want +got):\n%s", diff)
	}
	// A refused entry stays refused, and so do the entries built on it.
	child := fakeEntry(cell, "honest", 1, 3, fakeCID(1_000), flood[5].CID())
	rd := s.Add([]*Entry{child, flood[5]})
	if len(rd.Accepted) != 0 || len(rd.Rejected) != 2 || s.Waiting() != 0 {
		t.Fatalf("a refused fork and its child: %+v", rd)
	}
	for _, r := range rd.Rejected {
		if !errors.Is(r.Err, ErrForked) {
			t.Errorf("%s refused with %v, want ErrForked", r.CID, r.Err)
		}
	}
	// Entries on the two kept branches still join.
	on := fakeEntry(cell, "honest", 1, 3, fakeCID(1_001), flood[1].CID())
	if rd := s.Add([]*Entry{on}); len(rd.Accepted) != 1 {
		t.Fatalf("an entry on a kept branch: %+v", rd)
	}
}

// TestForkEvidenceLowest: the evidence kept is the lowest forked sequence
// number's two entries, whatever order the forks came in; the author is
// reported once.
func TestForkEvidenceLowest(t *testing.T) {
	cell := cellKey("test cell")
	const a = peer.ID("forker")
	a1 := fakeEntry(cell, a, 1, 1, fakeCID(1))
	a2x := fakeEntry(cell, a, 2, 2, fakeCID(2), a1.CID())
	a2y := fakeEntry(cell, a, 2, 2, fakeCID(3), a1.CID())
	a3x := fakeEntry(cell, a, 3, 3, fakeCID(4), a2x.CID())
	a3z := fakeEntry(cell, a, 3, 3, fakeCID(5), a2x.CID())
	a3y := fakeEntry(cell, a, 3, 3, fakeCID(6), a2y.CID())
	want := []Fork{{Author: a, Seq: 2, CIDs: SortCIDs([]cid.Cid{a2x.CID(), a2y.CID()})}}
	for _, order := range [][]*Entry{
		{a1, a2x, a3x, a3z, a2y, a3y},
		{a1, a2x, a2y, a3x, a3z, a3y},
		{a1, a2y, a2x, a3z, a3x, a3y},
	} {
		s := NewState(cell)
		reported := 0
		for _, e := range order {
			reported += len(s.Add([]*Entry{e}).Forks)
		}
		if diff := cmp.Diff(want, s.Forks(), cmpOpts); diff != "" || reported != 1 {
			t.Errorf("reported %d; Forks (-want +got):\n%s", reported, diff)
		}
		if s.Len() != 5 {
			t.Errorf("Len %d, want 5: two entries at each forked sequence number", s.Len())
		}
	}
}

// TestForksSameOnEveryNode: States holding the same entries list the same
// evidence, whatever order the forks came in.
func TestForksSameOnEveryNode(t *testing.T) {
	cell := cellKey("test cell")
	var es []*Entry
	for i, a := range []peer.ID{"x forker", "y forker"} {
		root := fakeEntry(cell, a, 1, 1, fakeCID(uint64(10*i)))
		es = append(es, root,
			fakeEntry(cell, a, 2, 2, fakeCID(uint64(10*i+1)), root.CID()),
			fakeEntry(cell, a, 2, 2, fakeCID(uint64(10*i+2)), root.CID()))
	}
	x, y := NewState(cell), NewState(cell)
	x.Add(es)
	y.Add(es[3:])
	y.Add(es[:3])
	if diff := cmp.Diff(x.Forks(), y.Forks(), cmpOpts); diff != "" || len(x.Forks()) != 2 {
		t.Errorf("Forks differ (-x +y):\n%s", diff)
	}
}

// TestForkRefusedBeforeParents: an entry that can only widen a fork past
// two is refused at once, even while its parents are missing: it does not
// take a place among the waiting.
func TestForkRefusedBeforeParents(t *testing.T) {
	cell := cellKey("test cell")
	const author = peer.ID("forker")
	root, flood := forkFlood(cell, author, 2)
	s := NewState(cell)
	s.Add(slices.Concat([]*Entry{root}, flood))
	late := fakeEntry(cell, author, 2, 3, fakeCID(50), root.CID(), fakeCID(51))
	rd := s.Add([]*Entry{late})
	if len(rd.Rejected) != 1 || !errors.Is(rd.Rejected[0].Err, ErrForked) || s.Waiting() != 0 {
		t.Fatalf("a third entry at a forked sequence number, its parents missing: %+v", rd)
	}
}
