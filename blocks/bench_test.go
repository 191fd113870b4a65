package blocks

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"testing"
	"time"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// benchSizes are the block sizes of the store benchmarks.
var benchSizes = []struct {
	name string
	size int
}{
	{"1KiB", 1 << 10},
	{"256KiB", 256 << 10},
}

// blockMaker makes distinct blocks of one size cheaply: random bytes with
// a counter in the first 8.
type blockMaker struct {
	buf []byte
	n   uint64
}

func newBlockMaker(size int) *blockMaker {
	m := &blockMaker{buf: make([]byte, size)}
	rand.Read(m.buf)
	return m
}

func (m *blockMaker) next() blockformat.Block {
	m.n++
	data := append([]byte(nil), m.buf...)
	binary.LittleEndian.PutUint64(data, m.n)
	return NewBlock(data)
}

// BenchmarkStorePut measures Store.Put of a new block (hash check plus one
// synced write) on go-ds-leveldb on disk, with its default options (each
// write is synced). Making the block is not timed.
func BenchmarkStorePut(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			s := NewStore(newDatastore(b, "disk"))
			m := newBlockMaker(sz.size)
			ctx := b.Context()
			b.SetBytes(int64(sz.size))
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				blk := m.next()
				b.StartTimer()
				if err := s.Put(ctx, blk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStoreGet measures Store.Get (read plus hash check) on
// go-ds-leveldb on disk, cycling through a set of stored blocks (64 MiB of
// 256 KiB blocks, 4 MiB of 1 KiB ones), so reads mostly hit leveldb's and
// the OS's caches.
func BenchmarkStoreGet(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			ctx := b.Context()
			s := NewStore(newDatastore(b, "disk"))
			m := newBlockMaker(sz.size)
			cids := make([]cid.Cid, 4096)
			if sz.size > 1<<10 {
				cids = cids[:256]
			}
			batch := make([]blockformat.Block, len(cids))
			for i := range cids {
				batch[i] = m.next()
				cids[i] = batch[i].Cid()
			}
			if err := s.PutMany(ctx, batch); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(sz.size))
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.Get(ctx, cids[i%len(cids)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBitswapFetch100 measures one GetMany of 100 blocks of 16 KiB by
// node B from node A over loopback (one op = 100 blocks, 1.6 MiB). Both
// nodes store on go-ds-leveldb on disk. Before each op, untimed, A stores
// 100 fresh random blocks; the timed op includes B's session set-up, the
// want-have/want-block round trips, verification and B's synced batch
// write of the 100 blocks.
func BenchmarkBitswapFetch100(b *testing.B) {
	const (
		count = 100
		size  = 16 << 10
	)
	for _, transport := range []string{"tcp", "quic-v1"} {
		b.Run(transport, func(b *testing.B) {
			nodeA := newNodeOn(b, "disk", Config{}, true)
			nodeB := newNodeOn(b, "disk", Config{}, true)
			connect(b, nodeB, nodeA, transport)
			m := newBlockMaker(size)
			blks := make([]blockformat.Block, count)
			cids := make([]cid.Cid, count)
			b.SetBytes(count * size)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				for i := range blks {
					blks[i] = m.next()
					cids[i] = blks[i].Cid()
				}
				if err := nodeA.ex.PutMany(b.Context(), blks); err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
				b.StartTimer()
				got, err := nodeB.ex.GetMany(ctx, cids)
				b.StopTimer()
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				if len(got) != count {
					b.Fatalf("got %d blocks, want %d", len(got), count)
				}
				b.StartTimer()
			}
		})
	}
}
