package blocks

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ipfs/boxo/datastore/dshelp"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// Usage is what the blob blocks of a Store take: how many, and the bytes
// of their data (what files on disk hold, without the file system's
// overhead).
type Usage struct {
	Blocks, Bytes int64
}

// blobCount keeps the Usage of the blob datastore, so that Usage needs no
// scan but the first. Writers and deleters of blob blocks hold mu shared
// from the moment they look whether a block is there to the moment they
// have counted it; the first count holds it alone, so that nothing is
// counted twice or missed. Two writers of the same new block at once may
// both count it, and a batch whose commit fails half-way (flatfs renames
// its files one by one) is not counted: such errors last until the next
// Recount (every collection makes one, listing the blocks).
type blobCount struct {
	mu    sync.RWMutex
	known bool // guarded by mu; the fields below are valid
	vmu   sync.Mutex
	u     Usage // guarded by vmu
}

func (c *blobCount) add(blocks, bytes int64) {
	c.vmu.Lock()
	c.u.Blocks += blocks
	c.u.Bytes += bytes
	c.vmu.Unlock()
}

// Usage returns what the blob blocks take. The first call walks the blob
// datastore's keys (with their sizes: flatfs stats its files); later calls
// return a count kept up to date by every write and delete, without
// touching the disk. It blocks on the walk; ctx ends it.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	s.count.mu.RLock()
	if s.count.known {
		s.count.vmu.Lock()
		u := s.count.u
		s.count.vmu.Unlock()
		s.count.mu.RUnlock()
		return u, nil
	}
	s.count.mu.RUnlock()
	return s.Recount(ctx)
}

// Recount walks the blob datastore's keys and sizes, sets the count that
// Usage returns from then on, and returns it. Writes and deletes of blob
// blocks wait for it.
func (s *Store) Recount(ctx context.Context) (Usage, error) {
	s.count.mu.Lock()
	defer s.count.mu.Unlock()
	var u Usage
	err := s.scanBlobs(ctx, func(_ ds.Key, size int) error {
		u.Blocks++
		u.Bytes += int64(size)
		return nil
	})
	if err != nil {
		return Usage{}, err
	}
	s.count.vmu.Lock()
	s.count.u = u
	s.count.vmu.Unlock()
	s.count.known = true
	return u, nil
}

