package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Shared fixtures of the package's tests: deterministic keys, a fake
// roster, a cell with seeded nonces, and a builder of random DAGs.

// cmpOpts compares CIDs (whose field is unexported) and treats nil and
// empty slices and maps as equal.
var cmpOpts = cmp.Options{cmp.Comparer(cid.Cid.Equals), cmpopts.EquateEmpty()}

// seed32 stretches a test seed into a ChaCha8 seed.
func seed32(seed uint64) [32]byte {
	var s [32]byte
	binary.BigEndian.PutUint64(s[:], seed)
	copy(s[8:], "exopeer chain test")
	return s
}

// testAuthor is a member node's identity, derived from a fixed seed.
type testAuthor struct {
	key crypto.PrivKey
	id  peer.ID
}

func newTestAuthor(t testing.TB, n int) testAuthor {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, fmt.Sprintf("test author %d", n))
	key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatalf("UnmarshalEd25519PrivateKey: %v", err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatalf("IDFromPrivateKey: %v", err)
	}
	return testAuthor{key: key, id: id}
}

// testRoster is a fake Roster: its authors may write in the epochs up to
// upTo; the removed ones, up to their cut-off.
type testRoster struct {
	authors map[peer.ID]bool
	upTo    uint64
	cut     map[peer.ID]testCut
}

type testCut struct {
	seq  uint64
	last []cid.Cid
}

func (r testRoster) CanAuthor(id peer.ID, epoch uint64) bool {
	_, removed := r.cut[id]
	return (r.authors[id] || removed) && epoch <= r.upTo
}

func (r testRoster) Cutoff(id peer.ID) (uint64, []cid.Cid, bool) {
	c, ok := r.cut[id]
	return c.seq, c.last, ok
}

// testEpoch is the epoch the tests write in; the cell has secrets for
// epochs 0 and 1, and its roster allows epochs up to 2.
const testEpoch = 1

// testCell is a cell of the tests: its key, secrets, authors and roster,
// and a seeded ChaCha8 for nonces.
type testCell struct {
	key     ed25519.PublicKey
	secrets map[uint64][]byte
	authors []testAuthor
	roster  testRoster
	nonces  *rand.ChaCha8
}

func cellKey(name string) ed25519.PublicKey {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, name)
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}

func newTestCell(t testing.TB, seed uint64, authors int) *testCell {
	t.Helper()
	c := &testCell{
		key: cellKey("test cell"),
		secrets: map[uint64][]byte{
			0: bytes.Repeat([]byte{0xa0}, 32),
			1: bytes.Repeat([]byte{0xa1}, 32),
		},
		roster: testRoster{authors: make(map[peer.ID]bool), upTo: 2},
		nonces: rand.NewChaCha8(seed32(seed)),
	}
	for i := range authors {
		a := newTestAuthor(t, i)
		c.authors = append(c.authors, a)
		c.roster.authors[a.id] = true
	}
	return c
}

// secret is the cell's Secrets.
func (c *testCell) secret(epoch uint64) ([]byte, bool) {
	s, ok := c.secrets[epoch]
	return s, ok
}

// write makes an entry of d by a, failing the test on error.
func (c *testCell) write(t testing.TB, a testAuthor, d Draft, plaintext []byte) *Entry {
	t.Helper()
	e, err := Write(d, a.key, c.secrets[d.Epoch], plaintext, c.nonces)
	if err != nil {
		t.Fatalf("Write(seq %d clock %d): %v", d.Seq, d.Clock, err)
	}
	return e
}

// append writes a's next entry on s, adds it, and returns it.
func (c *testCell) append(t testing.TB, s *State, a testAuthor, plaintext []byte) *Entry {
	t.Helper()
	e := c.write(t, a, s.Next(a.id, c.key, testEpoch), plaintext)
	if rd := s.Add([]*Entry{e}); len(rd.Accepted) != 1 || len(rd.Rejected) != 0 {
		t.Fatalf("Add of an appended entry: %+v", rd)
	}
	return e
}

