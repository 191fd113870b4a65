package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"golang.org/x/sync/errgroup"
)

// ErrNeedSize is the error of Import given a Secret: a derived key needs
// the content hash before sealing, so two passes over a file of known size
// (ImportFile).
var ErrNeedSize = errors.New("blob: a key derived from the content needs ImportFile (two passes over a known size)")

// ErrChanged is the error of ImportFile with a derived key when the file
// read in the sealing pass is not the one hashed in the first (it changed
// meanwhile): sealing it under the key of the content hashed would reuse
// that key's nonces over another plaintext. Nothing is made of it (blocks
// already put are unreferenced).
var ErrChanged = errors.New("blob: the file changed while it was imported")

// ImportOptions says how to import a blob.
type ImportOptions struct {
	Public   bool             // plain UnixFS (PublicLeafSize chunks), no key
	Key      *Key             // use this key; nil: derived from Secret if set, else random from Rand
	Secret   []byte           // the cell's blob secret: key derived from the content (ImportFile only: two passes)
	Rand     io.Reader        // nil: crypto/rand
	Workers  int              // parallel sealing/hashing; 0: GOMAXPROCS
	Progress func(done int64) // plaintext bytes imported so far; called from one goroutine, in order
	leaf     int              // plaintext bytes per leaf (tests); 0: 16 segments, or PublicLeafSize
	hashed   *chunkSums       // the checksums of the content the key was derived from: the stream read must have them
}

// Imported is what an import made.
type Imported struct {
	Cap    Capability
	Size   int64  // plaintext bytes
	Blocks int    // blocks given to the BlockPutter
	Bytes  int64  // bytes of all those blocks
	tsize  uint64 // the root's cumulative size (a dag-pb link's Tsize)
}

// putBatch is how many blocks go to one PutMany, and putWorkers how many
// PutMany calls run at once. The data dir's blob store (blobdisk.Disk)
// does not fsync each block, so a put is the kernel copying into the page
// cache: two writers overlap one's file creation and rename with the
// other's write, while more only contend in the file system with each
// other and with sealing for two cores (BenchmarkImportStored, 1 GiB on 2
// cores: 1 writer 238-302 MB/s, 2 writers 266-337, 4 writers 266-304;
// load 4-5). The batch holding the root is put last, alone, once every
// other batch is stored, so a stored root means a whole blob was written;
// after a crash before the blob store's next checkpoint, the root can be
// on disk without some leaves until its scrub and the blob service's
// recheck (blobdisk.Disk).
const (
	putBatch   = 8
	putWorkers = 2
)

// Import reads src to its end and imports it as a blob into dst, in one
// pass: sealed (unless o.Public) and cut into leaves on o.Workers
// goroutines, linked as a balanced UnixFS DAG, and put in batches of 8,
// two PutMany calls at once. Memory stays bounded by a window of
// 24 + 2·Workers leaves between the read and the end of their PutMany
// (about 28 MiB sealed, 7 MiB public, on 2 cores), whatever the size. It
// refuses o.Secret (ErrNeedSize). On error, blocks already put stay in dst
// (unreferenced: a GC takes them).
func Import(ctx context.Context, src io.Reader, dst BlockPutter, o ImportOptions) (Imported, error) {
	if o.Secret != nil && o.Key == nil && !o.Public {
		return Imported{}, ErrNeedSize
	}
	k, err := o.key()
	if err != nil {
		return Imported{}, err
	}
	return importStream(ctx, src, dst, o, k, infoPayload)
}

// ImportFile imports the size bytes of src as Import does; with o.Secret
// (and no o.Key) it reads src twice: once to hash the content (in parallel)
// and derive the key, once to seal, comparing what it seals with what it
// hashed by a checksum per 1 MiB chunk taken in the first pass (a file
// that changed between the passes is ErrChanged). o.Progress reports the
// second pass.
func ImportFile(ctx context.Context, src io.ReaderAt, size int64, dst BlockPutter, o ImportOptions) (Imported, error) {
	var k Key
	switch {
	case o.Public:
	case o.Key != nil:
		k = *o.Key
	case o.Secret != nil:
		sums := newChunkSums()
		h, err := hashContent(ctx, src, size, o.Workers, nil, sums)
		if err != nil {
			return Imported{}, err
		}
		k = DeriveKey(o.Secret, h)
		o.hashed = sums
	default:
		var err error
		if k, err = NewKey(o.Rand); err != nil {
			return Imported{}, err
		}
	}
	return importStream(ctx, io.NewSectionReader(src, 0, size), dst, o, k, infoPayload)
}

func (o ImportOptions) key() (Key, error) {
	switch {
	case o.Public:
		return Key{}, nil
	case o.Key != nil:
		return *o.Key, nil
	default:
		return NewKey(o.Rand)
	}
}

// leafPlain is the plaintext of one leaf.
func (o ImportOptions) leafPlain() int {
	switch {
	case o.leaf > 0:
		return o.leaf
	case o.Public:
		return PublicLeafSize
	default:
		return LeafSize / SealedSegmentSize * SegmentSize
	}
}

// chunk is a leaf on its way through the pipeline: its plaintext, then its
// block.
type chunk struct {
	i    int64
	data []byte // plaintext (pooled when sealed)
	n    int    // plaintext bytes
	last bool   // the final leaf
	blk  blockformat.Block
}

