package storebench

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/boxo/datastore/dshelp"
	ds "github.com/ipfs/go-datastore"
	flatfs "github.com/ipfs/go-ds-flatfs"
	leveldb "github.com/ipfs/go-ds-leveldb"
	pebbleds "github.com/ipfs/go-ds-pebble"
	"github.com/multiformats/go-multihash"
)

var (
	dirFlag  = flag.String("storebench.dir", "", "directory on the disk to measure (default: the test's temp dir)")
	diskFlag = flag.Int64("storebench.du", 1<<30, "bytes written by BenchmarkDiskUse")
)

// engine opens one datastore kind in dir, durable at the end of each batch.
type engine struct {
	name string
	open func(dir string) (ds.Batching, error)
}

var engines = []engine{
	// go-ds-leveldb syncs every write and batch by default.
	{"leveldb", func(dir string) (ds.Batching, error) { return leveldb.NewDatastore(dir, nil) }},
	// flatfs with sync: each file and its directory are fsynced before a
	// batch's Commit returns.
	{"flatfs", func(dir string) (ds.Batching, error) { return flatfs.CreateOrOpen(dir, flatfs.NextToLast(2), true) }},
	// pebble with its write-ahead log synced on each commit.
	{"pebble", func(dir string) (ds.Batching, error) {
		return pebbleds.NewDatastore(dir, pebbleds.WithPebbleWriteOptions(pebble.Sync))
	}},
}

var sizes = []struct {
	name string
	size int
}{{"256KiB", 256 << 10}, {"1MiB", 1 << 20}}

// batchBytes is how much one batch holds: 16 MiB, as an import commits
// about that much at a time.
const batchBytes = 16 << 20

func open(b *testing.B, e engine) (ds.Batching, string) {
	b.Helper()
	base := *dirFlag
	if base == "" {
		base = b.TempDir()
	}
	dir := filepath.Join(base, e.name)
	d, err := e.open(dir)
	if err != nil {
		b.Fatalf("open %s: %v", e.name, err)
	}
	return d, dir
}

