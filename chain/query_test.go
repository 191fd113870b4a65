package chain

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Tests of what a State answers: Missing, Behind and Ahead, Restore and
// Arrivals, Log and Rank, positions, and Next.

// subsetState returns a State fed a random subset of es (the entries
// whose parents are held join, the others wait), and the CIDs it holds.
func subsetState(c *testCell, rng *rand.Rand, es []*Entry) (*State, map[cid.Cid]bool) {
	s := NewState(c.key)
	var pick []*Entry
	for _, e := range es {
		if rng.IntN(3) > 0 {
			pick = append(pick, e)
		}
	}
	rng.Shuffle(len(pick), func(i, j int) { pick[i], pick[j] = pick[j], pick[i] })
	s.Add(pick)
	held := make(map[cid.Cid]bool)
	for _, c := range s.Log(Pos{}, s.Len()) {
		held[c] = true
	}
	return s, held
}

func TestMissing(t *testing.T) {
	for _, seed := range dagSeeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			c := newTestCell(t, seed, 4)
			all, states := randomDAG(t, c, seed, 120, 4)
			ref := refState(t, c, all)
			full := ref.Log(Pos{}, ref.Len())
			byCID := indexByCID(all)
			rng := rand.New(rand.NewPCG(seed, 0x5b5e7))
			for i := range 12 {
				var s *State
				var held map[cid.Cid]bool
				if i < len(states) {
					s, held = states[i], make(map[cid.Cid]bool)
					for _, c := range s.Log(Pos{}, s.Len()) {
						held[c] = true
					}
				} else {
					s, held = subsetState(c, rng, all)
				}
				var want []cid.Cid
				for _, c := range full {
					if !held[c] {
						want = append(want, c)
					}
				}
				v := s.Vector()
				if diff := cmp.Diff(want, ref.Missing(v, nil), cmpOpts); diff != "" {
					t.Fatalf("state %d: Missing (-want +got):\n%s", i, diff)
				}
				if got := ref.Behind(v); got != len(want) {
					t.Errorf("state %d: Behind = %d, want %d", i, got, len(want))
				}
				if ref.Ahead(v, nil) {
					t.Errorf("state %d: Ahead of the full state", i)
				}
				if got := s.Ahead(ref.Vector(), nil); got != (len(want) > 0) {
					t.Errorf("state %d: Ahead(full) = %v with %d missing", i, got, len(want))
				}
				if got := s.Missing(v, nil); len(got) != 0 {
					t.Errorf("state %d: misses %d of its own entries", i, len(got))
				}
				// What Missing names makes the State whole, releasing
				// the entries it had waiting.
				pull(t, s, ref, byCID)
				if diff := cmp.Diff(viewOf(ref), viewOf(s), cmpOpts); diff != "" {
					t.Fatalf("state %d after a pull (-want +got):\n%s", i, diff)
				}
			}
			if diff := cmp.Diff(full, ref.Missing(nil, nil), cmpOpts); diff != "" {
				t.Errorf("Missing(nil) is not the whole log (-want +got):\n%s", diff)
			}
			v := ref.Vector()
			if got := ref.Missing(v, nil); len(got) != 0 || ref.Behind(v) != 0 || ref.Ahead(v, nil) {
				t.Errorf("own Vector: Missing %d, Behind %d, Ahead %v", len(got), ref.Behind(v), ref.Ahead(v, nil))
			}
			v["stranger"] = 1
			if got := ref.Missing(v, nil); len(got) != 0 || !ref.Ahead(v, nil) {
				t.Errorf("an unknown author: Missing %d, Ahead %v", len(got), ref.Ahead(v, nil))
			}
		})
	}
}

