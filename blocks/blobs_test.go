package blocks

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/ipfs/boxo/datastore/dshelp"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	flatfs "github.com/ipfs/go-ds-flatfs"
	"github.com/multiformats/go-multihash"
)

// blockOf returns a block of data under a CIDv1 of codec with sha2-256.
func blockOf(tb testing.TB, codec uint64, data []byte) blockformat.Block {
	tb.Helper()
	c, err := cid.Prefix{Version: 1, Codec: codec, MhType: multihash.SHA2_256, MhLength: -1}.Sum(data)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := blockformat.NewBlockWithCid(data, c)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// cborBlock returns a dag-cbor block (as the chain's entries are); its
// bytes need not be valid CBOR: the store does not decode them.
func cborBlock(tb testing.TB, s string) blockformat.Block {
	return blockOf(tb, cid.DagCBOR, []byte(s))
}

// newFlatfs returns a flatfs datastore in a fresh directory, laid out as
// the data dir lays out its blobs, closed when the test ends.
func newFlatfs(tb testing.TB, dir string) *flatfs.Datastore {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	d, err := flatfs.CreateOrOpen(dir, flatfs.NextToLast(2), true)
	if err != nil {
		tb.Fatalf("flatfs.CreateOrOpen(%s): %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Errorf("closing flatfs: %v", err)
		}
	})
	return d
}

func wantUsage(tb testing.TB, s *Store, want Usage) {
	tb.Helper()
	got, err := s.Usage(tb.Context())
	if err != nil || got != want {
		tb.Fatalf("Usage = %+v, %v; want %+v", got, err, want)
	}
}

// Blob blocks (raw, dag-pb) go to the blobs datastore, at its root; the
// others to the meta datastore under /blocks; each is found again there.
func TestStoreWithRoutesBlobBlocks(t *testing.T) {
	ctx := t.Context()
	meta, blobs := newDatastore(t, "disk"), newFlatfs(t, "")
	s := NewStoreWith(meta, blobs)
	raw := randomBlock(t, 4096)
	pb := blockOf(t, cid.DagProtobuf, []byte("a dag-pb node"))
	entry := cborBlock(t, "a chain entry")
	if err := s.PutMany(ctx, []blockformat.Block{raw, entry, pb}); err != nil {
		t.Fatal(err)
	}
	wantCount(t, s, 3)
	for _, b := range []blockformat.Block{raw, pb} {
		k := dshelp.MultihashToDsKey(b.Cid().Hash())
		if has, err := blobs.Has(ctx, k); err != nil || !has {
			t.Errorf("blobs.Has(%s) = %v, %v; want true", k, has, err)
		}
		if has, _ := meta.Has(ctx, keyPrefix.Child(k)); has {
			t.Errorf("%s is in the meta datastore too", b.Cid())
		}
	}
	k := keyPrefix.Child(dshelp.MultihashToDsKey(entry.Cid().Hash()))
	if has, err := meta.Has(ctx, k); err != nil || !has {
		t.Errorf("meta.Has(%s) = %v, %v; want true", k, has, err)
	}
	for _, b := range []blockformat.Block{raw, pb, entry} {
		got, err := s.Get(ctx, b.Cid())
		if err != nil {
			t.Fatalf("Get(%s): %v", b.Cid(), err)
		}
		checkSame(t, b, got)
		if n, err := s.Blockstore().GetSize(ctx, b.Cid()); err != nil || n != len(b.RawData()) {
			t.Errorf("GetSize(%s) = %d, %v", b.Cid(), n, err)
		}
	}
	// The codec of the CID asked decides where to look: the chain entry's
	// multihash under a raw CID is not a blob block.
	if has, err := s.Has(ctx, cid.NewCidV1(cid.Raw, entry.Cid().Hash())); err != nil || has {
		t.Errorf("Has(entry's hash as raw) = %v, %v; want false", has, err)
	}
	n := 0
	ch, err := s.Blockstore().AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range ch {
		n++
	}
	if n != 3 {
		t.Errorf("AllKeysChan listed %d blocks, want 3", n)
	}
}

// PutOwn trusts the CID: it stores a block whose data does not match it
// (which a read then reports as corrupt), where PutMany refuses it.
func TestPutOwnDoesNotHash(t *testing.T) {
	ctx := t.Context()
	s := NewStoreWith(newDatastore(t, "memory"), newFlatfs(t, ""))
	good := randomBlock(t, 1000)
	forged, err := blockformat.NewBlockWithCid([]byte("not the data"), randomBlock(t, 10).Cid())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutMany(ctx, []blockformat.Block{forged}); !errors.Is(err, ErrInvalidBlock) {
		t.Fatalf("PutMany(forged) = %v, want ErrInvalidBlock", err)
	}
	if err := s.PutOwn(ctx, []blockformat.Block{good, forged, good}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, good.Cid())
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, good, got)
	if _, err := s.Get(ctx, forged.Cid()); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Get(forged) = %v, want ErrCorrupt", err)
	}
	wantUsage(t, s, Usage{Blocks: 2, Bytes: 1000 + int64(len("not the data"))})
}