// randomDAG has c's authors write n entries in all, each author on its
// own State, pulling what a random other author holds (Missing of its
// Vector) at random moments, so that entries are concurrent. It returns
// the entries in the order written (a topological order), and the
// authors' States.
func randomDAG(t testing.TB, c *testCell, seed uint64, n, payload int) ([]*Entry, []*State) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0xdac))
	states := make([]*State, len(c.authors))
	for i := range states {
		states[i] = NewState(c.key)
	}
	byCID := make(map[cid.Cid]*Entry, n)
	all := make([]*Entry, 0, n)
	pt := make([]byte, payload)
	for len(all) < n {
		i := rng.IntN(len(c.authors))
		if rng.IntN(3) == 0 {
			pull(t, states[i], states[rng.IntN(len(states))], byCID)
		}
		binary.PutUvarint(pt, uint64(len(all)))
		e := c.append(t, states[i], c.authors[i], pt)
		byCID[e.CID()] = e
		all = append(all, e)
	}
	return all, states
}

// pull adds to `to` every entry `from` holds and `to` lacks.
func pull(t testing.TB, to, from *State, byCID map[cid.Cid]*Entry) {
	t.Helper()
	es := entriesOf(t, from.Missing(to.Vector(), nil), byCID)
	rd := to.Add(es)
	if len(rd.Accepted) != len(es) || len(rd.Rejected) != 0 || rd.Waiting != 0 {
		t.Fatalf("pull of %d entries: %d accepted, rejected %v, %d waiting", len(es), len(rd.Accepted), rd.Rejected, rd.Waiting)
	}
}

func entriesOf(t testing.TB, cs []cid.Cid, byCID map[cid.Cid]*Entry) []*Entry {
	t.Helper()
	es := make([]*Entry, len(cs))
	for i, c := range cs {
		if es[i] = byCID[c]; es[i] == nil {
			t.Fatalf("unknown entry %s", c)
		}
	}
	return es
}

func indexByCID(es []*Entry) map[cid.Cid]*Entry {
	m := make(map[cid.Cid]*Entry, len(es))
	for _, e := range es {
		m[e.CID()] = e
	}
	return m
}

// chainOrder returns the CIDs of es sorted by Pos: the order a State
// holding them must have.
func chainOrder(es []*Entry) []cid.Cid {
	ps := make([]Pos, len(es))
	for i, e := range es {
		ps[i] = e.Pos()
	}
	slices.SortFunc(ps, Pos.Compare)
	cs := make([]cid.Cid, len(ps))
	for i, p := range ps {
		cs[i] = p.CID
	}
	return cs
}

// stateView is what must be equal in States holding the same entries.
type stateView struct {
	Log     []cid.Cid
	Heads   []cid.Cid
	Vector  Vector
	Len     int
	Waiting int
}

func viewOf(s *State) stateView {
	return stateView{Log: s.Log(Pos{}, s.Len()), Heads: s.Heads(), Vector: s.Vector(), Len: s.Len(), Waiting: s.Waiting()}
}

// checkOrder checks that s's Log is strictly sorted by Pos and lists
// parents before their children.
func checkOrder(t testing.TB, s *State) {
	t.Helper()
	log := s.Log(Pos{}, s.Len())
	if len(log) != s.Len() {
		t.Fatalf("Log has %d entries, Len %d", len(log), s.Len())
	}
	seen := make(map[cid.Cid]bool, len(log))
	var last Pos
	for i, c := range log {
		m, ok := s.Meta(c)
		if !ok {
			t.Fatalf("Log[%d] = %s has no Meta", i, c)
		}
		if i > 0 && last.Compare(m.Pos()) >= 0 {
			t.Fatalf("Log[%d] at %s is not after %s", i, m.Pos(), last)
		}
		for _, p := range m.Parents {
			if !seen[p] {
				t.Fatalf("Log[%d] = %s comes before its parent %s", i, c, p)
			}
		}
		seen[c] = true
		last = m.Pos()
	}
}

// fakeCID is a distinct valid entry CID that names no entry.
func fakeCID(n uint64) cid.Cid {
	c, err := cidPrefix.Sum(binary.AppendUvarint([]byte("fake"), n))
	if err != nil {
		panic(err)
	}
	return c
}