func TestRestore(t *testing.T) {
	const seed = 9
	c := newTestCell(t, seed, 3)
	all, _ := randomDAG(t, c, seed, 80, 4)
	byCID := indexByCID(all)
	// Arrivals in an order that is not the chain's.
	rng := rand.New(rand.NewPCG(seed, 1))
	shuffled := slices.Clone(all)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	ref := NewState(c.key)
	ref.Add(shuffled)
	arrivals := ref.Arrivals(0, ref.Len())
	if len(arrivals) != len(all) {
		t.Fatalf("Arrivals: %d of %d", len(arrivals), len(all))
	}
	s := NewState(c.key)
	for i, m := range arrivals {
		if m.Index != uint64(i) {
			t.Fatalf("Arrivals[%d].Index = %d", i, m.Index)
		}
		if f, err := s.Restore(byCID[m.CID]); err != nil || f != nil {
			t.Fatalf("Restore(%d) = %v, %v", i, f, err)
		}
	}
	if diff := cmp.Diff(viewOf(ref), viewOf(s), cmpOpts); diff != "" {
		t.Errorf("restored state differs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(arrivals, s.Arrivals(0, s.Len()), cmpOpts); diff != "" {
		t.Errorf("restored arrivals differ (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ref.Next(c.authors[0].id, c.key, 1), s.Next(c.authors[0].id, c.key, 1), cmpOpts); diff != "" {
		t.Errorf("restored Next differs (-want +got):\n%s", diff)
	}
	// Arrivals pages.
	var paged []*Meta
	for from := uint64(0); ; from += 7 {
		page := s.Arrivals(from, 7)
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
	}
	if diff := cmp.Diff(arrivals, paged, cmpOpts); diff != "" {
		t.Errorf("paged arrivals differ (-want +got):\n%s", diff)
	}
	if got := s.Arrivals(0, 0); len(got) != 0 {
		t.Errorf("Arrivals(0, 0) = %d", len(got))
	}
	if got := s.Arrivals(math.MaxUint64, math.MaxInt); got != nil {
		t.Errorf("Arrivals past the end = %d", len(got))
	}
	if got := s.Arrivals(3, math.MaxInt); len(got) != len(all)-3 {
		t.Errorf("Arrivals(3, MaxInt) = %d", len(got))
	}

	// Restoring twice is a no-op; out of order or of another cell fails.
	if f, err := s.Restore(all[0]); f != nil || err != nil || s.Len() != len(all) {
		t.Errorf("Restore of a held entry = %v, %v", f, err)
	}
	empty := NewState(c.key)
	if _, err := empty.Restore(all[len(all)-1]); !errors.Is(err, ErrBadLink) {
		t.Errorf("Restore before the parents: %v", err)
	}
	other := NewState(cellKey("other cell"))
	if _, err := other.Restore(all[0]); !errors.Is(err, ErrOtherCell) {
		t.Errorf("Restore into another cell: %v", err)
	}
	// A fork is reported by Restore too.
	a := c.authors[0]
	f1 := c.write(t, a, Draft{Cell: c.key, Seq: 1, Clock: 1, Epoch: testEpoch}, []byte("one"))
	f2 := c.write(t, a, Draft{Cell: c.key, Seq: 1, Clock: 1, Epoch: testEpoch}, []byte("two"))
	if f, err := empty.Restore(f1); f != nil || err != nil {
		t.Fatalf("Restore = %v, %v", f, err)
	}
	f, err := empty.Restore(f2)
	if err != nil || f == nil || f.Author != a.id || f.Seq != 1 || len(f.CIDs) != 2 || len(empty.Forks()) != 1 {
		t.Errorf("Restore of a fork = %+v, %v", f, err)
	}
}

func TestLogCursor(t *testing.T) {
	const seed = 11
	c := newTestCell(t, seed, 3)
	all, _ := randomDAG(t, c, seed, 60, 4)
	s := refState(t, c, all)
	n := s.Len()
	full := s.Log(Pos{}, n)
	pos := func(c cid.Cid) Pos {
		m, ok := s.Meta(c)
		if !ok {
			t.Fatalf("no Meta of %s", c)
		}
		return m.Pos()
	}
	for _, limit := range []int{1, 2, 7, n - 1, n, n + 10, math.MaxInt} {
		var paged []cid.Cid
		after := Pos{}
		for {
			page := s.Log(after, limit)
			if len(page) == 0 {
				break
			}
			if len(page) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(page))
			}
			paged = append(paged, page...)
			after = pos(page[len(page)-1])
		}
		if diff := cmp.Diff(full, paged, cmpOpts); diff != "" {
			t.Errorf("limit %d: paged log differs (-want +got):\n%s", limit, diff)
		}
	}
	for i, c := range full {
		if got := s.Rank(pos(c)); got != i {
			t.Errorf("Rank(Log[%d]) = %d", i, got)
		}
		if diff := cmp.Diff(full[i+1:], s.Log(pos(c), math.MaxInt), cmpOpts); diff != "" {
			t.Errorf("Log after Log[%d] (-want +got):\n%s", i, diff)
		}
	}
	// A position that is not an entry's: the clock alone.
	maxClock := pos(full[n-1]).Clock
	for clock := uint64(0); clock <= maxClock+1; clock++ {
		var want []cid.Cid
		for _, c := range full {
			if pos(c).Clock >= clock {
				want = append(want, c)
			}
		}
		if got := s.Rank(Pos{Clock: clock}); got != n-len(want) {
			t.Errorf("Rank(clock %d) = %d, want %d", clock, got, n-len(want))
		}
		if diff := cmp.Diff(want, s.Log(Pos{Clock: clock}, n), cmpOpts); diff != "" {
			t.Errorf("Log from clock %d (-want +got):\n%s", clock, diff)
		}
	}
	for _, limit := range []int{0, -1, math.MinInt} {
		if got := s.Log(Pos{}, limit); len(got) != 0 {
			t.Errorf("Log(limit %d) = %d entries", limit, len(got))
		}
	}
	if got := NewState(c.key).Log(Pos{}, 10); len(got) != 0 {
		t.Errorf("Log of an empty State = %v", got)
	}
}