// scanBlobs calls fn for every key of the blob datastore (relative to it),
// with the size of its value.
func (s *Store) scanBlobs(ctx context.Context, fn func(k ds.Key, size int) error) error {
	res, err := s.bd.Query(ctx, query.Query{KeysOnly: true, ReturnsSizes: true})
	if err != nil {
		return fmt.Errorf("blocks: list blob blocks: %w", err)
	}
	defer res.Close()
	n := 0
	for r := range res.Next() {
		if r.Error != nil {
			return fmt.Errorf("blocks: list blob blocks: %w", r.Error)
		}
		k := ds.RawKey(r.Key)
		size := r.Size
		if size < 0 {
			if size, err = s.bd.GetSize(ctx, k); errors.Is(err, ds.ErrNotFound) {
				continue // deleted meanwhile
			} else if err != nil {
				return fmt.Errorf("blocks: size of %s: %w", k, err)
			}
		}
		if err := fn(k, size); err != nil {
			return err
		}
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// BlobKeys calls fn with the CID of every blob block stored (a CIDv1 of
// codec raw: the store keeps multihashes, not codecs; any blob codec
// names the same record) and the size of its data. It also recounts what
// Usage returns. Writes and deletes of blob blocks wait until it returns,
// so fn must not write or delete blocks. It stops at fn's first error, or
// when ctx ends.
func (s *Store) BlobKeys(ctx context.Context, fn func(c cid.Cid, size int) error) error {
	s.count.mu.Lock()
	defer s.count.mu.Unlock()
	var u Usage
	err := s.scanBlobs(ctx, func(k ds.Key, size int) error {
		u.Blocks++
		u.Bytes += int64(size)
		mh, err := dshelp.DsKeyToMultihash(k)
		if err != nil {
			return nil // not a block: nothing this store wrote
		}
		return fn(cid.NewCidV1(cid.Raw, mh), size)
	})
	if err != nil {
		return err
	}
	s.count.vmu.Lock()
	s.count.u = u
	s.count.vmu.Unlock()
	s.count.known = true
	return nil
}

// putMany writes bs (already checked, or the caller's own) and records.
// Blocks already stored are not written again (fresh: blocks outside the
// blob store are not looked up, and written whatever: PutNewWith). Blob blocks in a datastore
// of their own are committed first; the others and the records in one
// batch of the meta datastore (with the blob blocks too when they share
// it).
func (s *Store) putMany(ctx context.Context, bs []blockformat.Block, records map[ds.Key][]byte, fresh bool) error {
	s.count.mu.RLock()
	defer s.count.mu.RUnlock()

	var newBlobs, newBytes int64
	seen := make(map[string]struct{}, len(bs))
	var blobBatch, metaBatch ds.Batch
	var err error
	if metaBatch, err = s.root.Batch(ctx); err != nil {
		return fmt.Errorf("blocks: batch: %w", err)
	}
	metaWrites := len(records)
	for _, b := range bs {
		k := dshelp.MultihashToDsKey(b.Cid().Hash())
		blob := isBlob(b.Cid())
		id := k.String()
		if blob {
			id = "b" + id
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		d, full := s.md, keyPrefix.Child(k)
		if blob {
			d, full = s.bd, blobPrefix.Child(k)
		}
		if !fresh || blob { // a fresh block is new by construction
			if has, err := d.Has(ctx, k); err == nil && has {
				continue
			}
		}
		switch {
		case blob && s.split:
			if blobBatch == nil {
				if blobBatch, err = s.blobs.Batch(ctx); err != nil {
					return fmt.Errorf("blocks: batch: %w", err)
				}
			}
			err = blobBatch.Put(ctx, k, b.RawData())
		default:
			err = metaBatch.Put(ctx, full, b.RawData())
			metaWrites++
		}
		if err != nil {
			return fmt.Errorf("blocks: put %s: %w", b.Cid(), err)
		}
		if blob {
			newBlobs++
			newBytes += int64(len(b.RawData()))
		}
	}
	if blobBatch != nil {
		if err := blobBatch.Commit(ctx); err != nil {
			return fmt.Errorf("blocks: commit %d blob blocks: %w", newBlobs, err)
		}
		s.counted(newBlobs, newBytes)
	}
	for k, v := range records {
		if err := metaBatch.Put(ctx, k, v); err != nil {
			return fmt.Errorf("blocks: put %s: %w", k, err)
		}
	}
	if metaWrites > 0 {
		if err := metaBatch.Commit(ctx); err != nil {
			return fmt.Errorf("blocks: commit: %w", err)
		}
		if !s.split {
			s.counted(newBlobs, newBytes)
		}
	}
	return nil
}

// counted adds to the kept Usage; the caller holds count.mu shared.
func (s *Store) counted(blocks, bytes int64) {
	if s.count.known && (blocks != 0 || bytes != 0) {
		s.count.add(blocks, bytes)
	}
}

// DeleteMany removes the blocks of cs, each from the datastore of its
// codec, in one batch per datastore; CIDs of blocks not stored are
// skipped. It blocks on the datastores.
func (s *Store) DeleteMany(ctx context.Context, cs []cid.Cid) error {
	s.count.mu.RLock()
	defer s.count.mu.RUnlock()
	var blobBatch, metaBatch ds.Batch
	var err error
	var goneBlobs, goneBytes int64
	seen := make(map[string]struct{}, len(cs))
	for _, c := range cs {
		if !c.Defined() {
			continue
		}
		d, k := s.where(c)
		id := k.String()
		if isBlob(c) {
			id = "b" + id
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		size, err := d.GetSize(ctx, k)
		if errors.Is(err, ds.ErrNotFound) {
			continue
		} else if err != nil {
			return fmt.Errorf("blocks: delete %s: %w", c, err)
		}
		batch := &metaBatch
		if isBlob(c) {
			batch = &blobBatch
			goneBlobs++
			goneBytes += int64(size)
		}
		if *batch == nil {
			if *batch, err = d.Batch(ctx); err != nil {
				return fmt.Errorf("blocks: batch: %w", err)
			}
		}
		if err := (*batch).Delete(ctx, k); err != nil {
			return fmt.Errorf("blocks: delete %s: %w", c, err)
		}
	}
	if metaBatch != nil {
		if err = metaBatch.Commit(ctx); err != nil {
			return fmt.Errorf("blocks: commit deletions: %w", err)
		}
	}
	if blobBatch != nil {
		if err = blobBatch.Commit(ctx); err != nil {
			return fmt.Errorf("blocks: commit deletions: %w", err)
		}
		s.counted(-goneBlobs, -goneBytes)
	}
	return nil
}
