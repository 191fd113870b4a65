package blob

import (
	"cmp"
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// ReaderOptions tunes a Reader.
type ReaderOptions struct {
	// Prefetch is how many leaves sequential Reads fetch ahead; 0: 8,
	// negative: none.
	Prefetch int
}

// maxNodeCache bounds the internal nodes a Reader keeps (decoded): 1024
// nodes of 174 links cover 178,176 leaves, a 174 GiB blob.
const maxNodeCache = 1024

// maxNodeCacheBytes bounds the memory of those nodes (nodeWeight): 1,024
// of ours take about 10 MiB, but a node may have 8,192 links or 2 MiB of
// inline data.
const maxNodeCacheBytes = 16 << 20

// nodeWeight is about the memory a decoded node holds.
func nodeWeight(n *fileNode) int {
	w := 64 + len(n.data) + 8*len(n.sizes)
	for _, c := range n.links {
		w += 16 + len(c.KeyString())
	}
	return w
}

// ErrClosed is the error of a Reader used after Close.
var ErrClosed = errors.New("blob: reader closed")

// Reader reads a blob's plaintext: io.Reader, io.Seeker and io.ReaderAt.
// A read fetches only the leaves under its range and the internal nodes on
// their path; sequential Reads also fetch the next leaves ahead in a
// goroutine. ReadAt and Size are safe for concurrent use; Read and Seek
// share a position and are not (like *os.File).
type Reader struct {
	g       BlockGetter
	root    *fileNode
	stream  int64 // bytes of the stream (ciphertext, or the plaintext of a public blob)
	size    int64 // plaintext bytes
	aead    cipher.AEAD
	ctx     context.Context // ends at Close
	cancel  context.CancelCauseFunc
	hints   chan int64 // stream offsets to prefetch from
	ahead   int64      // stream bytes to prefetch
	wg      sync.WaitGroup
	pos     int64
	nodes   *lru[*fileNode]
	leaves  *lru[[]byte]
	mu      sync.Mutex
	pending map[cid.Cid]*fetchCall // leaves being fetched

	segMu    sync.Mutex
	segIndex int64  // the segment opened last
	segPlain []byte // its plaintext (not modified once set), or nil
}

// fetchCall is one fetch of a leaf others may wait for.
type fetchCall struct {
	done chan struct{}
	data []byte
	err  error
}

// Open fetches the root of the blob c and returns a Reader of its
// plaintext. Errors: ErrIsDir for a directory; ErrMalformed for a root
// that is not a UnixFS file or whose size no sealed stream has; the
// getter's errors (blocks.ErrCorrupt) pass through. The Reader fetches
// with ctx until Close.
func Open(ctx context.Context, g BlockGetter, c Capability, o ReaderOptions) (*Reader, error) {
	if c.Dir {
		return nil, ErrIsDir
	}
	return openStream(ctx, g, c, o, infoPayload)
}

// openStream opens the stream of c, sealed with HKDF info unless public.
func openStream(ctx context.Context, g BlockGetter, c Capability, o ReaderOptions, info string) (*Reader, error) {
	bs, err := g.GetBlocks(ctx, []cid.Cid{c.Root})
	if err != nil {
		return nil, fmt.Errorf("blob: root %s: %w", c.Root, err)
	}
	if err := checkBlocks(bs, []cid.Cid{c.Root}); err != nil {
		return nil, err
	}
	root, err := decodeFileNode(bs[0])
	if err != nil {
		return nil, err
	}
	r := &Reader{g: g, root: root, stream: int64(root.total), size: int64(root.total),
		nodes: newWeightedLRU(maxNodeCache, maxNodeCacheBytes, nodeWeight), pending: map[cid.Cid]*fetchCall{}}
	leaf := int64(PublicLeafSize)
	if !c.Public {
		if r.size, err = PlaintextSize(r.stream); err != nil {
			return nil, fmt.Errorf("blob: %s: %w", c.Root, err)
		}
		r.aead = payloadAEAD(c.Key, info)
		leaf = LeafSize
	}
	prefetch := o.Prefetch
	if prefetch == 0 {
		prefetch = 8
	}
	r.leaves = newLRU[[]byte](max(prefetch, 0) + 4)
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	if prefetch > 0 {
		r.ahead = int64(prefetch) * leaf
		r.hints = make(chan int64, 1)
		r.wg.Add(1)
		go r.prefetch()
	}
	return r, nil
}

// Size is the blob's plaintext size.
func (r *Reader) Size() int64 { return r.size }

// Close stops prefetching and waits for it; reads after Close fail.
func (r *Reader) Close() error {
	r.cancel(ErrClosed)
	r.wg.Wait()
	return nil
}

// Read reads from the position, which it advances.
func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	if r.hints != nil && n > 0 {
		select {
		case r.hints <- r.streamOffset(r.pos):
		default:
		}
	}
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the position of Read (io.Seeker).
func (r *Reader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.size
	default:
		return 0, fmt.Errorf("blob: seek: whence %d", whence)
	}
	if off < 0 {
		return 0, fmt.Errorf("blob: seek to %d", off)
	}
	r.pos = off
	return off, nil
}

