package blob

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
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
	return hashContent(ctx, r, size, 0, nil)
}

// hashContent is HashContent with a number of workers (0: GOMAXPROCS) and
// an optional progress callback (bytes hashed, in order, one goroutine).
func hashContent(ctx context.Context, r io.ReaderAt, size int64, workers int, progress func(int64)) (ContentHash, error) {
	if size < 0 {
		return ContentHash{}, fmt.Errorf("blob: negative size %d", size)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	n := (size + hashChunk - 1) / hashChunk
	sums := make([][32]byte, n)
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

// contentHasher computes a content hash over a stream written in order
// (the sealing pass of ImportFile checks with it that it seals what the
// first pass hashed).
type contentHasher struct {
	chunk hash.Hash // the current chunk's
	n     int       // bytes in the current chunk
	size  uint64
	sums  []byte
}

func newContentHasher() *contentHasher { return &contentHasher{chunk: sha256.New()} }

func (c *contentHasher) write(p []byte) {
	c.size += uint64(len(p))
	for len(p) > 0 {
		m := min(len(p), hashChunk-c.n)
		c.chunk.Write(p[:m])
		c.n += m
		p = p[m:]
		if c.n == hashChunk {
			c.sums = c.chunk.Sum(c.sums)
			c.chunk.Reset()
			c.n = 0
		}
	}
}

// sum returns the content hash of what was written.
func (c *contentHasher) sum() ContentHash {
	sums := c.sums
	if c.n > 0 {
		sums = c.chunk.Sum(sums)
	}
	h := sha256.New()
	h.Write([]byte(contentPrefix))
	h.Write(binary.BigEndian.AppendUint64(nil, c.size))
	h.Write(sums)
	var ch ContentHash
	h.Sum(ch[:0])
	return ch
}
