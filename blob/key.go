package blob

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/exopeer/exopeer/internal/ambient"
)

// NewKey returns a random key read from rand (the system's source, crypto/rand, when nil).
func NewKey(rand io.Reader) (Key, error) {
	var k Key
	rand = ambient.RandOr(rand) // the node's one reader of the system's source
	if _, err := io.ReadFull(rand, k[:]); err != nil {
		return k, fmt.Errorf("blob: random key: %w", err)
	}
	return k, nil
}

// ContentHash is the tree hash of a plaintext from which a cell derives the
// blob's key: SHA-256 over "exopeer blob content v1" ‖ uint64 big-endian
// size ‖ the SHA-256 of each 1 MiB chunk of plaintext in order (the last
// chunk shorter; none for an empty plaintext).
type ContentHash [32]byte

// hashChunk is the chunk of the content hash's tree.
const hashChunk = 1 << 20

const (
	contentPrefix = "exopeer blob content v1"
	keyPrefix     = "exopeer blob key v1"
)

// HashContent computes the content hash of the size bytes of r, hashing
// chunks on GOMAXPROCS goroutines. It blocks until done or ctx ends; r must
// be safe for concurrent ReadAt.
func HashContent(ctx context.Context, r io.ReaderAt, size int64) (ContentHash, error) {
	return hashContent(ctx, r, size, 0, nil, nil)
}

// hashContent is HashContent with a number of workers (0: GOMAXPROCS), an
// optional progress callback (bytes hashed, in order, one goroutine), and
// optional checksums: if check is set, its sums are filled with the
// checksum of each 1 MiB chunk under its seed, for the sealing pass to
// compare (contentChecker).
func hashContent(ctx context.Context, r io.ReaderAt, size int64, workers int, progress func(int64), check *chunkSums) (ContentHash, error) {
	if size < 0 {
		return ContentHash{}, fmt.Errorf("blob: negative size %d", size)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	n := (size + hashChunk - 1) / hashChunk
	sums := make([][32]byte, n)
	if check != nil {
		check.size = size
		check.sums = make([]uint64, n)
	}
	g, gctx := errgroup.WithContext(ctx)
	next := make(chan int64)
	done := make(chan int64, workers)
	g.Go(func() error {
		defer close(next)
		for i := range n {
			select {
			case next <- i:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			buf := make([]byte, hashChunk)
			for i := range next {
				off := i * hashChunk
				b := buf[:min(hashChunk, size-off)]
				// io.ReaderAt may say io.EOF with the last byte: only a short read fails.
				if n, err := r.ReadAt(b, off); n < len(b) {
					if err == nil || err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					return fmt.Errorf("blob: hash: read at %d: %w", off, err)
				}
				sums[i] = sha256.Sum256(b)
				if check != nil {
					check.sums[i] = maphash.Bytes(check.seed, b)
				}
				if progress != nil {
					select {
					case done <- i:
					case <-gctx.Done():
						return gctx.Err()
					}
				}
			}
			return nil
		})
	}
	if progress != nil {
		g.Go(func() error {
			// Report the prefix of chunks hashed, in order.
			got := make([]bool, n)
			var upto int64
			for upto < n {
				select {
				case i := <-done:
					got[i] = true
				case <-gctx.Done():
					return gctx.Err()
				}
				for upto < n && got[upto] {
					upto++
				}
				progress(min(upto*hashChunk, size))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return ContentHash{}, err
	}
	h := sha256.New()
	h.Write([]byte(contentPrefix))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(size)))
	for i := range sums {
		h.Write(sums[i][:])
	}
	var ch ContentHash
	h.Sum(ch[:0])
	return ch, nil
}

// DeriveKey returns the key of a blob in a cell: HMAC-SHA256(secret,
// "exopeer blob key v1" ‖ h). The same content under the same secret gives
// the same key, hence the same blocks.
func DeriveKey(secret []byte, h ContentHash) Key {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(keyPrefix))
	m.Write(h[:])
	var k Key
	m.Sum(k[:0])
	return k
}

// chunkSums are checksums of the content's 1 MiB chunks (the content
// hash's), taken by the first pass of ImportFile so that the sealing pass
// can tell that it reads what was hashed without hashing it again with
// SHA-256 (about 0.6 CPU-s per GiB saved). A checksum only has to catch a
// file changed by accident (edited, truncated, replaced while it is
// added), not one changed by an adversary who wants a collision: the one
// who can write the file can add the other content under its own key as
// well. maphash under a seed drawn for each import runs at memory speed
// and gives no input a fixed collision.
type chunkSums struct {
	seed maphash.Seed
	size int64
	sums []uint64 // one per chunk, in order
}

func newChunkSums() *chunkSums { return &chunkSums{seed: maphash.MakeSeed()} }

// contentChecker compares a stream written in order, chunk by chunk, with
// the chunkSums of the first pass: the sealing pass of ImportFile checks
// with it that it seals what the first pass hashed.
type contentChecker struct {
	want *chunkSums
	h    maphash.Hash // the current chunk's
	i    int          // the current chunk
	n    int          // bytes in the current chunk
	size int64
}

func newContentChecker(want *chunkSums) *contentChecker {
	c := &contentChecker{want: want}
	c.h.SetSeed(want.seed)
	return c
}

// write adds p to the stream; ErrChanged as soon as a whole chunk, or the
// size, differs from the first pass's.
func (c *contentChecker) write(p []byte) error {
	c.size += int64(len(p))
	if c.size > c.want.size {
		return ErrChanged
	}
	for len(p) > 0 {
		m := min(len(p), hashChunk-c.n)
		c.h.Write(p[:m])
		c.n += m
		p = p[m:]
		if c.n == hashChunk {
			if err := c.endChunk(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *contentChecker) endChunk() error {
	if c.i >= len(c.want.sums) || c.h.Sum64() != c.want.sums[c.i] {
		return ErrChanged
	}
	c.h.Reset()
	c.i++
	c.n = 0
	return nil
}

// done reports ErrChanged unless the whole stream written is the one the
// first pass hashed.
func (c *contentChecker) done() error {
	if c.size != c.want.size {
		return ErrChanged
	}
	if c.n > 0 {
		if err := c.endChunk(); err != nil {
			return err
		}
	}
	if c.i != len(c.want.sums) {
		return ErrChanged
	}
	return nil
}
