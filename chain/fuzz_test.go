package chain

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// allowAll is a Roster that lets anyone write in any epoch.
type allowAll struct{}

func (allowAll) CanAuthor(peer.ID, uint64) bool { return true }

func (allowAll) Cutoff(peer.ID) (uint64, []cid.Cid, bool) { return 0, nil, false }

// FuzzDecode's seeds are entries of a few hundred bytes: the fuzzer
// minimizes the inputs it finds in time quadratic in their length.
func FuzzDecode(f *testing.F) {
	c, e1, e2 := twoEntries(f)
	_, kat := katVector(f)
	for _, e := range []*Entry{e1, e2, kat} {
		f.Add(e.Bytes())
		f.Add(e.Bytes()[:len(e.Bytes())/2])
	}
	f.Add([]byte{0xa9})
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := Decode(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || e != nil {
				t.Fatalf("Decode = %v, %v", e, err)
			}
			return
		}
		if !bytes.Equal(e.Bytes(), raw) {
			t.Fatalf("Bytes() is not the input")
		}
		if want, _ := cidPrefix.Sum(raw); !e.CID().Equals(want) {
			t.Fatalf("CID %s, want %s", e.CID(), want)
		}
		again, err := Decode(e.Bytes())
		if err != nil || !again.CID().Equals(e.CID()) {
			t.Fatalf("Decode of Bytes(): %v", err)
		}
		if raw2, err := e.encode(true); err != nil || !bytes.Equal(raw2, raw) {
			t.Fatalf("encode: %v", err)
		}
		// Verify and Open take any decoded entry without panicking.
		Verify(e, c.key, allowAll{}, c.secret)
		Open(e, c.secret)
	})
}

func FuzzDecodeAnnounce(f *testing.F) {
	ids := wireAuthors(3)
	for _, a := range []Announce{
		{From: ids[0]},
		{From: ids[1], Len: 1 << 40, Partial: true, Vector: Vector{ids[0]: 1, ids[2]: 300}},
	} {
		f.Add(EncodeAnnounce(a, nil))
	}
	f.Add(msg("EXCA").s("from").u(5).raw(0).u(2).s("b").u(1).s("a").u(2).b)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAnnounce(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeAnnounce: %v", err)
			}
			return
		}
		enc := EncodeAnnounce(a, nil)
		if len(enc) > len(b) {
			t.Fatalf("re-encoding of %d bytes grew to %d", len(b), len(enc))
		}
		a2, err := DecodeAnnounce(enc)
		if err != nil {
			t.Fatalf("DecodeAnnounce of the re-encoding: %v", err)
		}
		if diff := cmp.Diff(a, a2, cmpOpts); diff != "" {
			t.Fatalf("decode, encode, decode (-first +second):\n%s", diff)
		}
		if !bytes.Equal(EncodeAnnounce(a2, nil), enc) {
			t.Fatal("encoding is not stable")
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	ids := wireAuthors(3)
	f.Add(EncodeRequest(Request{}))
	f.Add(EncodeRequest(Request{Len: 99, Vector: Vector{ids[0]: 1, ids[1]: 2, ids[2]: 1 << 62}}))
	f.Add(msg("EXCQ").u(3).u(1).s("a").u(0).b)
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeRequest: %v", err)
			}
			return
		}
		enc := EncodeRequest(q)
		q2, err := DecodeRequest(enc)
		if err != nil {
			t.Fatalf("DecodeRequest of the re-encoding: %v", err)
		}
		if diff := cmp.Diff(q, q2, cmpOpts); diff != "" {
			t.Fatalf("decode, encode, decode (-first +second):\n%s", diff)
		}
		if len(enc) > len(b) || !bytes.Equal(EncodeRequest(q2), enc) {
			t.Fatal("encoding grew or is not stable")
		}
	})
}

// FuzzReadFrame's seeds are short (whole entries would make the fuzzer
// minimize for long; FuzzDecode covers them).
func FuzzReadFrame(f *testing.F) {
	var stream []byte
	stream = AppendFrame(stream, FrameEntries, EntriesBody([][]byte{{0xa9, 0x61, 'v', 0x01}, {}, []byte("abc")}))
	stream = AppendFrame(stream, FrameEntries, EntriesBody(nil))
	stream = AppendFrame(stream, FrameDone, DoneBody(2))
	f.Add(stream)
	f.Add(stream[:len(stream)-1])
	f.Add(msg("").raw(FrameEntries).u(MaxFrame + 1).b)
	f.Add(msg("").raw(FrameDone).u(1).raw(0).raw('X').b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		var buf []byte
		for {
			kind, body, err := ReadFrame(r, buf)
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("ReadFrame: %v", err)
				}
				return
			}
			if len(body) > MaxFrame || cap(body) > MaxFrame || len(body) > len(b) {
				t.Fatalf("a body of %d bytes (capacity %d) from %d bytes", len(body), cap(body), len(b))
			}
			buf = body
			switch kind {
			case FrameEntries:
				blocks, err := DecodeEntries(body)
				if err != nil {
					continue
				}
				n := 0
				for _, blk := range blocks {
					n += len(blk)
					Decode(blk)
				}
				if n > len(body) {
					t.Fatalf("%d bytes of blocks in a body of %d", n, len(body))
				}
			case FrameDone:
				DecodeDone(body)
			default:
				t.Fatalf("ReadFrame returned kind %q", kind)
			}
		}
	})
}

