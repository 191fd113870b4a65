package blob

import (
	"bytes"
	"context"
	"crypto/cipher"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// lazyBlob is a large sealed blob that does not fit a test's memory: the
// plaintext of leaf i is randomBytes(seed+i, …); the import keeps the
// internal nodes only (number then finds each leaf's index from their
// links: the putter is called concurrently, so the order of PutMany calls
// is not the leaves'), and GetBlocks makes a leaf
// again (sealing and hashing it; the CID must match) when asked.
type lazyBlob struct {
	*memBlocks // the internal nodes
	seed       uint64
	size       int64
	aead       cipher.AEAD
	mu         sync.Mutex
	leaves     map[cid.Cid]int64
}

// number sets the index of every leaf under the internal node c, from the
// stored internal nodes, counting from next; it returns the next index.
func (l *lazyBlob) number(c cid.Cid, next int64) (int64, error) {
	if c.Type() == cid.Raw {
		l.leaves[c] = next
		return next + 1, nil
	}
	b, ok := l.memBlocks.m[c]
	if !ok {
		return 0, fmt.Errorf("lazyBlob: no node %s", c)
	}
	links, err := Children(b)
	if err != nil {
		return 0, err
	}
	for _, k := range links {
		if next, err = l.number(k, next); err != nil {
			return 0, err
		}
	}
	return next, nil
}

const lazyLeaf = 16 * SegmentSize // plaintext of a leaf

func (l *lazyBlob) plain(i int64) []byte {
	n := min(int64(lazyLeaf), l.size-i*lazyLeaf)
	return randomBytes(l.seed+uint64(i), int(n))
}

// Read is the plaintext stream, for the import.
type lazyStream struct {
	l   *lazyBlob
	i   int64
	buf []byte
}

func (s *lazyStream) Read(p []byte) (int, error) {
	if len(s.buf) == 0 {
		if s.i*lazyLeaf >= s.l.size {
			return 0, io.EOF
		}
		s.buf = s.l.plain(s.i)
		s.i++
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

func (l *lazyBlob) PutMany(ctx context.Context, bs []blockformat.Block) error {
	var keep []blockformat.Block
	for _, b := range bs {
		if b.Cid().Type() != cid.Raw {
			keep = append(keep, b)
		}
	}
	return l.memBlocks.PutMany(ctx, keep)
}

func (l *lazyBlob) GetBlocks(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	var inner []cid.Cid
	for _, c := range cs {
		if c.Type() != cid.Raw {
			inner = append(inner, c)
		}
	}
	in, err := l.memBlocks.GetBlocks(ctx, inner) // counts the internal nodes
	if err != nil {
		return nil, err
	}
	l.memBlocks.asked.Add(int64(len(cs) - len(inner)))
	out := make([]blockformat.Block, len(cs))
	for j, c := range cs {
		if c.Type() != cid.Raw {
			out[j], in = in[0], in[1:]
			continue
		}
		l.mu.Lock()
		i, ok := l.leaves[c]
		l.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("lazyBlob: no leaf %s", c)
		}
		last := (i+1)*lazyLeaf >= l.size
		b := rawLeaf(sealLeaf(l.aead, nil, l.plain(i), i, 16, last))
		if b.Cid() != c {
			return nil, fmt.Errorf("lazyBlob: leaf %d made again is not %s", i, c)
		}
		out[j] = b
	}
	return out, nil
}

// TestReadAtFetchesOnlyTheRange is the reader's part of "1 MiB at a random
// offset of a 1 GiB remote blob needs at most the leaves covering it plus
// their path": a fresh Reader (nothing cached but the root) asks its
// getter for exactly the leaves under the range and the internal nodes
// above them.
func TestReadAtFetchesOnlyTheRange(t *testing.T) {
	const seed = 1 << 40
	size := int64(1 << 30)
	if testing.Short() {
		size = 300 << 20 // still two levels: 301 leaves
	}
	k := Key{7}
	l := &lazyBlob{memBlocks: newMemBlocks(), seed: seed, size: size, aead: payloadAEAD(k, infoPayload), leaves: map[cid.Cid]int64{}}
	im, err := Import(t.Context(), &lazyStream{l: l}, l, ImportOptions{Key: &k})
	if err != nil {
		t.Fatal(err)
	}
	if im.Size != size {
		t.Fatalf("imported %d bytes, want %d", im.Size, size)
	}
	if n, err := l.number(im.Cap.Root, 0); err != nil || n != (size+lazyLeaf-1)/lazyLeaf {
		t.Fatalf("numbered %d leaves (%v), want %d", n, err, (size+lazyLeaf-1)/lazyLeaf)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	p := make([]byte, 1<<20)
	for range 12 {
		off := rng.Int64N(size - int64(len(p)))
		r, err := Open(t.Context(), l, im.Cap, ReaderOptions{Prefetch: -1})
		if err != nil {
			t.Fatal(err)
		}
		before := l.asked.Load()
		if _, err := r.ReadAt(p, off); err != nil {
			t.Fatal(err)
		}
		asked := l.asked.Load() - before
		r.Close()
		firstLeaf := off / SegmentSize / 16
		lastLeaf := (off + int64(len(p)) - 1) / SegmentSize / 16
		leaves := lastLeaf - firstLeaf + 1
		path := lastLeaf/MaxLinks - firstLeaf/MaxLinks + 1 // nodes of depth 1 above them (the root is depth 2)
		if asked != leaves+path {
			t.Fatalf("ReadAt of 1 MiB at %d asked %d blocks, want %d leaves + %d nodes (seed %d)", off, asked, leaves, path, uint64(seed))
		}
		var want bytes.Buffer
		for i := firstLeaf; i <= lastLeaf; i++ {
			want.Write(l.plain(i))
		}
		from := off - firstLeaf*lazyLeaf
		if !bytes.Equal(p, want.Bytes()[from:from+int64(len(p))]) {
			t.Fatalf("ReadAt at %d: wrong bytes (seed %d)", off, uint64(seed))
		}
	}
}
