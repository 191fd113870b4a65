package chain

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// dagSeeds are the fixed seeds of the random DAGs; a failure names its
// seed in the subtest's name.
var dagSeeds = []uint64{1, 2, 3, 4}

// refState returns a State holding es, added in the order given.
func refState(t testing.TB, c *testCell, es []*Entry) *State {
	t.Helper()
	s := NewState(c.key)
	if rd := s.Add(es); len(rd.Accepted) != len(es) || len(rd.Rejected) != 0 || rd.Waiting != 0 {
		t.Fatalf("Add of %d entries: %d accepted, rejected %v, %d waiting", len(es), len(rd.Accepted), rd.Rejected, rd.Waiting)
	}
	return s
}

func TestStateConverges(t *testing.T) {
	for _, seed := range dagSeeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			c := newTestCell(t, seed, 3+int(seed%3))
			all, states := randomDAG(t, c, seed, 150, 8)
			ref := refState(t, c, all)
			want := viewOf(ref)
			if diff := cmp.Diff(chainOrder(all), want.Log, cmpOpts); diff != "" {
				t.Fatalf("Log is not the entries sorted by Pos (-want +got):\n%s", diff)
			}
			checkOrder(t, ref)
			for _, s := range states {
				checkOrder(t, s)
			}
			// Concurrency happened: entries share a clock, some merge
			// branches.
			clocks, merges := make(map[uint64]int), 0
			for _, e := range all {
				clocks[e.Clock]++
				if len(e.Parents) >= 2 {
					merges++
				}
			}
			if len(clocks) == len(all) || merges == 0 {
				t.Fatalf("no concurrency: %d clocks for %d entries, %d merges", len(clocks), len(all), merges)
			}

			rng := rand.New(rand.NewPCG(seed, 0xfeed))
			for round := range 6 {
				s := NewState(c.key)
				perm := rng.Perm(len(all))
				accepted := make(map[cid.Cid]bool)
				for len(perm) > 0 {
					n := min(len(perm), 1+rng.IntN(25))
					batch := make([]*Entry, n)
					for i, j := range perm[:n] {
						batch[i] = all[j]
					}
					perm = perm[n:]
					rd := s.Add(batch)
					if len(rd.Rejected) != 0 || len(rd.Forks) != 0 || rd.Dropped != 0 {
						t.Fatalf("round %d: rejected %v, forks %v, dropped %d", round, rd.Rejected, rd.Forks, rd.Dropped)
					}
					for _, e := range rd.Accepted {
						for _, p := range e.Parents {
							if !accepted[p] {
								t.Fatalf("round %d: %s accepted before its parent %s", round, e.CID(), p)
							}
						}
						accepted[e.CID()] = true
					}
					if rd.Waiting != s.Waiting() || s.Len() != len(accepted) {
						t.Fatalf("round %d: Ready.Waiting %d, Waiting() %d, Len %d, accepted %d", round, rd.Waiting, s.Waiting(), s.Len(), len(accepted))
					}
					if round%2 == 1 {
						checkOrder(t, s) // sorts the order between batches
					}
				}
				if diff := cmp.Diff(want, viewOf(s), cmpOpts); diff != "" {
					t.Fatalf("round %d: state differs (-want +got):\n%s", round, diff)
				}
				checkOrder(t, s)
			}
		})
	}
}

func TestWaitingReleased(t *testing.T) {
	c := newTestCell(t, 5, 2)
	a, b := c.authors[0], c.authors[1]
	src := NewState(c.key)
	a1 := c.append(t, src, a, []byte("a1"))
	a2 := c.append(t, src, a, []byte("a2"))
	b1 := c.append(t, src, b, []byte("b1"))
	a3 := c.append(t, src, a, []byte("a3"))

	s := NewState(c.key)
	steps := []struct {
		add      []*Entry
		accepted []*Entry
		waiting  int
	}{
		{[]*Entry{a3}, nil, 1},
		{[]*Entry{a3}, nil, 1},
		{[]*Entry{b1, a3}, nil, 2},
		{[]*Entry{a2}, nil, 3},
		{[]*Entry{a1}, []*Entry{a1, a2, b1, a3}, 0},
		{[]*Entry{a1, a2, a3}, nil, 0},
	}
	for i, st := range steps {
		rd := s.Add(st.add)
		if diff := cmp.Diff(st.accepted, rd.Accepted, cmpOpts, cmp.AllowUnexported(Entry{})); diff != "" {
			t.Errorf("step %d: accepted (-want +got):\n%s", i, diff)
		}
		if rd.Waiting != st.waiting || s.Waiting() != st.waiting || len(rd.Rejected) != 0 {
			t.Errorf("step %d: Ready.Waiting %d, Waiting() %d, want %d; rejected %v", i, rd.Waiting, s.Waiting(), st.waiting, rd.Rejected)
		}
		if i == 0 && (!s.Has(a3.CID(), true) || s.Has(a3.CID(), false) || s.Len() != 0) {
			t.Errorf("a waiting entry: Has(waiting) %v, Has %v, Len %d", s.Has(a3.CID(), true), s.Has(a3.CID(), false), s.Len())
		}
	}
	if diff := cmp.Diff(viewOf(src), viewOf(s), cmpOpts); diff != "" {
		t.Errorf("state differs (-want +got):\n%s", diff)
	}
}