// stateCorpus is a fixed set of entries for FuzzStateAdd: a valid DAG
// with a fork, and entries that break the rules in any order.
type stateCorpus struct {
	cell  *testCell
	all   []*Entry
	valid map[cid.Cid]*Entry
	order []*Entry // the valid entries, parents first
}

func newStateCorpus(t testing.TB) *stateCorpus {
	c := newTestCell(t, 21, 3)
	a0, a1, a2 := c.authors[0], c.authors[1], c.authors[2]
	valid, _ := randomDAG(t, c, 21, 24, 2)
	ref := refState(t, c, valid)
	// A fork: another first entry of a0, and a0's second on it.
	fs := NewState(c.key)
	valid = append(valid, c.append(t, fs, a0, []byte("fork")), c.append(t, fs, a0, []byte("fork 2")))

	next := ref.Next(a1.id, c.key, testEpoch)
	badClock := next
	badClock.Clock++
	badSeq := next
	badSeq.Seq++
	bc := c.write(t, a1, badClock, []byte("bad clock"))
	child := c.write(t, a2, Draft{Cell: c.key, Seq: 1, Clock: bc.Clock + 1, Parents: []cid.Cid{bc.CID()}}, nil)
	grandchild := c.write(t, a2, Draft{Cell: c.key, Seq: 2, Clock: child.Clock + 1, Parents: []cid.Cid{child.CID()}}, nil)
	mangled := []*Entry{
		bc, child, grandchild,
		c.write(t, a1, badSeq, []byte("bad seq")),
		c.write(t, a2, Draft{Cell: cellKey("other cell"), Seq: 1, Clock: 1}, nil),
	}
	sc := &stateCorpus{cell: c, all: slices.Concat(valid, mangled), valid: indexByCID(valid)}
	sc.order = entriesOf(t, chainOrder(valid), sc.valid)
	return sc
}

// FuzzStateAdd adds a subset of a fixed set of entries, in an order and
// in batches the input chooses: each byte picks an entry, or ends a batch.
func FuzzStateAdd(f *testing.F) {
	sc := newStateCorpus(f)
	n := len(sc.all)
	all := make([]byte, n)
	for i := range all {
		all[i] = byte(i)
	}
	f.Add(all)
	f.Add(slices.Concat(all, []byte{byte(n)}, all))
	rev := slices.Clone(all)
	slices.Reverse(rev)
	f.Add(rev)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Longer inputs add nothing but time to minimize them.
		data = data[:min(len(data), 3*(n+1))]
		s := NewState(sc.cell.key)
		selected := make(map[cid.Cid]bool)
		accepted := make(map[cid.Cid]bool)
		add := func(batch []*Entry) {
			rd := s.Add(batch)
			for _, e := range rd.Accepted {
				if sc.valid[e.CID()] == nil || accepted[e.CID()] {
					t.Fatalf("accepted %s: invalid or twice", e.CID())
				}
				for _, p := range e.Parents {
					if !accepted[p] {
						t.Fatalf("accepted %s before its parent %s", e.CID(), p)
					}
				}
				accepted[e.CID()] = true
			}
			for _, r := range rd.Rejected {
				if sc.valid[r.CID] != nil {
					t.Fatalf("refused a valid entry: %v", r.Err)
				}
			}
			if rd.Waiting != s.Waiting() || s.Len() != len(accepted) {
				t.Fatalf("Ready.Waiting %d, Waiting() %d, Len %d, accepted %d", rd.Waiting, s.Waiting(), s.Len(), len(accepted))
			}
		}
		var batch []*Entry
		for _, b := range data {
			i := int(b) % (n + 1)
			if i == n {
				add(batch)
				batch = nil
				continue
			}
			batch = append(batch, sc.all[i])
			selected[sc.all[i].CID()] = true
		}
		add(batch)

		// A valid entry is held if and only if it and all its ancestors
		// were given.
		var want []*Entry
		reach := make(map[cid.Cid]bool)
		for _, e := range sc.order {
			ok := selected[e.CID()]
			for _, p := range e.Parents {
				ok = ok && reach[p]
			}
			if reach[e.CID()] = ok; ok {
				want = append(want, e)
			}
		}
		if len(want) != len(accepted) {
			t.Fatalf("holds %d entries, want %d", len(accepted), len(want))
		}
		checkOrder(t, s)
		sorted := NewState(sc.cell.key)
		sorted.Add(want)
		got, exp := viewOf(s), viewOf(sorted)
		got.Waiting, exp.Waiting = 0, 0
		if diff := cmp.Diff(exp, got, cmpOpts); diff != "" {
			t.Fatalf("state differs from one fed the same entries sorted (-want +got):\n%s", diff)
		}
		if len(s.Forks()) != len(sorted.Forks()) {
			t.Fatalf("forks %v, want %v", s.Forks(), sorted.Forks())
		}
	})
}
