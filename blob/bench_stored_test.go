package blob

import (
	"context"
	"flag"
	"io"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
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
	blockformat "github.com/ipfs/go-block-format"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	flatfs "github.com/ipfs/go-ds-flatfs"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/blocks/blobdisk"
)

var (
	storedSize = flag.Int64("stored.size", 1024, "MiB imported by BenchmarkImportStored")
	storedDir  = flag.String("stored.dir", "", "directory (on the disk to measure) for BenchmarkImportStored's file and stores; default a test temp dir")
	storedKubo = flag.String("stored.kubo", "", "path of a Kubo `ipfs` binary: BenchmarkImportStored runs `ipfs add --cid-version=1 -q` of the same file as an anchor")
)

// BenchmarkImportStored measures what `exopeer files add` does with a file
// of 1 GiB on the real disk: ImportFile with a cell secret (a derived key:
// one pass to hash the file, one to seal it and compare it with the
// first) into a blocks.Store whose blob blocks go to a blobdisk.Disk as
// in a data dir (<datadir>/blobs: flatfs.NextToLast(2), no fsync per
// block, synced by syncfs in the background), written with PutOwn as the
// blob service writes imports. The time is until ImportFile returns, as
// `files add` does; sync-ms/op is the syncfs that then makes the blocks
// durable (the syncer's, run here at once after the import, not timed).
//
// The anchors, in the same run: boxo-flatfs, boxo's UnixFS import (what
// Kubo's `ipfs add --cid-version=1` runs: 256 KiB chunks, raw leaves,
// balanced layout, its DAG service batched as Kubo's adder does) into a
// flatfs without sync, as Kubo's default; and, with -stored.kubo PATH,
// kubo: `ipfs add --cid-version=1 -q FILE` into a repo made by `ipfs
// init` (default profile: flatfs with "sync": false) in the same
// directory, its wall time and the child's CPU time (user+system). Each
// iteration writes into a fresh store (repo); the file is written once,
// before the timer, and stays in the page cache (as a file just written
// or read would), so the disk work measured is the store's.
//
//	go test ./blob/ -run '^$' -bench ImportStored -benchtime 3x -cpu 2 [-stored.size 1024] [-stored.dir DIR] [-stored.kubo /tmp/kubo/ipfs]
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
	tempDir := func(b *testing.B, pattern string) string {
		p, err := os.MkdirTemp(dir, pattern)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(p) })
		return p
	}
	run := func(name string, f func(b *testing.B, dir string) (cpu time.Duration)) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				d := tempDir(b, name+"-")
				syncfsDir(dir) // the last iteration's writes are not this one's
				b.StartTimer()
				cpu += f(b, d)
			}
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
	secret := []byte("the cell's blob secret")
	var syncs, synced time.Duration // the final syncs of the exopeer case, and their number
	run("exopeer", func(b *testing.B, p string) time.Duration {
		cpu0 := cpuTime()
		d, err := blobdisk.Open(p, blobdisk.Config{})
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Start(); err != nil {
			b.Fatal(err)
		}
		st := blocks.NewStoreWith(dssync.MutexWrap(ds.NewMapDatastore()), d)
		if _, err := ImportFile(b.Context(), f, size, ownPutter{st}, ImportOptions{Secret: secret}); err != nil {
			b.Fatal(err)
		}
		cpu := cpuTime() - cpu0
		b.StopTimer()
		t0 := time.Now()
		if err := d.Close(); err != nil { // the final sync
			b.Fatal(err)
		}
		syncs += time.Since(t0)
		synced++
		b.ReportMetric(float64(syncs.Milliseconds())/float64(synced), "sync-ms/op")
		b.StartTimer()
		return cpu
	})
	run("boxo-flatfs", func(b *testing.B, p string) time.Duration {
		cpu0 := cpuTime()
		ctx := b.Context()
		d, err := flatfs.CreateOrOpen(p, flatfs.NextToLast(2), false)
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		bs := blockstore.NewBlockstore(d, blockstore.NoPrefix())
		dserv := merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
		batch := ipld.NewBufferedDAG(ctx, dserv)
		prm := helpers.DagBuilderParams{Dagserv: batch, Maxlinks: helpers.DefaultLinksPerBlock, RawLeaves: true, CidBuilder: cidPrefix}
		db, err := prm.New(chunker.NewSizeSplitter(io.NewSectionReader(f, 0, size), PublicLeafSize))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := balanced.Layout(db); err != nil {
			b.Fatal(err)
		}
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
		return cpuTime() - cpu0
	})
	run("kubo", func(b *testing.B, p string) time.Duration {
		if *storedKubo == "" {
			b.Skip("no Kubo to compare with: give -stored.kubo PATH (an ipfs binary)")
		}
		b.StopTimer()
		ipfs := func(args ...string) *exec.Cmd {
			c := exec.CommandContext(b.Context(), *storedKubo, args...)
			c.Env = append(os.Environ(), "IPFS_PATH="+p)
			return c
		}
		if out, err := ipfs("init").CombinedOutput(); err != nil {
			b.Fatalf("ipfs init: %v\n%s", err, out)
		}
		b.StartTimer()
		add := ipfs("add", "--cid-version=1", "-q", path)
		if out, err := add.CombinedOutput(); err != nil {
			b.Fatalf("ipfs add: %v\n%s", err, out)
		}
		return add.ProcessState.UserTime() + add.ProcessState.SystemTime()
	})
}

// ownPutter writes an import's blocks with PutOwn, as the blob service
// does (their CIDs were just computed from their data).
type ownPutter struct{ s *blocks.Store }

func (p ownPutter) PutMany(ctx context.Context, bs []blockformat.Block) error {
	return p.s.PutOwn(ctx, bs)
}

// syncfsDir syncs the file system that holds dir (so that one case's
// writeback does not run into the next's timing).
func syncfsDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
		syscall.Sync()
	}
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
