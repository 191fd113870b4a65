package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/exopeer/exopeer/blocks"
	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// importBytes imports data into a fresh memBlocks.
func importBytes(t *testing.T, data []byte, o ImportOptions) (*memBlocks, Imported) {
	t.Helper()
	st := newMemBlocks()
	im, err := Import(t.Context(), bytes.NewReader(data), st, o)
	if err != nil {
		t.Fatal(err)
	}
	return st, im
}

func TestReaderReadsBack(t *testing.T) {
	const seed = 21
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, tc := range []struct {
		name string
		size int
		o    ImportOptions
	}{
		{"sealed empty", 0, ImportOptions{}},
		{"sealed 1", 1, ImportOptions{}},
		{"sealed segment", SegmentSize, ImportOptions{}},
		{"sealed 3 leaves+7", 3*16*SegmentSize + 7, ImportOptions{}},
		{"sealed 1-segment leaves, 2 levels", 180*SegmentSize - 9, ImportOptions{leaf: SegmentSize}},
		{"public empty", 0, ImportOptions{Public: true}},
		{"public 3 leaves+1", 3*PublicLeafSize + 1, ImportOptions{Public: true}},
		{"public small leaves, 3 levels", 174*174*3 + 5, ImportOptions{Public: true, leaf: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(seed, tc.size)
			st, im := importBytes(t, data, tc.o)
			r, err := Open(t.Context(), st, im.Cap, ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Size() != int64(len(data)) {
				t.Fatalf("Size %d, want %d", r.Size(), len(data))
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("ReadAll: %d bytes, %v (seed %d)", len(got), err, seed)
			}
			for range 20 {
				if len(data) == 0 {
					break
				}
				off := rng.IntN(len(data))
				n := rng.IntN(3*SegmentSize) + 1
				p := make([]byte, n)
				k, err := r.ReadAt(p, int64(off))
				wantN := min(n, len(data)-off)
				if k != wantN || !bytes.Equal(p[:k], data[off:off+wantN]) || (k < n) != (err == io.EOF) {
					t.Fatalf("ReadAt(%d, %d) = %d, %v (seed %d)", n, off, k, err, seed)
				}
				if _, err := r.Seek(int64(off), io.SeekStart); err != nil {
					t.Fatal(err)
				}
				k2, err := io.ReadFull(r, p[:wantN])
				if err != nil || k2 != wantN || !bytes.Equal(p[:k2], data[off:off+wantN]) {
					t.Fatalf("Seek(%d) then Read: %d, %v (seed %d)", off, k2, err, seed)
				}
			}
			if pos, err := r.Seek(-1, io.SeekEnd); len(data) > 0 && (err != nil || pos != int64(len(data))-1) {
				t.Fatalf("Seek from the end: %d, %v", pos, err)
			}
		})
	}
}

func TestReaderConcurrentReadAt(t *testing.T) {
	data := randomBytes(8, 40*SegmentSize+3)
	st, im := importBytes(t, data, ImportOptions{leaf: SegmentSize})
	r, err := Open(t.Context(), st, im.Cap, ReaderOptions{Prefetch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			p := make([]byte, 2*SegmentSize)
			for range 30 {
				off := rng.IntN(len(data) - len(p))
				if _, err := r.ReadAt(p, int64(off)); err != nil || !bytes.Equal(p, data[off:off+len(p)]) {
					errs <- fmt.Errorf("goroutine %d: ReadAt at %d: %v", g, off, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestReaderErrors(t *testing.T) {
	data := randomBytes(9, 3*16*SegmentSize+11)
	st, im := importBytes(t, data, ImportOptions{})
	ctx := t.Context()

	t.Run("wrong key", func(t *testing.T) {
		c := im.Cap
		c.Key[0] ^= 1
		r, err := Open(ctx, st, c, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := io.ReadAll(r); !errors.Is(err, ErrWrongKey) {
			t.Fatalf("read under a wrong key: %v", err)
		}
	})
	t.Run("corrupt block passes through", func(t *testing.T) {
		var leaf cid.Cid
		for c := range st.m {
			if c.Type() == cid.Raw {
				leaf = c
				break
			}
		}
		g := failing{st, leaf}
		r, err := Open(ctx, g, im.Cap, ReaderOptions{Prefetch: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, err = io.ReadAll(r)
		if !errors.Is(err, blocks.ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(leaf.String())) {
			t.Fatalf("read with a corrupt leaf: %v", err)
		}
	})
	t.Run("a directory", func(t *testing.T) {
		c := im.Cap
		c.Dir = true
		if _, err := Open(ctx, st, c, ReaderOptions{}); !errors.Is(err, ErrIsDir) {
			t.Fatalf("Open of a dir capability: %v", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		r, err := Open(ctx, st, im.Cap, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		if _, err := r.ReadAt(make([]byte, 5), 0); !errors.Is(err, ErrClosed) {
			t.Fatalf("ReadAt after Close: %v", err)
		}
	})
	t.Run("sizes that do not add up", func(t *testing.T) {
		leaf := rawLeaf(seal(im.Cap.Key, infoPayload, []byte("hi")))
		for name, sizes := range map[string][]uint64{"too big": {19}, "too small": {17}, "two sizes": {18, 0}} {
			root := fileNodeOver(t, []blockformat.Block{leaf}, sizes, 0)
			st.PutMany(ctx, []blockformat.Block{leaf, root})
			c := Capability{Root: root.Cid(), Key: im.Cap.Key}
			r, err := Open(ctx, st, c, ReaderOptions{})
			if err == nil {
				_, err = io.ReadAll(r)
				r.Close()
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s: %v", name, err)
			}
		}
	})
	t.Run("a length no stream has", func(t *testing.T) {
		pub, imp := importBytes(t, []byte("ten bytes!"), ImportOptions{Public: true})
		c := imp.Cap
		c.Public = false
		if _, err := Open(ctx, pub, c, ReaderOptions{}); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Open of 10 bytes as sealed: %v", err)
		}
	})
	t.Run("too deep", func(t *testing.T) {
		leaf := rawLeaf([]byte("x"))
		b := leaf
		all := []blockformat.Block{leaf}
		for range maxDepth + 2 {
			b = fileNodeOver(t, []blockformat.Block{b}, []uint64{1}, 1)
			all = append(all, b)
		}
		st.PutMany(ctx, all)
		r, err := Open(ctx, st, Capability{Root: b.Cid(), Public: true}, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := io.ReadAll(r); !errors.Is(err, ErrMalformed) {
			t.Fatalf("a DAG %d deep: %v", maxDepth+2, err)
		}
	})
}

// fileNodeOver makes a UnixFS file node linking children, claiming the
// block sizes given and file size fsize (0: their sum).
func fileNodeOver(t *testing.T, children []blockformat.Block, sizes []uint64, fsize uint64) blockformat.Block {
	t.Helper()
	nd := new(dag.ProtoNode)
	nd.SetCidBuilder(cidPrefix)
	fsn := ft.NewFSNode(ft.TFile)
	for _, c := range children {
		nd.AddRawLink("", &ipld.Link{Size: uint64(len(c.RawData())), Cid: c.Cid()})
	}
	for _, s := range sizes {
		fsn.AddBlockSize(s)
	}
	data, err := fsn.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	nd.SetData(data)
	b, err := blockformat.NewBlockWithCid(nd.RawData(), nd.Cid())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failing is a getter that reports one block as corrupt, as blocks.Store
// does.
type failing struct {
	BlockGetter
	bad cid.Cid
}

func (f failing) GetBlocks(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	for _, c := range cs {
		if c == f.bad {
			return nil, fmt.Errorf("block %s: %w", c, blocks.ErrCorrupt)
		}
	}
	return f.BlockGetter.GetBlocks(ctx, cs)
}

// missingLeaf is a getter whose one leaf no peer holds: a call that asks
// for it waits until its context ends.
type missingLeaf struct {
	*memBlocks
	gone cid.Cid
}

func (g missingLeaf) GetBlocks(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	for _, c := range cs {
		if c.Equals(g.gone) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	return g.memBlocks.GetBlocks(ctx, cs)
}

// TestReadNotHeldByPrefetchOfMissingLeaf: the prefetch window reaches a
// leaf no peer holds (past the range wanted, held only by a peer that
// died); the leaves before it still read. Prefetching them in one batch
// with that leaf made a read wait for the whole batch (netnstest TestFiles
// stalled so once under load).
func TestReadNotHeldByPrefetchOfMissingLeaf(t *testing.T) {
	leafPlainSize := LeafSize / SealedSegmentSize * SegmentSize
	data := randomBytes(21, 10*leafPlainSize)
	st := newMemBlocks()
	im, err := Import(t.Context(), bytes.NewReader(data), st, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root, err := st.GetBlocks(t.Context(), []cid.Cid{im.Cap.Root})
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := Children(root[0])
	if err != nil || len(leaves) != 10 {
		t.Fatalf("children: %d, %v", len(leaves), err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// A window wider than the blob: the first prefetch asks for every
	// leaf the first read does not.
	r, err := Open(ctx, missingLeaf{st, leaves[9]}, im.Cap, ReaderOptions{Prefetch: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := data[:9*leafPlainSize]
	got := make([]byte, len(want))
	// In small reads, as a player or an HTTP response reads: each Read
	// hints the prefetcher.
	for off := 0; off < len(got); {
		n, err := r.Read(got[off:min(off+64<<10, len(got))])
		if err != nil {
			t.Fatalf("reading the 9 leaves held: %v after %d bytes", err, off)
		}
		off += n
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the 9 leaves held read back wrong")
	}
}