// streamOffset is the stream offset holding plaintext offset off.
func (r *Reader) streamOffset(off int64) int64 {
	if r.aead == nil {
		return off
	}
	return off / SegmentSize * SealedSegmentSize
}

// ReadAt reads len(p) bytes at plaintext offset off (io.ReaderAt): it
// fetches the leaves under the range, with the internal nodes on their
// path not yet cached, and opens the segments in it. It is safe for
// concurrent use.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("blob: read at %d", off)
	}
	if r.ctx.Err() != nil {
		return 0, fmt.Errorf("blob: %w", context.Cause(r.ctx))
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(len(p)), r.size-off)]
	if r.aead == nil {
		// A round at most 16 MiB of leaves, whatever len(p).
		for q, o := p, off; len(q) > 0; {
			n := min(len(q), 16<<20)
			if err := r.readStream(q[:n], o); err != nil {
				return 0, err
			}
			q, o = q[n:], o+int64(n)
		}
	} else if err := r.readSealed(p, off); err != nil {
		return 0, err
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// readSealed fills p with the plaintext at off (all within the blob),
// one leaf's worth of segments at a time.
func (r *Reader) readSealed(p []byte, off int64) error {
	const step = LeafSize / SealedSegmentSize // segments per round
	nseg := segments(r.stream)
	// Small sequential reads (io.Copy's 32 KiB) fall in the segment the
	// previous read opened.
	r.segMu.Lock()
	if r.segPlain != nil && off/SegmentSize == r.segIndex && off+int64(len(p)) <= (r.segIndex+1)*SegmentSize {
		copy(p, r.segPlain[off-r.segIndex*SegmentSize:])
		r.segMu.Unlock()
		return nil
	}
	r.segMu.Unlock()
	var plain []byte
	var s int64
	for len(p) > 0 {
		first := off / SegmentSize
		last := min((off+int64(len(p))-1)/SegmentSize, first+step-1)
		start := first * SealedSegmentSize
		end := min((last+1)*SealedSegmentSize, r.stream)
		buf := make([]byte, end-start)
		if err := r.readStream(buf, start); err != nil {
			return err
		}
		for s = first; s <= last; s++ {
			sealed := buf[(s-first)*SealedSegmentSize : min(int64(len(buf)), (s-first+1)*SealedSegmentSize)]
			var err error
			if plain, err = openSegment(r.aead, make([]byte, 0, len(sealed)), sealed, s, s == nseg-1); err != nil {
				return fmt.Errorf("blob: %w", err)
			}
			from := off - s*SegmentSize
			n := copy(p, plain[from:])
			p, off = p[n:], off+int64(n)
		}
	}
	r.segMu.Lock()
	r.segIndex, r.segPlain = s-1, plain
	r.segMu.Unlock()
	return nil
}

// span is a part of the stream read from one block.
type span struct {
	at   int64   // stream offset of the block's first byte
	leaf cid.Cid // a raw leaf to fetch, or
	data []byte  // inline data of a dag-pb node
	size uint64  // the bytes its parent says it holds
}

// maxSpans bounds the blocks (and internal nodes of a level) one round of
// a read walks to: a range over more (leaves of a few bytes, a DAG made
// to claim millions of them with a few blocks linked again and again) is
// read in halves, so that memory stays bounded and time linear.
const maxSpans = 1 << 14

// errManySpans is spans' error for a range over more than maxSpans blocks.
var errManySpans = errors.New("blob: a range over too many blocks")

// readStream fills p with the stream's bytes at off (all within it).
func (r *Reader) readStream(p []byte, off int64) error {
	spans, err := r.spans(off, off+int64(len(p)))
	if errors.Is(err, errManySpans) && len(p) > 1 {
		h := len(p) / 2
		if err := r.readStream(p[:h], off); err != nil {
			return err
		}
		return r.readStream(p[h:], off+int64(h))
	}
	if err != nil {
		return err
	}
	var cs []cid.Cid
	for _, s := range spans {
		if s.leaf.Defined() {
			cs = append(cs, s.leaf)
		}
	}
	datas, err := r.getLeaves(r.ctx, cs)
	if err != nil {
		return err
	}
	for _, s := range spans {
		d := s.data
		if s.leaf.Defined() {
			d, datas = datas[0], datas[1:]
			if len(d) > maxBlock {
				return fmt.Errorf("blob: leaf %s of %d bytes: %w", s.leaf, len(d), ErrMalformed)
			}
			if uint64(len(d)) != s.size {
				return fmt.Errorf("blob: leaf %s of %d bytes, its parent says %d: %w", s.leaf, len(d), s.size, ErrMalformed)
			}
		}
		from := max(off-s.at, 0)
		to := min(int64(len(d)), off+int64(len(p))-s.at)
		if from < to {
			copy(p[s.at+from-off:], d[from:to])
		}
	}
	return nil
}

// spans returns the blocks under the stream range [off, end), in order,
// walking down from the root level by level and fetching, in one
// GetBlocks per level, the internal nodes on the way not yet cached.
func (r *Reader) spans(off, end int64) ([]span, error) {
	type at struct {
		n    *fileNode
		base int64
	}
	level := []at{{r.root, 0}}
	var out []span
	for depth := 0; len(level) > 0; depth++ {
		if depth > maxDepth {
			return nil, fmt.Errorf("blob: DAG deeper than %d: %w", maxDepth, ErrMalformed)
		}
		var next []cid.Cid
		var nextBase []int64
		var nextSize []uint64
		for _, a := range level {
			pos := a.base
			if len(a.n.data) > 0 {
				if pos < end && pos+int64(len(a.n.data)) > off {
					out = append(out, span{at: pos, data: a.n.data, size: uint64(len(a.n.data))})
				}
				pos += int64(len(a.n.data))
			}
			for i, c := range a.n.links {
				sz := int64(a.n.sizes[i])
				if pos < end && pos+sz > off {
					if c.Type() == cid.Raw {
						out = append(out, span{at: pos, leaf: c, size: uint64(sz)})
					} else {
						next, nextBase, nextSize = append(next, c), append(nextBase, pos), append(nextSize, uint64(sz))
					}
				}
				pos += sz
				if pos >= end {
					break
				}
			}
			if len(out)+len(next) > maxSpans {
				return nil, errManySpans
			}
		}
		nodes, err := r.getNodes(r.ctx, next)
		if err != nil {
			return nil, err
		}
		level = level[:0]
		for i, n := range nodes {
			if n.total != nextSize[i] {
				return nil, fmt.Errorf("blob: node %s holds %d bytes, its parent says %d: %w", next[i], n.total, nextSize[i], ErrMalformed)
			}
			level = append(level, at{n, nextBase[i]})
		}
	}
	// Spans come level by level; put them in stream order.
	sortSpans(out)
	return out, nil
}

func sortSpans(s []span) {
	slices.SortFunc(s, func(a, b span) int { return cmp.Compare(a.at, b.at) })
}

// getNodes returns the decoded internal nodes cs, from the cache or
// fetched together.
func (r *Reader) getNodes(ctx context.Context, cs []cid.Cid) ([]*fileNode, error) {
	out := make([]*fileNode, len(cs))
	var miss []cid.Cid
	var at []int
	for i, c := range cs {
		if n, ok := r.nodes.get(c); ok {
			out[i] = n
		} else {
			miss, at = append(miss, c), append(at, i)
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	bs, err := r.g.GetBlocks(ctx, miss)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	if err := checkBlocks(bs, miss); err != nil {
		return nil, err
	}
	for j, b := range bs {
		n, err := decodeFileNode(b)
		if err != nil {
			return nil, err
		}
		r.nodes.put(miss[j], n)
		out[at[j]] = n
	}
	return out, nil
}

// getLeaves returns the data of the raw leaves cs: cached, being fetched
// by another read (waited for), or fetched here together.
func (r *Reader) getLeaves(ctx context.Context, cs []cid.Cid) ([][]byte, error) {
	out := make([][]byte, len(cs))
	var mine []cid.Cid
	var mineAt []int
	waits := map[int]*fetchCall{}
	r.mu.Lock()
	for i, c := range cs {
		if d, ok := r.leaves.get(c); ok {
			out[i] = d
		} else if call, ok := r.pending[c]; ok {
			waits[i] = call
		} else {
			call := &fetchCall{done: make(chan struct{})}
			r.pending[c] = call
			waits[i] = call
			mine, mineAt = append(mine, c), append(mineAt, i)
		}
	}
	r.mu.Unlock()
	if len(mine) > 0 {
		bs, err := r.g.GetBlocks(ctx, mine)
		if err == nil {
			err = checkBlocks(bs, mine)
		}
		r.mu.Lock()
		for j, c := range mine {
			call := r.pending[c]
			delete(r.pending, c)
			if err != nil {
				call.err = fmt.Errorf("blob: %w", err)
			} else {
				call.data = bs[j].RawData()
				r.leaves.put(c, call.data)
			}
			close(call.done)
		}
		r.mu.Unlock()
	}
	for i, call := range waits {
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if call.err != nil {
			return nil, call.err
		}
		out[i] = call.data
	}
	return out, nil
}

// checkBlocks checks that a getter gave the blocks asked, in order.
func checkBlocks(bs []blockformat.Block, cs []cid.Cid) error {
	if len(bs) != len(cs) {
		return fmt.Errorf("blob: asked %d blocks, got %d: %w", len(cs), len(bs), ErrMalformed)
	}
	for i, b := range bs {
		if b == nil || !b.Cid().Equals(cs[i]) {
			return fmt.Errorf("blob: asked %s, got another block: %w", cs[i], ErrMalformed)
		}
	}
	return nil
}

// prefetch fetches the leaves ahead of sequential Reads into the cache,
// until Close.
func (r *Reader) prefetch() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case off := <-r.hints:
			if off >= r.stream {
				continue
			}
			spans, err := r.spans(off, min(off+r.ahead, r.stream))
			if err != nil {
				continue // the read that needs it reports the error
			}
			var cs []cid.Cid
			for _, s := range spans {
				if s.leaf.Defined() && !r.leaves.has(s.leaf) {
					cs = append(cs, s.leaf)
				}
			}
			// One call per leaf, side by side: a read waits for its
			// leaf alone, not for a batch with a leaf that no
			// reachable peer holds (past the range a reader wants,
			// held only by a peer that died): that read stalled.
			var wg sync.WaitGroup
			for _, c := range cs {
				wg.Go(func() {
					r.getLeaves(r.ctx, []cid.Cid{c}) //nolint:errcheck // a failure shows in the read that needs the leaf
				})
			}
			wg.Wait()
		}
	}
}