// fakeEntry is an entry for State alone (which does not verify): it has
// a made-up CID and no encoding.
func fakeEntry(cell []byte, author peer.ID, seq, clock uint64, id cid.Cid, parents ...cid.Cid) *Entry {
	return &Entry{Cell: cell, Author: author, Seq: seq, Clock: clock, Parents: SortCIDs(parents), id: id}
}

func TestWaitingBound(t *testing.T) {
	const limit = 1_000
	cell := cellKey("test cell")
	s := NewState(cell)
	s.SetLimits(Limits{Waiting: limit})
	root := fakeEntry(cell, "root", 1, 1, fakeCID(0))
	children := make([]*Entry, limit+1)
	for i := range children {
		children[i] = fakeEntry(cell, peer.ID(fmt.Sprint("child ", i)), 1, 2, fakeCID(uint64(i+1)), root.CID())
	}
	if rd := s.Add(children[:limit]); rd.Waiting != limit || rd.Dropped != 0 {
		t.Fatalf("Add of %d orphans: waiting %d, dropped %d", limit, rd.Waiting, rd.Dropped)
	}
	if rd := s.Add(children[limit:]); rd.Waiting != limit || rd.Dropped != 1 || rd.DroppedAuthor != 0 {
		t.Fatalf("Add of one orphan more: waiting %d, dropped %d (author %d)", rd.Waiting, rd.Dropped, rd.DroppedAuthor)
	}
	if s.Has(children[limit].CID(), true) {
		t.Error("the dropped entry is held")
	}
	rd := s.Add([]*Entry{root})
	if len(rd.Accepted) != limit+1 || rd.Waiting != 0 || s.Len() != limit+1 || len(s.blocked) != 0 {
		t.Fatalf("Add of the root: %d accepted, %d waiting, Len %d, %d blocked", len(rd.Accepted), rd.Waiting, s.Len(), len(s.blocked))
	}
	if rd := s.Add(children[limit:]); len(rd.Accepted) != 1 {
		t.Errorf("the dropped entry, again: %d accepted", len(rd.Accepted))
	}
}

