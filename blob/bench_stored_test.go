package blob

import (
	"context"
	"flag"
	"io"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	blockformat "github.com/ipfs/go-block-format"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	flatfs "github.com/ipfs/go-ds-flatfs"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/exopeer/exopeer/blocks"
)

var (
	storedSize = flag.Int64("stored.size", 1024, "MiB imported by BenchmarkImportStored")
	storedDir  = flag.String("stored.dir", "", "directory (on the disk to measure) for BenchmarkImportStored's file and stores; default a test temp dir")
)

// BenchmarkImportStored measures what `exopeer files add` does with a file
// of 1 GiB on the real disk: ImportFile with a cell secret (a derived key:
// one pass to hash the file, one to seal and hash the leaves) into a
// blocks.Store whose blob blocks go to flatfs as in a data dir (<datadir>/
// blobs: flatfs.NextToLast(2), every write synced), written with PutOwn as
// the blob service writes imports. The anchor, in the same run: boxo's
// UnixFS import (what Kubo's `ipfs add --cid-version=1 --raw-leaves`
// runs: 256 KiB chunks, balanced layout, its DAG service batched as Kubo's
// adder does) of the same file into a flatfs of the same settings. Each
// iteration writes into a fresh flatfs; the file is written once, before
// the timer, and stays in the page cache (as a file just written or read
// would), so the disk work measured is the store's.
//
//	go test ./blob/ -run '^$' -bench ImportStored -benchtime 2x -cpu 2 [-stored.size 1024] [-stored.dir DIR]
func BenchmarkImportStored(b *testing.B) {
	dir := *storedDir
	if dir == "" {
		dir = b.TempDir()
	}
	size := *storedSize << 20
	path := filepath.Join(dir, "import-stored.bin")
	if err := writeRandomFile(path, size); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.Remove(path) })
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fresh := func(b *testing.B) *flatfs.Datastore {
		p, err := os.MkdirTemp(dir, "flatfs-")
		if err != nil {
			b.Fatal(err)
		}
		d, err := flatfs.CreateOrOpen(p, flatfs.NextToLast(2), true)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { d.Close(); os.RemoveAll(p) })
		return d
	}
	run := func(name string, f func(b *testing.B, d *flatfs.Datastore)) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				d := fresh(b)
				b.StartTimer()
				cpu0 := cpuTime()
				f(b, d)
				cpu += cpuTime() - cpu0
			}
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
	secret := []byte("the cell's blob secret")
	run("exopeer-flatfs", func(b *testing.B, d *flatfs.Datastore) {
		st := blocks.NewStoreWith(dssync.MutexWrap(ds.NewMapDatastore()), d)
		if _, err := ImportFile(b.Context(), f, size, ownPutter{st}, ImportOptions{Secret: secret}); err != nil {
			b.Fatal(err)
		}
	})
	run("boxo-flatfs", func(b *testing.B, d *flatfs.Datastore) {
		ctx := b.Context()
		bs := blockstore.NewBlockstore(d, blockstore.NoPrefix())
		dserv := merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
		batch := ipld.NewBufferedDAG(ctx, dserv)
		p := helpers.DagBuilderParams{Dagserv: batch, Maxlinks: helpers.DefaultLinksPerBlock, RawLeaves: true, CidBuilder: cidPrefix}
		db, err := p.New(chunker.NewSizeSplitter(io.NewSectionReader(f, 0, size), PublicLeafSize))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := balanced.Layout(db); err != nil {
			b.Fatal(err)
		}
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
	})
}

// ownPutter writes an import's blocks with PutOwn, as the blob service
// does (their CIDs were just computed from their data).
type ownPutter struct{ s *blocks.Store }

func (p ownPutter) PutMany(ctx context.Context, bs []blockformat.Block) error {
	return p.s.PutOwn(ctx, bs)
}

// writeRandomFile writes size random bytes to path, synced.
func writeRandomFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var s [32]byte
	s[0] = 7
	if _, err := io.Copy(f, io.LimitReader(mathrand.NewChaCha8(s), size)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