// importStream imports src sealed under k with HKDF info (infoPayload, or
// infoDir for a listing) unless o.Public.
func importStream(ctx context.Context, src io.Reader, dst BlockPutter, o ImportOptions, k Key, info string) (Imported, error) {
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	leafPlain := o.leafPlain()
	if !o.Public && leafPlain%SegmentSize != 0 {
		return Imported{}, fmt.Errorf("blob: leaf of %d bytes is not whole segments", leafPlain)
	}
	segsPerLeaf := int64(leafPlain / SegmentSize)
	aead := payloadAEAD(k, info)
	// window bounds the leaves between reading and the end of their
	// PutMany: memory is about window leaves, whatever the blob's size.
	window := make(chan struct{}, (putWorkers+1)*putBatch+2*workers)
	pool := sync.Pool{New: func() any { b := make([]byte, leafPlain); return &b }}

	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan *chunk, workers)
	results := make(chan *chunk, workers)
	batches := make(chan []blockformat.Block, putWorkers)
	send := func(ch chan<- *chunk, c *chunk) error {
		select {
		case ch <- c:
			return nil
		case <-gctx.Done():
			return gctx.Err()
		}
	}

	// readErr is what the reader ended with; it is set before jobs is
	// closed and read only after g.Wait.
	var readErr error
	g.Go(func() (err error) { // read, one leaf ahead to know which is the last
		defer func() { readErr = err; close(jobs) }()
		var ch *contentChecker
		if o.hashed != nil {
			ch = newContentChecker(o.hashed)
		}
		// sendLast sends the final leaf once the content read is the
		// content hashed, if that is asked.
		sendLast := func(c *chunk) error {
			if ch != nil {
				if err := ch.done(); err != nil {
					return err
				}
			}
			c.last = true
			return send(jobs, c)
		}
		var pending *chunk
		for i := int64(0); ; i++ {
			select {
			case window <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			var buf []byte
			if o.Public {
				buf = make([]byte, leafPlain) // becomes the block itself
			} else {
				buf = *pool.Get().(*[]byte)
			}
			n, err := io.ReadFull(src, buf)
			eof := err == io.EOF || err == io.ErrUnexpectedEOF
			if err != nil && !eof {
				return fmt.Errorf("blob: read: %w", err)
			}
			if ch != nil {
				if err := ch.write(buf[:n]); err != nil {
					return err
				}
			}
			if pending != nil && n == 0 { // the pending leaf was the last
				<-window
				return sendLast(pending)
			}
			if pending != nil {
				if err := send(jobs, pending); err != nil {
					return err
				}
			}
			c := &chunk{i: i, data: buf[:n], n: n}
			if eof { // includes the one empty leaf of an empty blob
				return sendLast(c)
			}
			pending = c
		}
	})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		g.Go(func() error { // seal and hash
			defer wg.Done()
			for c := range jobs {
				data := c.data
				if !o.Public {
					ct := sealLeaf(aead, make([]byte, 0, CiphertextSize(int64(c.n))), c.data, c.i, segsPerLeaf, c.last)
					buf := c.data[:cap(c.data)]
					pool.Put(&buf)
					data = ct
				}
				c.data = nil
				c.blk = rawLeaf(data)
				if err := send(results, c); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error { wg.Wait(); close(results); return nil })

	var puts sync.WaitGroup
	for range putWorkers {
		puts.Add(1)
		g.Go(func() error { // put in batches, then free the leaves' window
			defer puts.Done()
			for b := range batches {
				if err := dst.PutMany(gctx, b); err != nil {
					return fmt.Errorf("blob: put: %w", err)
				}
				for _, blk := range b {
					if blk.Cid().Type() == cid.Raw {
						<-window
					}
				}
			}
			return nil
		})
	}
	var out Imported
	g.Go(func() error { // in order: the DAG, progress, batches
		closed := false
		defer func() {
			if !closed {
				close(batches)
			}
		}()
		var batch []blockformat.Block
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			select {
			case batches <- batch:
			case <-gctx.Done():
				return gctx.Err()
			}
			batch = nil
			return nil
		}
		add := func(b blockformat.Block) error {
			// A full batch goes before b is added, never after: the
			// last block added (the root) stays for the final put.
			if len(batch) >= putBatch {
				if err := flush(); err != nil {
					return err
				}
			}
			batch = append(batch, b)
			out.Blocks++
			out.Bytes += int64(len(b.RawData()))
			return nil
		}
		db := newDAGBuilder(MaxLinks, add)
		early := map[int64]*chunk{} // at most the window
		next := int64(0)
		last := false
		for c := range results {
			early[c.i] = c
			for c := early[next]; c != nil; c = early[next] {
				delete(early, next)
				next++
				out.Size += int64(c.n)
				if err := add(c.blk); err != nil {
					return err
				}
				if err := db.addLeaf(c.blk.Cid(), len(c.blk.RawData())); err != nil {
					return err
				}
				if o.Progress != nil {
					o.Progress(out.Size)
				}
				last = last || c.last
			}
		}
		if !last {
			// The reader stopped (or the sealers did, for an error
			// already recorded): its error, not this one, is the
			// import's; see below.
			return errStopped
		}
		root, err := db.finish()
		if err != nil {
			return err
		}
		out.Cap = Capability{Root: root.c, Key: k, Public: o.Public}
		out.tsize = root.tsize
		// The last batch (with the root) once all the others are stored.
		close(batches)
		closed = true
		puts.Wait()
		if err := gctx.Err(); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		if err := dst.PutMany(gctx, batch); err != nil {
			return fmt.Errorf("blob: put: %w", err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		// The reader closes jobs before errgroup records its error, so
		// the DAG's goroutine can see the leaves end and report first.
		if errors.Is(err, errStopped) && readErr != nil {
			err = readErr
		}
		return Imported{}, err
	}
	return out, nil
}

// errStopped is the DAG goroutine's error when the leaves ended before
// the last one: the error that stopped them is reported instead.
var errStopped = errors.New("blob: import stopped before its last leaf")
