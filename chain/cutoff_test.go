package chain

import (
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// cutAt returns c's roster with author removed, cut off at its entries
// with sequence number seq among es.
func cutAt(c *testCell, author peer.ID, seq uint64, es ...*Entry) testRoster {
	r := testRoster{authors: make(map[peer.ID]bool), upTo: c.roster.upTo, cut: map[peer.ID]testCut{}}
	for id := range c.roster.authors {
		r.authors[id] = id != author
	}
	var last []cid.Cid
	for _, e := range es {
		if e.Author == author && e.Seq == seq {
			last = append(last, e.CID())
		}
	}
	r.cut[author] = testCut{seq: seq, last: SortCIDs(last)}
	return r
}

// TestVerifyPastCutoff: once an author is removed, Verify refuses every
// entry of its past the cut-off, whatever the epoch (one it may still
// write in included), and one at the cut-off that the cut-off does not
// name (a fork made later); what it wrote up to the cut-off passes.
func TestVerifyPastCutoff(t *testing.T) {
	c := newTestCell(t, 7, 2)
	s := NewState(c.key)
	gone := c.authors[1]
	e1 := c.append(t, s, gone, []byte("one"))
	e2 := c.append(t, s, gone, []byte("two"))
	r := cutAt(c, gone.id, 2, e2)
	e3 := c.append(t, s, gone, []byte("three, after the removal"))
	fork2 := c.write(t, gone, Draft{Cell: c.key, Seq: 2, Clock: e1.Clock + 1, Parents: []cid.Cid{e1.CID()}, Epoch: 0}, []byte("another two"))
	for _, tt := range []struct {
		name string
		e    *Entry
		want error
	}{
		{"before the cut-off", e1, nil},
		{"at the cut-off", e2, nil},
		{"past the cut-off", e3, ErrPastCutoff},
		{"at the cut-off, not named", fork2, ErrPastCutoff},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.e, c.key, r, c.secret)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
			if Deferred(err) {
				t.Errorf("Deferred(%v): a cut-off is final", err)
			}
		})
	}
	// A removal with nothing held cuts off everything.
	if _, err := Verify(e1, c.key, cutAt(c, gone.id, 0), c.secret); !errors.Is(err, ErrPastCutoff) {
		t.Errorf("cut-off at 0: Verify: %v, want ErrPastCutoff", err)
	}
	// The State knows where it would cut, and whether it holds more.
	if seq, last := s.Last(gone.id); seq != 3 || len(last) != 1 || !last[0].Equals(e3.CID()) {
		t.Errorf("Last = %d, %v; want 3, [%s]", seq, last, e3.CID())
	}
	if !s.BeyondCutoff(r, []peer.ID{gone.id}) {
		t.Error("BeyondCutoff: false with entry 3 held past a cut-off at 2")
	}
	if s.BeyondCutoff(cutAt(c, gone.id, 3, e3), []peer.ID{gone.id}) {
		t.Error("BeyondCutoff: true at the cut-off")
	}
}

// TestParentEpochRule: an entry's epoch is at least its parents' largest.
func TestParentEpochRule(t *testing.T) {
	c := newTestCell(t, 8, 2)
	s := NewState(c.key)
	a, b := c.authors[0], c.authors[1]
	e1 := c.write(t, a, s.Next(a.id, c.key, 1), []byte("epoch 1"))
	if rd := s.Add([]*Entry{e1}); len(rd.Accepted) != 1 {
		t.Fatalf("Add: %+v", rd)
	}
	old := c.write(t, b, s.Next(b.id, c.key, 0), []byte("epoch 0 after epoch 1"))
	rd := s.Add([]*Entry{old})
	if len(rd.Accepted) != 0 || len(rd.Rejected) != 1 || !errors.Is(rd.Rejected[0].Err, ErrBadLink) {
		t.Fatalf("Add of an entry in an epoch below its parent's: %+v", rd)
	}
	same := c.write(t, b, s.Next(b.id, c.key, 1), []byte("epoch 1 after epoch 1"))
	if rd := s.Add([]*Entry{same}); len(rd.Accepted) != 1 {
		t.Fatalf("Add of an entry in its parent's epoch: %+v", rd)
	}
}
