package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"testing"
	"time"

	ft "github.com/ipfs/boxo/ipld/unixfs"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// changingFile is a file whose content changes after the first full read
// of it (a file edited while `files add` hashes, then seals it).
type changingFile struct {
	before, after []byte
	reads         atomic.Int64 // bytes read so far
}

func (f *changingFile) ReadAt(p []byte, off int64) (int, error) {
	src := f.before
	if f.reads.Load() >= int64(len(f.before)) {
		src = f.after
	}
	if off >= int64(len(src)) {
		return 0, io.EOF
	}
	n := copy(p, src[off:])
	f.reads.Add(int64(n))
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestImportFileChangedBetweenPasses: a derived key is the content's; a
// file that changes between the hash pass and the sealing pass must not
// be sealed under the key of the content it no longer holds (the same key
// and nonces over another plaintext: GCM's keystream and its hash key
// leak once the original is added too).
func TestImportFileChangedBetweenPasses(t *testing.T) {
	secret := []byte("the cell's blob secret")
	before := randomBytes(7, 3*hashChunk+5)
	after := bytes.Clone(before)
	after[hashChunk+3] ^= 1
	f := &changingFile{before: before, after: after}
	im, err := ImportFile(t.Context(), f, int64(len(before)), newMemBlocks(), ImportOptions{Secret: secret})
	if err == nil {
		h, _ := HashContent(t.Context(), bytes.NewReader(before), int64(len(before)))
		if im.Cap.Key == DeriveKey(secret, h) {
			t.Fatal("a file changed between the passes was sealed under the key of its former content")
		}
	} else if !errors.Is(err, ErrChanged) {
		t.Fatalf("import of a changing file: %v, want ErrChanged", err)
	}
	// The same, shrunk between the passes.
	f = &changingFile{before: before, after: before[:2*hashChunk]}
	if _, err := ImportFile(t.Context(), f, int64(len(before)), newMemBlocks(), ImportOptions{Secret: secret}); !errors.Is(err, ErrChanged) {
		t.Fatalf("import of a file shrunk between the passes: %v, want ErrChanged", err)
	}
}

// TestImportFileByteChangedBetweenPasses: the sealing pass compares what
// it reads with checksums of the first pass's chunks, not with SHA-256
// again; one byte changed between the passes, wherever it is (the first,
// either side of a 1 MiB chunk's end and of a leaf's, the last), is
// ErrChanged, and nothing is sealed under the key of the content hashed
// (no root is put).
func TestImportFileByteChangedBetweenPasses(t *testing.T) {
	secret := []byte("the cell's blob secret")
	size := 3*hashChunk + 5
	leafPlain := ImportOptions{}.leafPlain()
	for _, at := range []int{0, hashChunk - 1, hashChunk, leafPlain - 1, leafPlain, 2*leafPlain + 7, size - 1} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			before := randomBytes(8, size)
			after := bytes.Clone(before)
			after[at]++
			st := newMemBlocks()
			_, err := ImportFile(t.Context(), &changingFile{before: before, after: after}, int64(size), st, ImportOptions{Secret: secret})
			if !errors.Is(err, ErrChanged) {
				t.Fatalf("byte %d changed between the passes: %v, want ErrChanged", at, err)
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			for c := range st.m {
				if c.Type() != cid.Raw {
					t.Fatalf("byte %d changed: a node %s was put, so a root could be", at, c)
				}
			}
		})
	}
	// Unchanged, the same reader type imports.
	before := randomBytes(8, size)
	if _, err := ImportFile(t.Context(), &changingFile{before: before, after: before}, int64(size), newMemBlocks(), ImportOptions{Secret: secret}); err != nil {
		t.Fatalf("unchanged file: %v", err)
	}
}

