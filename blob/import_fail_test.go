package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"testing/synctest"

	blockformat "github.com/ipfs/go-block-format"
)

// countingReader counts the bytes read from r and fails with err once
// past failAt (when err is set).
type countingReader struct {
	r      io.Reader
	n      atomic.Int64
	failAt int64
	err    error
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.err != nil && c.n.Load() >= c.failAt {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// gatePutter holds every PutMany until release is closed (or fails with
// err when set).
type gatePutter struct {
	release chan struct{}
	err     error
	inner   BlockPutter
}

func (g *gatePutter) PutMany(ctx context.Context, bs []blockformat.Block) error {
	if g.err != nil {
		return g.err
	}
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.inner.PutMany(ctx, bs)
}

// TestImportWindow: with the putter stalled, the import reads no more than
// its window of leaves from the source, however long the source is; then
// it finishes once the putter goes on.
func TestImportWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const workers = 2
		data := randomBytes(6, 200*SegmentSize)
		src := &countingReader{r: bytes.NewReader(data)}
		p := &gatePutter{release: make(chan struct{}), inner: newMemBlocks()}
		done := make(chan error, 1)
		go func() {
			_, err := Import(t.Context(), src, p, ImportOptions{Workers: workers, leaf: SegmentSize})
			done <- err
		}()
		synctest.Wait() // everything blocked on the stalled putter
		window := int64((putWorkers+1)*putBatch + 2*workers)
		if read := src.n.Load(); read > window*SegmentSize || read < int64(putBatch)*SegmentSize {
			t.Fatalf("read %d leaves with the putter stalled, window %d", read/SegmentSize, window)
		}
		close(p.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if src.n.Load() != int64(len(data)) {
			t.Fatalf("read %d bytes of %d", src.n.Load(), len(data))
		}
	})
}

func TestImportFails(t *testing.T) {
	data := randomBytes(7, 40*SegmentSize)
	boom := errors.New("boom")
	t.Run("source", func(t *testing.T) {
		// The reader's error races the leaves' end being seen by the
		// DAG's goroutine (CI once got "import stopped: %!w(<nil>)"):
		// many rounds, each must report the source's error.
		for i := range 300 {
			src := &countingReader{r: bytes.NewReader(data), failAt: int64(i%20) * SegmentSize, err: boom}
			if _, err := Import(t.Context(), src, newMemBlocks(), ImportOptions{leaf: SegmentSize}); !errors.Is(err, boom) {
				t.Fatalf("round %d: a failing source: %v", i, err)
			}
		}
	})
	t.Run("putter", func(t *testing.T) {
		p := &gatePutter{err: boom}
		if _, err := Import(t.Context(), bytes.NewReader(data), p, ImportOptions{leaf: SegmentSize}); !errors.Is(err, boom) {
			t.Fatalf("a failing putter: %v", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := Import(ctx, bytes.NewReader(data), newMemBlocks(), ImportOptions{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("a cancelled import: %v", err)
		}
	})
	t.Run("short file", func(t *testing.T) {
		_, err := ImportFile(t.Context(), bytes.NewReader(data), int64(len(data))+1, newMemBlocks(), ImportOptions{Secret: []byte("s")})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("a file shorter than its size: %v", err)
		}
	})
}