func TestForks(t *testing.T) {
	c := newTestCell(t, 6, 2)
	a, b := c.authors[0], c.authors[1]
	// Two States with one key: a1 and a2 in both, then each writes its
	// own a3.
	x, y := NewState(c.key), NewState(c.key)
	a1 := c.append(t, x, a, []byte("a1"))
	a2 := c.append(t, x, a, []byte("a2"))
	y.Add([]*Entry{a1, a2})
	a3x := c.append(t, x, a, []byte("a3 on x"))
	a3y := c.append(t, y, a, []byte("a3 on y"))
	a4x := c.append(t, x, a, []byte("a4 on x"))

	s := NewState(c.key)
	rd := s.Add([]*Entry{a1, a2, a3x, a4x, a3y})
	wantFork := Fork{Author: a.id, Seq: 3, CIDs: SortCIDs([]cid.Cid{a3x.CID(), a3y.CID()})}
	if diff := cmp.Diff([]Fork{wantFork}, rd.Forks, cmpOpts); diff != "" {
		t.Errorf("Ready.Forks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Fork{wantFork}, s.Forks(), cmpOpts); diff != "" {
		t.Errorf("Forks (-want +got):\n%s", diff)
	}
	if len(rd.Accepted) != 5 || s.Len() != 5 || len(s.Heads()) != 2 {
		t.Fatalf("accepted %d, Len %d, heads %v: both branches stay", len(rd.Accepted), s.Len(), s.Heads())
	}
	if got := s.Vector(); got[a.id] != 4 {
		t.Errorf("Vector = %v", got)
	}
	// Missing starts at the fork, whatever the Vector says.
	fromFork := chainOrder([]*Entry{a3x, a3y, a4x})
	for _, seq := range []uint64{2, 3, 4, 9} {
		if diff := cmp.Diff(fromFork, s.Missing(Vector{a.id: seq}, nil), cmpOpts); diff != "" {
			t.Errorf("Missing(%d) (-want +got):\n%s", seq, diff)
		}
	}
	if got := s.Missing(Vector{a.id: 1}, nil); len(got) != 4 {
		t.Errorf("Missing(1) = %d entries, want 4", len(got))
	}
	// Others merge the branches; the forked author may go on on both.
	byCID := indexByCID([]*Entry{a1, a2, a3x, a3y, a4x})
	bs := refState(t, c, entriesOf(t, s.Log(Pos{}, 10), byCID))
	b1 := c.append(t, bs, b, []byte("b1"))
	if len(b1.Parents) != 2 {
		t.Errorf("b1's parents %v: want both branches", b1.Parents)
	}
	a5 := c.append(t, bs, a, []byte("a5"))
	if a5.Seq != 5 || !slices.ContainsFunc(a5.Parents, a4x.CID().Equals) || !slices.ContainsFunc(a5.Parents, b1.CID().Equals) {
		t.Errorf("a5: seq %d parents %v", a5.Seq, a5.Parents)
	}
	if rd := s.Add([]*Entry{a5, b1}); len(rd.Accepted) != 2 || len(rd.Forks) != 0 || len(s.Heads()) != 1 {
		t.Errorf("merge: %+v, heads %v", rd, s.Heads())
	}
	// A third entry at the fork is refused, and not reported again.
	z := NewState(c.key)
	z.Add([]*Entry{a1, a2})
	a3z := c.append(t, z, a, []byte("a3 on z"))
	rd = s.Add([]*Entry{a3z})
	if len(rd.Forks) != 0 || len(rd.Rejected) != 1 || !errors.Is(rd.Rejected[0].Err, ErrForked) {
		t.Errorf("third branch: %+v", rd)
	}
	if diff := cmp.Diff([]Fork{wantFork}, s.Forks(), cmpOpts); diff != "" {
		t.Errorf("Forks after a third branch (-want +got):\n%s", diff)
	}
}

func TestRuleViolations(t *testing.T) {
	c := newTestCell(t, 7, 2)
	a, b := c.authors[0], c.authors[1]
	s := NewState(c.key)
	a1 := c.append(t, s, a, []byte("a1"))
	b1 := c.append(t, s, b, []byte("b1"))
	a2 := c.append(t, s, a, []byte("a2"))
	next := s.Next(a.id, c.key, testEpoch)
	parents := func(es ...*Entry) []cid.Cid {
		cs := make([]cid.Cid, len(es))
		for i, e := range es {
			cs[i] = e.CID()
		}
		return SortCIDs(cs)
	}
	draft := func(seq, clock uint64, ps ...*Entry) Draft {
		return Draft{Cell: c.key, Seq: seq, Clock: clock, Parents: parents(ps...), Epoch: testEpoch}
	}
	tests := []struct {
		name string
		d    Draft
		want error
	}{
		{"clock too high", draft(next.Seq, next.Clock+1, a2), ErrBadLink},
		{"clock too low", draft(next.Seq, next.Clock-1, a2), ErrBadLink},
		{"seq skips one", draft(next.Seq+1, next.Clock, a2), ErrBadLink},
		{"without the author's previous", draft(3, b1.Clock+1, b1), ErrBadLink},
		{"with only an older own entry", draft(3, a1.Clock+1, a1), ErrBadLink},
		{"own parent with the same seq", draft(2, a2.Clock+1, a2), ErrBadLink},
		{"own parent with a higher seq", draft(1, a2.Clock+1, a2), ErrBadLink},
		{"another cell", Draft{Cell: cellKey("other cell"), Seq: next.Seq, Clock: next.Clock, Parents: next.Parents}, ErrOtherCell},
	}
	before := viewOf(s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := c.write(t, a, tt.d, []byte("bad"))
			rd := s.Add([]*Entry{e})
			if len(rd.Accepted) != 0 || len(rd.Rejected) != 1 || !errors.Is(rd.Rejected[0].Err, tt.want) {
				t.Fatalf("Add: accepted %d, rejected %v; want %v", len(rd.Accepted), rd.Rejected, tt.want)
			}
			if r := rd.Rejected[0]; !r.CID.Equals(e.CID()) || r.Author != a.id {
				t.Errorf("Rejected = %+v", r)
			}
			if diff := cmp.Diff(before, viewOf(s), cmpOpts); diff != "" {
				t.Errorf("a refused entry changed the state (-before +after):\n%s", diff)
			}
		})
	}

	// The waiting descendants of a refused entry are refused with it.
	bad := c.write(t, a, draft(next.Seq, next.Clock+1, a2), []byte("bad"))
	child := c.write(t, b, draft(2, bad.Clock+1, b1, bad), []byte("child"))
	grandchild := c.write(t, b, draft(3, child.Clock+1, child), []byte("grandchild"))
	other := c.write(t, a, draft(3, max(child.Clock, a2.Clock)+1, a2, child), []byte("two parents, one bad"))
	t.Run("descendants", func(t *testing.T) {
		s := refState(t, c, []*Entry{a1, b1, a2})
		if rd := s.Add([]*Entry{grandchild, other, child}); rd.Waiting != 3 {
			t.Fatalf("waiting %d, want 3", rd.Waiting)
		}
		rd := s.Add([]*Entry{bad})
		if len(rd.Rejected) != 4 || rd.Waiting != 0 || s.Waiting() != 0 || len(rd.Accepted) != 0 {
			t.Fatalf("Add of the bad parent: %+v", rd)
		}
		for _, r := range rd.Rejected {
			if !errors.Is(r.Err, ErrBadLink) {
				t.Errorf("%s refused with %v", r.CID, r.Err)
			}
		}
		// All in one batch, the bad parent in the middle.
		s = refState(t, c, []*Entry{a1, b1, a2})
		rd = s.Add([]*Entry{grandchild, bad, other, child})
		if len(rd.Rejected) != 4 || rd.Waiting != 0 || len(rd.Accepted) != 0 {
			t.Fatalf("one batch: %+v", rd)
		}
	})
}

