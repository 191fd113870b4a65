package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	mathrand "math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
)

// benchSize is the blob of the import benchmarks: 256 MiB.
const benchSize = 256 << 20

var benchData = sync.OnceValue(func() []byte { return randomBytes(256, benchSize) })

// BenchmarkImport measures imports of 256 MiB in memory (the blocks kept
// in a map) next to their anchors in the same run:
//
//	go test -run x -bench Import -benchtime 3x -cpu 2 ./blob/
//
// sealed-random: Import with a random key (one pass); sealed-derived:
// ImportFile with a cell secret (hash pass, then seal pass); public: plain
// UnixFS; sha256-1core and sha256-parallel: hashing the 256 MiB alone in
// 1 MiB chunks; boxo-unixfs: boxo's balanced.Layout (what Kubo runs) with
// the same parameters into an in-memory DAG service.
func BenchmarkImport(b *testing.B) {
	data := benchData()
	secret := []byte("the cell's blob secret")
	run := func(name string, f func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				f(b)
			}
			// CPU time, less sensitive than wall time to others on the
			// machine: 2 cores give at most 2*256 MiB per this.
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
	run("sealed-random", func(b *testing.B) {
		if _, err := Import(b.Context(), bytes.NewReader(data), newMemBlocks(), ImportOptions{}); err != nil {
			b.Fatal(err)
		}
	})
	run("sealed-derived", func(b *testing.B) {
		if _, err := ImportFile(b.Context(), bytes.NewReader(data), benchSize, newMemBlocks(), ImportOptions{Secret: secret}); err != nil {
			b.Fatal(err)
		}
	})
	run("public", func(b *testing.B) {
		if _, err := Import(b.Context(), bytes.NewReader(data), newMemBlocks(), ImportOptions{Public: true}); err != nil {
			b.Fatal(err)
		}
	})
	run("sha256-1core", func(b *testing.B) {
		for off := 0; off < benchSize; off += hashChunk {
			sha256.Sum256(data[off : off+hashChunk])
		}
	})
	run("sha256-parallel", func(b *testing.B) {
		var wg sync.WaitGroup
		n := runtime.GOMAXPROCS(0)
		for w := range n {
			wg.Go(func() {
				for off := w * hashChunk; off < benchSize; off += n * hashChunk {
					sha256.Sum256(data[off : off+hashChunk])
				}
			})
		}
		wg.Wait()
	})
	run("boxo-unixfs", func(b *testing.B) {
		bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
		dserv := merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
		p := helpers.DagBuilderParams{Dagserv: dserv, Maxlinks: MaxLinks, RawLeaves: true, CidBuilder: cidPrefix}
		db, err := p.New(chunker.NewSizeSplitter(bytes.NewReader(data), PublicLeafSize))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := balanced.Layout(db); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkRead measures reading a sealed 256 MiB blob back: sequentially
// (Read with prefetch) and by 1 MiB ReadAt at every offset.
func BenchmarkRead(b *testing.B) {
	data := benchData()
	st := newMemBlocks()
	im, err := Import(context.Background(), bytes.NewReader(data), st, ImportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("sequential", func(b *testing.B) {
		b.SetBytes(benchSize)
		buf := make([]byte, 256<<10)
		for b.Loop() {
			r, err := Open(b.Context(), st, im.Cap, ReaderOptions{})
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := r.Read(buf); err != nil {
					break
				}
			}
			r.Close()
		}
	})
}

// BenchmarkReadAt measures 1 MiB ReadAt at random offsets of a sealed
// 256 MiB blob in memory, each on a fresh Reader (nothing cached).
func BenchmarkReadAt(b *testing.B) {
	data := benchData()
	st := newMemBlocks()
	im, err := Import(context.Background(), bytes.NewReader(data), st, ImportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	p := make([]byte, 1<<20)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		r, err := Open(b.Context(), st, im.Cap, ReaderOptions{Prefetch: -1})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.ReadAt(p, rng.Int64N(benchSize-int64(len(p)))); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