func closeDS(b *testing.B, d ds.Batching) {
	b.Helper()
	if c, ok := d.(interface{ Close() error }); ok {
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// blocks makes distinct blocks of one size: random bytes, a counter in
// the first 8, keyed by their sha2-256 as the block store keys them.
type blocks struct {
	buf []byte
	n   uint64
}

func newBlocks(size int) *blocks {
	r := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, size)
	r.Read(buf)
	return &blocks{buf: buf}
}

func (m *blocks) next() (ds.Key, []byte) {
	m.n++
	data := append([]byte(nil), m.buf...)
	binary.LittleEndian.PutUint64(data, m.n)
	h, _ := multihash.Sum(data, multihash.SHA2_256, -1)
	return dshelp.MultihashToDsKey(h), data
}

// write puts n blocks in batches of batchBytes and returns their keys.
func write(b *testing.B, ctx context.Context, d ds.Batching, m *blocks, n int, size int, timed bool) []ds.Key {
	b.Helper()
	per := max(1, batchBytes/size)
	keys := make([]ds.Key, 0, n)
	for i := 0; i < n; i += per {
		if timed {
			b.StopTimer()
		}
		type kv struct {
			k ds.Key
			v []byte
		}
		var batch []kv
		for j := i; j < min(n, i+per); j++ {
			k, v := m.next()
			batch = append(batch, kv{k, v})
			keys = append(keys, k)
		}
		if timed {
			b.StartTimer()
		}
		bt, err := d.Batch(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range batch {
			if err := bt.Put(ctx, e.k, e.v); err != nil {
				b.Fatal(err)
			}
		}
		if err := bt.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return keys
}

// writeBatch puts n new blocks in one batch.
func writeBatch(ctx context.Context, d ds.Batching, m *blocks, n int) error {
	bt, err := d.Batch(ctx)
	if err != nil {
		return err
	}
	for range n {
		k, v := m.next()
		if err := bt.Put(ctx, k, v); err != nil {
			return err
		}
	}
	return bt.Commit(ctx)
}

func deleteKeys(b *testing.B, ctx context.Context, d ds.Batching, keys []ds.Key, size int) {
	b.Helper()
	per := max(1, batchBytes/size)
	for i := 0; i < len(keys); i += per {
		bt, err := d.Batch(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, k := range keys[i:min(len(keys), i+per)] {
			if err := bt.Delete(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
		if err := bt.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func each(b *testing.B, f func(b *testing.B, e engine, size int)) {
	for _, e := range engines {
		for _, sz := range sizes {
			b.Run(e.name+"/"+sz.name, func(b *testing.B) { f(b, e, sz.size) })
		}
	}
}

// BenchmarkWrite measures batched, durable writes of new blocks (making
// and hashing the blocks is not timed).
func BenchmarkWrite(b *testing.B) {
	each(b, func(b *testing.B, e engine, size int) {
		d, _ := open(b, e)
		defer closeDS(b, d)
		b.SetBytes(int64(size))
		b.ResetTimer()
		write(b, b.Context(), d, newBlocks(size), b.N, size, true)
	})
}

// writers is how many batches BenchmarkWriteParallel commits at once, as
// an import's workers do.
const writers = 4

// BenchmarkWriteParallel is BenchmarkWrite with writers goroutines each
// committing its own batches (of distinct blocks) at the same time.
func BenchmarkWriteParallel(b *testing.B) {
	each(b, func(b *testing.B, e engine, size int) {
		d, _ := open(b, e)
		defer closeDS(b, d)
		per := max(1, batchBytes/size)
		makers := make([]*blocks, writers)
		for i := range makers {
			makers[i] = newBlocks(size)
			makers[i].n = uint64(i) << 40
		}
		b.SetBytes(int64(size))
		b.ResetTimer()
		var wg sync.WaitGroup
		next := make(chan int)
		for w := range writers {
			wg.Go(func() {
				for n := range next {
					if err := writeBatch(b.Context(), d, makers[w], n); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for i := 0; i < b.N; i += per {
			next <- min(per, b.N-i)
		}
		close(next)
		wg.Wait()
	})
}

// readSet is how many bytes BenchmarkRead writes before reading them back
// in random order (the page cache holds them: this measures the engine,
// not the disk).
const readSet = 256 << 20

// BenchmarkRead measures Get of stored blocks in a random order.
func BenchmarkRead(b *testing.B) {
	each(b, func(b *testing.B, e engine, size int) {
		ctx := b.Context()
		d, _ := open(b, e)
		defer closeDS(b, d)
		keys := write(b, ctx, d, newBlocks(size), readSet/size, size, false)
		r := rand.New(rand.NewPCG(1, 2))
		b.SetBytes(int64(size))
		b.ResetTimer()
		for i := range b.N {
			if i%len(keys) == 0 {
				r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			}
			v, err := d.Get(ctx, keys[i%len(keys)])
			if err != nil || len(v) != size {
				b.Fatalf("Get: %d bytes, %v", len(v), err)
			}
		}
	})
}

// BenchmarkDelete measures batched deletes of stored blocks.
func BenchmarkDelete(b *testing.B) {
	each(b, func(b *testing.B, e engine, size int) {
		ctx := b.Context()
		d, _ := open(b, e)
		defer closeDS(b, d)
		keys := write(b, ctx, d, newBlocks(size), b.N, size, false)
		rand.New(rand.NewPCG(3, 4)).Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		b.SetBytes(int64(size))
		b.ResetTimer()
		deleteKeys(b, ctx, d, keys, size)
	})
}

// BenchmarkDiskUse writes -storebench.du bytes of blocks and reports the
// space the engine's files take on disk (as du counts it: allocated
// blocks), then after deleting every other block, then after closing and
// opening it again (engines that compact may give space back then). Its
// time is meaningless; run it with -benchtime 1x.
func BenchmarkDiskUse(b *testing.B) {
	each(b, func(b *testing.B, e engine, size int) {
		ctx := b.Context()
		for range b.N {
			d, dir := open(b, e)
			keys := write(b, ctx, d, newBlocks(size), int(*diskFlag)/size, size, false)
			full := du(b, dir)
			var half []ds.Key
			for i := 0; i < len(keys); i += 2 {
				half = append(half, keys[i])
			}
			deleteKeys(b, ctx, d, half, size)
			afterDelete := du(b, dir)
			closeDS(b, d)
			d, err := e.open(dir)
			if err != nil {
				b.Fatal(err)
			}
			reopened := du(b, dir)
			closeDS(b, d)
			b.ReportMetric(float64(full)/(1<<20), "MiB-full")
			b.ReportMetric(float64(afterDelete)/(1<<20), "MiB-half")
			b.ReportMetric(float64(reopened)/(1<<20), "MiB-reopened")
			b.ReportMetric(float64(full)/float64(*diskFlag), "x-data")
		}
	})
}

// du returns the bytes allocated on disk to the files under dir.
func du(b *testing.B, dir string) int64 {
	b.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed by a compaction meanwhile
		}
		if err != nil {
			return err
		}
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