// TestReaderManyTinyLeaves: a public DAG of a few blocks can claim many
// leaves of one byte (the same leaf linked again and again). A read over
// it must stay linear in time and bounded in memory: the spans of one
// round were kept all at once and sorted by insertion, quadratic when a
// deeper level's leaves come before a shallower one's (here 2^18 behind
// 2^18: minutes).
func TestReaderManyTinyLeaves(t *testing.T) {
	ctx := t.Context()
	st := newMemBlocks()
	leaf := rawLeaf([]byte("x"))
	const fan = 4096
	kids, sizes := make([]blockformat.Block, fan), make([]uint64, fan)
	for i := range kids {
		kids[i], sizes[i] = leaf, 1
	}
	n1 := fileNodeOver(t, kids, sizes, 0) // 4096 bytes, depth 1
	const k = 64
	kids, sizes = make([]blockformat.Block, k), make([]uint64, k)
	for i := range kids {
		kids[i], sizes[i] = n1, fan
	}
	a := fileNodeOver(t, kids, sizes, 0) // 256 KiB, depth 2
	kids, sizes = []blockformat.Block{a}, []uint64{k * fan}
	for range k {
		kids, sizes = append(kids, n1), append(sizes, fan)
	}
	root := fileNodeOver(t, kids, sizes, 0) // 512 KiB: a's leaves first, found a level later
	st.PutMany(ctx, []blockformat.Block{leaf, n1, a, root})
	r, err := Open(ctx, st, Capability{Root: root.Cid(), Public: true}, ReaderOptions{Prefetch: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	p := make([]byte, r.Size())
	n, err := r.ReadAt(p, 0)
	if err != nil && !errors.Is(err, ErrMalformed) {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	if err == nil && !bytes.Equal(p, bytes.Repeat([]byte("x"), len(p))) {
		t.Fatal("wrong bytes")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a read of %d one-byte leaves took %v", len(p), d)
	}
}

// bytesPerCall is a getter that records the most block bytes one
// GetBlocks returned (what a caller holds at once).
type bytesPerCall struct {
	BlockGetter
	most atomic.Int64
}

func (g *bytesPerCall) GetBlocks(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	bs, err := g.BlockGetter.GetBlocks(ctx, cs)
	var n int64
	for _, b := range bs {
		n += int64(len(b.RawData()))
	}
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
	return bs, err
}

// TestReadDirPublicMemory: listing a public directory reads its entries'
// roots for their sizes; a directory of thousands of entries naming one
// 2 MiB leaf again and again (two blocks) made ReadDir ask for all of
// them at once, and a store returns a copy per CID: 2 MiB per entry held
// together (the 40,000 entries one node holds: 80 GiB).
func TestReadDirPublicMemory(t *testing.T) {
	ctx := t.Context()
	st := newMemBlocks()
	leaf := rawLeaf(randomBytes(11, maxBlock))
	nd := ft.EmptyDirNode()
	nd.SetCidBuilder(cidPrefix)
	const n = 1000
	for i := range n {
		name := fmt.Sprintf("f%05d", i)
		if err := nd.AddRawLink(name, &ipld.Link{Name: name, Size: maxBlock, Cid: leaf.Cid()}); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := blockformat.NewBlockWithCid(nd.RawData(), nd.Cid())
	if err != nil {
		t.Fatal(err)
	}
	st.PutMany(ctx, []blockformat.Block{leaf, dir})
	g := &bytesPerCall{BlockGetter: st}
	es, err := ReadDir(ctx, g, Capability{Root: dir.Cid(), Public: true, Dir: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != n || es[0].Size != maxBlock || es[n-1].Size != maxBlock {
		t.Fatalf("%d entries, %+v", len(es), es[0])
	}
	if m := g.most.Load(); m > 256<<20 {
		t.Fatalf("ReadDir held %d MiB of blocks at once", m>>20)
	}
}

// TestReaderNodeCacheBound: the internal nodes a Reader caches are
// bounded in bytes, not only in number: 1,024 nodes of 8,192 links (or of
// 2 MiB of inline data) are half a gigabyte (2 GiB) held for the
// Reader's life.
func TestReaderNodeCacheBound(t *testing.T) {
	ctx := t.Context()
	st := newMemBlocks()
	const nodes, fan = 200, maxNodeLinks
	var kids []blockformat.Block
	var sizes []uint64
	for i := range nodes {
		leaf := rawLeaf([]byte{byte(i), byte(i >> 8)})
		ls, ss := make([]blockformat.Block, fan), make([]uint64, fan)
		for j := range ls {
			ls[j], ss[j] = leaf, 2
		}
		n := fileNodeOver(t, ls, ss, 0)
		st.PutMany(ctx, []blockformat.Block{leaf, n})
		kids, sizes = append(kids, n), append(sizes, 2*fan)
	}
	root := fileNodeOver(t, kids, sizes, 0)
	st.PutMany(ctx, []blockformat.Block{root})
	r, err := Open(ctx, st, Capability{Root: root.Cid(), Public: true}, ReaderOptions{Prefetch: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b [1]byte
	for i := range nodes {
		if _, err := r.ReadAt(b[:], int64(i)*2*fan+1); err != nil || b[0] != byte(i>>8) {
			t.Fatalf("read in node %d: %v, %d", i, err, b[0])
		}
	}
	var held int
	r.nodes.mu.Lock()
	for k := range r.nodes.m {
		n := r.nodes.m[k].Value.(*lruEntry[*fileNode]).v
		held += nodeWeight(n)
	}
	r.nodes.mu.Unlock()
	if held > maxNodeCacheBytes {
		t.Fatalf("the node cache holds %d MiB, more than its %d MiB", held>>20, maxNodeCacheBytes>>20)
	}
}

// TestSizesNearMaxInt64: a DAG can claim a stream of nearly 2^63 bytes
// (a few blocks linked again and again); the segment count must not
// overflow (it went negative, so no segment was the final one).
func TestSizesNearMaxInt64(t *testing.T) {
	for _, c := range []int64{math.MaxInt64, math.MaxInt64 - 1, math.MaxInt64 - SealedSegmentSize + 1, math.MaxInt64 / SealedSegmentSize * SealedSegmentSize} {
		size, err := PlaintextSize(c)
		if err != nil {
			continue
		}
		n := segments(c)
		if n <= 0 || (n-1)*SealedSegmentSize >= c || CiphertextSize(size) != c || c-(n-1)*SealedSegmentSize > SealedSegmentSize {
			t.Errorf("stream of %d bytes: %d segments, plaintext %d, back %d", c, n, size, CiphertextSize(size))
		}
	}
}

// TestReaderRefusesBigLeaf: doc.go says a block over 2 MiB is
// ErrMalformed; a raw leaf that large (a store may hold one, bitswap never
// sends one) was read as any other.
func TestReaderRefusesBigLeaf(t *testing.T) {
	ctx := t.Context()
	st := newMemBlocks()
	leaf := rawLeaf(randomBytes(12, maxBlock+1))
	root := fileNodeOver(t, []blockformat.Block{leaf, leaf}, []uint64{maxBlock + 1, maxBlock + 1}, 0)
	st.PutMany(ctx, []blockformat.Block{leaf, root})
	for _, c := range []cid.Cid{leaf.Cid(), root.Cid()} {
		r, err := Open(ctx, st, Capability{Root: c, Public: true}, ReaderOptions{})
		if err == nil {
			_, err = r.ReadAt(make([]byte, 10), 5)
			r.Close()
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("a leaf of %d bytes (root codec %#x): %v, want ErrMalformed", maxBlock+1, c.Type(), err)
		}
	}
}