func TestPos(t *testing.T) {
	id := fakeCID(1)
	p := Pos{Clock: 42, CID: id}
	for _, p := range []Pos{{}, p, {Clock: math.MaxInt64, CID: id}} {
		got, err := ParsePos(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePos(%q) = %v, %v", p.String(), got, err)
		}
	}
	if got, err := ParsePos(""); err != nil || got != (Pos{}) {
		t.Errorf("ParsePos(\"\") = %v, %v", got, err)
	}
	if s := p.String(); s != "42."+id.String() {
		t.Errorf("String = %q", s)
	}
	for _, s := range []string{
		"42",
		"x." + id.String(),
		"0." + id.String(),
		"-1." + id.String(),
		strconv.FormatUint(math.MaxInt64+1, 10) + "." + id.String(),
		"42.",
		"42.notacid",
		"." + id.String(),
	} {
		if got, err := ParsePos(s); err == nil {
			t.Errorf("ParsePos(%q) = %v, want an error", s, got)
		}
	}
	// Compare: by clock, then by CID bytes.
	a, b := fakeCID(1), fakeCID(2)
	if bytes.Compare(a.Bytes(), b.Bytes()) > 0 {
		a, b = b, a
	}
	ordered := []Pos{{}, {Clock: 1}, {Clock: 1, CID: a}, {Clock: 1, CID: b}, {Clock: 2, CID: a}}
	for i := range ordered {
		for j := range ordered {
			if got, want := ordered[i].Compare(ordered[j]), cmpInt(i, j); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestNext(t *testing.T) {
	c := newTestCell(t, 12, 3)
	a, b, x := c.authors[0], c.authors[1], c.authors[2]
	s := NewState(c.key)
	if got := s.Next(a.id, c.key, 5); got.Seq != 1 || got.Clock != 1 || len(got.Parents) != 0 || got.Epoch != 5 || !bytes.Equal(got.Cell, c.key) {
		t.Errorf("first Next = %+v", got)
	}
	a1 := c.append(t, s, a, nil)
	b1 := c.append(t, s, b, nil)
	b2 := c.append(t, s, b, nil)
	// a1 is no head any more, but a's next entry still links it.
	want := Draft{Cell: c.key, Seq: 2, Clock: b2.Clock + 1, Parents: SortCIDs([]cid.Cid{a1.CID(), b2.CID()}), Epoch: testEpoch}
	if diff := cmp.Diff(want, s.Next(a.id, c.key, testEpoch), cmpOpts); diff != "" {
		t.Errorf("Next (-want +got):\n%s", diff)
	}
	if got := s.Next(x.id, c.key, testEpoch); got.Seq != 1 || len(got.Parents) != 1 || !got.Parents[0].Equals(b2.CID()) {
		t.Errorf("Next of a new author = %+v", got)
	}
	if m, ok := s.Meta(b1.CID()); !ok || m.Seq != 1 || m.Author != b.id || m.Index != 1 {
		t.Errorf("Meta(b1) = %+v, %v", m, ok)
	}
	if _, ok := s.Meta(fakeCID(1)); ok {
		t.Error("Meta of an unknown entry")
	}
	if !bytes.Equal(s.Cell(), c.key) {
		t.Errorf("Cell = %x", s.Cell())
	}
}

// TestNextManyHeads: with more heads than MaxParents, Next keeps the
// latest and the author's own last entry, for a new author and for one
// with entries.
func TestNextManyHeads(t *testing.T) {
	c := newTestCell(t, 13, 2)
	a, b := c.authors[0], c.authors[1]
	a1 := c.write(t, a, Draft{Cell: c.key, Seq: 1, Clock: 1, Epoch: testEpoch}, nil)
	heads := []*Entry{a1}
	for i := range MaxParents + 10 {
		heads = append(heads, fakeEntry(c.key, peer.ID(fmt.Sprint("head ", i)), 1, 1, fakeCID(uint64(i))))
	}
	latest := chainOrder(heads)
	slices.Reverse(latest)
	for _, w := range []testAuthor{b, a} {
		s := refState(t, c, heads)
		if len(s.Heads()) != len(heads) {
			t.Fatalf("%d heads", len(s.Heads()))
		}
		d := s.Next(w.id, c.key, testEpoch)
		want := slices.Clone(latest[:MaxParents])
		if w.id == a.id {
			want = append(want[:MaxParents-1], a1.CID())
		}
		if diff := cmp.Diff(SortCIDs(want), d.Parents, cmpOpts); diff != "" || d.Clock != 2 {
			t.Errorf("%s: clock %d, parents (-want +got):\n%s", w.id, d.Clock, diff)
		}
		e := c.write(t, w, d, nil)
		if rd := s.Add([]*Entry{e}); len(rd.Accepted) != 1 {
			t.Errorf("%s: the entry of Next is refused: %v", w.id, rd.Rejected)
		}
	}
}