// TestForkDigests: two nodes each holding one branch of a fork have the
// same Vector and length; only the digests show it, and Missing with
// digests brings each the other's branch, in one exchange each way.
func TestForkDigests(t *testing.T) {
	c := newTestCell(t, 7, 1)
	a := c.authors[0]
	x, y := NewState(c.key), NewState(c.key)
	a1 := c.append(t, x, a, []byte("a1"))
	y.Add([]*Entry{a1})
	a2x := c.append(t, x, a, []byte("a2 on x"))
	a3x := c.append(t, x, a, []byte("a3 on x"))
	a2y := c.append(t, y, a, []byte("a2 on y"))
	a3y := c.append(t, y, a, []byte("a3 on y"))
	byCID := indexByCID([]*Entry{a1, a2x, a3x, a2y, a3y})
	if x.Len() != y.Len() || !cmp.Equal(x.Vector(), y.Vector()) {
		t.Fatalf("the branches should look alike by Vector and length")
	}
	if x.Ahead(y.Vector(), nil) || y.Ahead(x.Vector(), nil) {
		t.Fatal("without digests a Vector cannot show the fork")
	}
	if x.Digests()[a.id] == y.Digests()[a.id] {
		t.Fatal("the digests of two branches are equal")
	}
	if !x.Ahead(y.Vector(), y.Digests()) || !y.Ahead(x.Vector(), x.Digests()) {
		t.Fatal("Ahead with digests does not show the fork")
	}
	// Each side sends all of the author's entries (y first has its 3,
	// then x has all 5); the other keeps what it lacks.
	for i, p := range [][2]*State{{x, y}, {y, x}} {
		to, from := p[0], p[1]
		got := from.Missing(to.Vector(), to.Digests())
		if want := []int{3, 5}[i]; len(got) != want {
			t.Errorf("exchange %d: Missing with a diverging digest = %d entries, want the author's %d", i, len(got), want)
		}
		to.Add(entriesOf(t, got, byCID))
	}
	if diff := cmp.Diff(viewOf(x), viewOf(y), cmpOpts); diff != "" {
		t.Fatalf("after one exchange each way (-x +y):\n%s", diff)
	}
	if x.Len() != 5 || len(x.Forks()) != 1 || x.Forks()[0].Seq != 2 {
		t.Fatalf("Len %d, forks %v", x.Len(), x.Forks())
	}
	// Once both hold both branches, matching digests send nothing more.
	if got := x.Missing(y.Vector(), y.Digests()); len(got) != 0 {
		t.Errorf("in sync, Missing = %d entries", len(got))
	}
	if x.Ahead(y.Vector(), y.Digests()) {
		t.Error("in sync, Ahead")
	}
}
