package chain

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
)

// reportRate reports n entries per op as entries/s.
func reportRate(b *testing.B, n int) {
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// benchEntry writes an entry with two parents and a payload of size bytes.
func benchEntry(b *testing.B, c *testCell, size int) *Entry {
	d := Draft{Cell: c.key, Seq: 2, Clock: 5, Parents: SortCIDs([]cid.Cid{fakeCID(1), fakeCID(2)}), Epoch: testEpoch}
	return c.write(b, c.authors[0], d, make([]byte, size))
}

func BenchmarkWrite(b *testing.B) {
	c := newTestCell(b, 1, 1)
	d := Draft{Cell: c.key, Seq: 2, Clock: 5, Parents: SortCIDs([]cid.Cid{fakeCID(1), fakeCID(2)}), Epoch: testEpoch}
	key, secret, pt := c.authors[0].key, c.secrets[testEpoch], make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Write(d, key, secret, pt, c.nonces); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, 1)
}

func BenchmarkVerify(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"100B", 100}, {"4KiB", 4 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			c := newTestCell(b, 1, 1)
			e := benchEntry(b, c, size.n)
			b.ReportAllocs()
			b.SetBytes(int64(size.n))
			for b.Loop() {
				if _, err := Verify(e, c.key, c.roster, c.secret); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, 1)
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	c := newTestCell(b, 1, 1)
	raw := benchEntry(b, c, 100).Bytes()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, 1)
}

// benchDAG returns 10,000 entries of 5 authors, made once.
func benchDAG(b *testing.B) (*testCell, []*Entry) {
	benchOnce.Do(func() {
		benchOnce.cell = newTestCell(b, 1, 5)
		benchOnce.all, _ = randomDAG(b, benchOnce.cell, 1, 10_000, 100)
	})
	if benchOnce.all == nil {
		b.Fatal("no DAG")
	}
	return benchOnce.cell, benchOnce.all
}

var benchOnce struct {
	sync.Once
	cell *testCell
	all  []*Entry
}

func BenchmarkStateAdd(b *testing.B) {
	c, all := benchDAG(b)
	shuffled := append([]*Entry(nil), all...)
	rng := rand.New(rand.NewPCG(1, 1))
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, order := range []struct {
		name    string
		entries []*Entry
		batch   int
	}{
		{"parents first", all, len(all)},
		{"shuffled in batches of 100", shuffled, 100},
	} {
		b.Run(order.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s := NewState(c.key)
				for i := 0; i < len(order.entries); i += order.batch {
					s.Add(order.entries[i:min(i+order.batch, len(order.entries))])
				}
				if s.Len() != len(all) || s.Waiting() != 0 {
					b.Fatalf("Len %d, waiting %d", s.Len(), s.Waiting())
				}
			}
			reportRate(b, len(all))
		})
	}
}

func BenchmarkMissing(b *testing.B) {
	c, all := benchDAG(b)
	ref := refState(b, c, all)
	behind := refState(b, c, all[:len(all)-100]).Vector()
	for _, tt := range []struct {
		name string
		v    Vector
	}{
		{"behind by 100", behind},
		{"up to date", ref.Vector()},
		{"empty", nil},
	} {
		b.Run(tt.name, func(b *testing.B) {
			want := len(ref.Missing(tt.v, nil))
			b.ReportAllocs()
			for b.Loop() {
				if got := ref.Missing(tt.v, nil); len(got) != want {
					b.Fatalf("%d missing, want %d", len(got), want)
				}
			}
			b.ReportMetric(float64(want), "missing/op")
		})
	}
}

// BenchmarkForkFlood adds 100,000 entries of one author with one sequence
// number, in batches of 4,000 (about what one sync frame holds): the
// State keeps two and refuses the others, each at a constant cost.
func BenchmarkForkFlood(b *testing.B) {
	cell := cellKey("test cell")
	root, flood := forkFlood(cell, "forker", 100_000)
	b.ReportAllocs()
	for b.Loop() {
		s := NewState(cell)
		s.Add([]*Entry{root})
		refused := 0
		for i := 0; i < len(flood); i += 4_000 {
			refused += len(s.Add(flood[i:min(i+4_000, len(flood))]).Rejected)
		}
		if s.Len() != 1+MaxForkWidth || refused != len(flood)-MaxForkWidth || len(s.Forks()) != 1 {
			b.Fatalf("Len %d, refused %d, forks %d", s.Len(), refused, len(s.Forks()))
		}
	}
	reportRate(b, len(flood))
}

// BenchmarkWaitingOrphans adds 1,000 entries of the largest size, from 20
// authors, whose parents never come, decoded as the shell hands them over.
// heldMiB is the heap the State holds for them afterwards.
func BenchmarkWaitingOrphans(b *testing.B) {
	const n, authors = 1_000, 20
	c := newTestCell(b, 9, authors)
	raw := make([][]byte, n)
	for i := range raw {
		d := Draft{Cell: c.key, Seq: uint64(i/authors + 2), Clock: 2, Parents: []cid.Cid{fakeCID(1)}, Epoch: testEpoch}
		raw[i] = c.write(b, c.authors[i%authors], d, make([]byte, MaxPayload)).Bytes()
	}
	decode := func() []*Entry {
		es := make([]*Entry, n)
		for i, r := range raw {
			var err error
			if es[i], err = Decode(r); err != nil {
				b.Fatal(err)
			}
		}
		return es
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := NewState(c.key)
	rd := s.Add(decode())
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	es := decode()
	b.ReportAllocs()
	for b.Loop() {
		NewState(c.key).Add(es)
	}
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heldMiB")
	b.ReportMetric(float64(rd.Waiting), "waiting")
}