// Usage counts blob blocks only, once each, follows puts and deletes
// without a scan, and agrees with a fresh count of the same datastores.
func TestStoreUsage(t *testing.T) {
	for _, split := range []bool{true, false} {
		name := map[bool]string{true: "flatfs", false: "shared"}[split]
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			meta := newDatastore(t, "disk")
			dir := t.TempDir()
			var blobs ds.Batching = meta
			if split {
				blobs = newFlatfs(t, dir)
			}
			s := NewStoreWith(meta, blobs)
			a, b, c := randomBlock(t, 100), randomBlock(t, 2000), blockOf(t, cid.DagProtobuf, []byte("node"))
			if err := s.Put(ctx, a); err != nil {
				t.Fatal(err)
			}
			wantUsage(t, s, Usage{1, 100}) // the first call counts
			if err := s.PutMany(ctx, []blockformat.Block{a, b, cborBlock(t, "entry"), c, b}); err != nil {
				t.Fatal(err)
			}
			if err := s.PutManyWith(ctx, []blockformat.Block{c}, map[ds.Key][]byte{ds.NewKey("/index/x"): nil}); err != nil {
				t.Fatal(err)
			}
			want := Usage{3, 100 + 2000 + 4}
			wantUsage(t, s, want)
			if err := s.DeleteMany(ctx, []cid.Cid{a.Cid(), a.Cid(), randomBlock(t, 5).Cid(), cid.Undef}); err != nil {
				t.Fatal(err)
			}
			want = Usage{2, 2004}
			wantUsage(t, s, want)
			wantCount(t, s, 3) // and the chain entry
			wantUsage(t, NewStoreWith(meta, blobs), want)
			if u, err := s.Recount(ctx); err != nil || u != want {
				t.Errorf("Recount = %+v, %v; want %+v", u, err, want)
			}
		})
	}
}

// DeleteMany removes blocks from both datastores, skips those missing,
// and leaves the others.
func TestStoreDeleteMany(t *testing.T) {
	ctx := t.Context()
	s := NewStoreWith(newDatastore(t, "memory"), newFlatfs(t, ""))
	keep, gone := randomBlock(t, 10), randomBlock(t, 20)
	entry := cborBlock(t, "entry")
	if err := s.PutMany(ctx, []blockformat.Block{keep, gone, entry}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMany(ctx, []cid.Cid{gone.Cid(), entry.Cid(), randomBlock(t, 1).Cid()}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		b    blockformat.Block
		want bool
	}{{keep, true}, {gone, false}, {entry, false}} {
		if has, err := s.Has(ctx, w.b.Cid()); err != nil || has != w.want {
			t.Errorf("Has(%s) = %v, %v; want %v", w.b.Cid(), has, err, w.want)
		}
	}
	if err := s.Delete(ctx, keep.Cid()); err != nil {
		t.Fatal(err)
	}
	wantCount(t, s, 0)
	wantUsage(t, s, Usage{})
}

// BlobKeys lists the blob blocks (not the chain's) and stops at fn's error
// or ctx's end.
func TestStoreBlobKeys(t *testing.T) {
	ctx := t.Context()
	meta := newDatastore(t, "memory")
	for _, s := range []*Store{NewStore(meta), NewStoreWith(meta, newFlatfs(t, ""))} {
		blks := []blockformat.Block{randomBlock(t, 10), randomBlock(t, 30), blockOf(t, cid.DagProtobuf, []byte("n"))}
		if err := s.PutMany(ctx, append([]blockformat.Block{cborBlock(t, "entry")}, blks...)); err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		err := s.BlobKeys(ctx, func(c cid.Cid, size int) error {
			seen[string(c.Hash())] = size
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != len(blks) {
			t.Errorf("BlobKeys listed %d blocks, want %d", len(seen), len(blks))
		}
		for _, b := range blks {
			if size, ok := seen[string(b.Cid().Hash())]; !ok || size != len(b.RawData()) {
				t.Errorf("BlobKeys: %s listed %v with size %d, want %d", b.Cid(), ok, size, len(b.RawData()))
			}
		}
		stop := errors.New("stop")
		if err := s.BlobKeys(ctx, func(cid.Cid, int) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("BlobKeys = %v, want fn's error", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.BlobKeys(cctx, func(cid.Cid, int) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Errorf("BlobKeys(cancelled) = %v, want context.Canceled", err)
		}
	}
}

// Writes, deletes and the first count running at once leave Usage equal
// to a fresh count.
func TestStoreUsageConcurrent(t *testing.T) {
	ctx := t.Context()
	s := NewStoreWith(newDatastore(t, "memory"), newFlatfs(t, ""))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				a, b := randomBlock(t, 100+w), randomBlock(t, 200+i)
				if err := s.PutOwn(ctx, []blockformat.Block{a, b}); err != nil {
					t.Error(err)
					return
				}
				if err := s.DeleteMany(ctx, []cid.Cid{a.Cid()}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		if _, err := s.Usage(ctx); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	got, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want, err := s.Recount(ctx); err != nil || got != want || got.Blocks != 40 {
		t.Errorf("Usage = %+v; a fresh count gives %+v, %v; want 40 blocks", got, want, err)
	}
}
