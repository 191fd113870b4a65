package blocks

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/datastore/dshelp"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	"github.com/ipfs/go-datastore/query"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
)

var (
	// ErrNotFound is wrapped by the error for a block that is not stored.
	// That error also satisfies errors.Is(err, ipld.ErrNotFound{}), which
	// bitswap's server relies on to tell "missing" from "failed".
	ErrNotFound = errors.New("blocks: block not found")

	// ErrCorrupt is wrapped by the error for a stored record whose bytes do
	// not hash to the requested CID. The error message names the CID.
	ErrCorrupt = errors.New("blocks: stored block does not match its CID")

	// ErrInvalidBlock is wrapped by the error for a block given to Put whose
	// data does not hash to its CID, or whose CID names a hash function
	// that cannot be computed.
	ErrInvalidBlock = errors.New("blocks: block data does not match its CID")
)

// keyPrefix is the datastore namespace under which a Store keeps blocks.
var keyPrefix = ds.NewKey("/blocks")

// notFoundError is the error for a missing block: errors.Is matches both
// ErrNotFound and ipld.ErrNotFound, and errors.As finds ipld.ErrNotFound.
type notFoundError struct{ c cid.Cid }

func (e notFoundError) Error() string { return ErrNotFound.Error() + ": " + e.c.String() }

func (e notFoundError) Unwrap() []error {
	return []error{ErrNotFound, ipld.ErrNotFound{Cid: e.c}}
}

// rawV1 is the CID prefix of blocks made by NewBlock.
var rawV1 = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}

// NewBlock returns a block holding data under a CIDv1 with the raw codec
// and a sha2-256 multihash. It does not copy data: the caller must not
// modify data afterwards. It does not block.
func NewBlock(data []byte) blockformat.Block {
	c, err := rawV1.Sum(data)
	if err != nil {
		panic("blocks: sha2-256 is not available: " + err.Error()) // cannot happen
	}
	b, err := blockformat.NewBlockWithCid(data, c)
	if err != nil {
		panic("blocks: " + err.Error()) // cannot happen: c was computed from data
	}
	return b
}

// verify reports whether data hashes to c's multihash, rehashing it with
// the hash function and digest length that c names.
func verify(c cid.Cid, data []byte) (bool, error) {
	sum, err := c.Prefix().Sum(data)
	if err != nil {
		return false, err
	}
	return bytes.Equal(sum.Hash(), c.Hash()), nil
}

// Store is a verifying block store on a go-datastore. It is safe for
// concurrent use. A Store holds no resources of its own: closing the
// datastore it was made on is the caller's business, and ends the Store.
type Store struct {
	root ds.Batching // the caller's datastore
	d    ds.Batching // root wrapped in keyPrefix
	bs   *verifyingBlockstore
}

// NewStore returns a Store keeping blocks in d under the namespace
// /blocks, so d may be the node's root datastore shared with
// other users of other namespaces. It starts nothing and does not block.
func NewStore(d ds.Batching) *Store {
	nd := namespace.Wrap(d, keyPrefix)
	return &Store{
		root: d,
		d:    nd,
		bs:   &verifyingBlockstore{base: blockstore.NewBlockstore(nd, blockstore.NoPrefix())},
	}
}

// Put stores b after checking that its data hashes to its CID; storing a
// block that is already there does nothing. It blocks on the datastore
// (with go-ds-leveldb, until the write is synced to disk). The Store keeps
// no reference to b.
func (s *Store) Put(ctx context.Context, b blockformat.Block) error {
	return s.bs.Put(ctx, b)
}

// PutMany stores bs in one datastore batch after checking every block as
// Put does; if any block is invalid, none is stored. It blocks like Put.
// The Store keeps no reference to bs.
func (s *Store) PutMany(ctx context.Context, bs []blockformat.Block) error {
	return s.bs.PutMany(ctx, bs)
}

// PutManyWith stores bs as PutMany does and, in the same datastore batch,
// writes records: keys of the datastore the Store was made on (outside
// /blocks), so that a caller's index and the blocks it indexes are stored
// together or not at all. It blocks like Put. The Store keeps no reference
// to bs or records.
func (s *Store) PutManyWith(ctx context.Context, bs []blockformat.Block, records map[ds.Key][]byte) error {
	for _, b := range bs {
		if err := checkBlock(b); err != nil {
			return err
		}
	}
	batch, err := s.root.Batch(ctx)
	if err != nil {
		return fmt.Errorf("blocks: batch: %w", err)
	}
	for _, b := range bs {
		k := keyPrefix.Child(dshelp.MultihashToDsKey(b.Cid().Hash()))
		if err := batch.Put(ctx, k, b.RawData()); err != nil {
			return fmt.Errorf("blocks: put %s: %w", b.Cid(), err)
		}
	}
	for k, v := range records {
		if k.IsDescendantOf(keyPrefix) || k.Equal(keyPrefix) {
			return fmt.Errorf("blocks: record %s is inside the block namespace", k)
		}
		if err := batch.Put(ctx, k, v); err != nil {
			return fmt.Errorf("blocks: put %s: %w", k, err)
		}
	}
	if err := batch.Commit(ctx); err != nil {
		return fmt.Errorf("blocks: commit: %w", err)
	}
	return nil
}

// Get returns the block stored under c's multihash, as a block with CID c,
// after checking that its bytes hash to c. A missing block gives an error
// wrapping ErrNotFound; a record that does not match gives one wrapping
// ErrCorrupt; in both cases the block is nil. It blocks on the datastore.
// The returned block's data belongs to the caller.
func (s *Store) Get(ctx context.Context, c cid.Cid) (blockformat.Block, error) {
	return s.bs.Get(ctx, c)
}

// Has reports whether a block with c's multihash is stored. It does not
// read or verify the data. It blocks on the datastore.
func (s *Store) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return s.bs.Has(ctx, c)
}

// Delete removes the block with c's multihash; deleting a block that is
// not stored is not an error. It blocks on the datastore.
func (s *Store) Delete(ctx context.Context, c cid.Cid) error {
	return s.bs.DeleteBlock(ctx, c)
}

// Count returns the number of blocks stored. It walks every key under
// /blocks, so it takes time proportional to the number of blocks; it
// stops early with ctx's error when ctx ends.
func (s *Store) Count(ctx context.Context) (int, error) {
	res, err := s.d.Query(ctx, query.Query{KeysOnly: true})
	if err != nil {
		return 0, fmt.Errorf("blocks: count: %w", err)
	}
	defer res.Close()
	n := 0
	for r := range res.Next() {
		if r.Error != nil {
			return 0, fmt.Errorf("blocks: count: %w", r.Error)
		}
		n++
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return n, nil
}

// Blockstore returns the Store as a boxo blockstore.Blockstore, with the
// same verification on Get and Put, for bitswap and the layers above it
// (blockservice, merkledag, UnixFS). It is safe for concurrent use.
func (s *Store) Blockstore() blockstore.Blockstore { return s.bs }

// verifyingBlockstore checks every block it reads or writes against its
// CID and turns the base blockstore's not-found errors into notFoundError.
type verifyingBlockstore struct {
	base blockstore.Blockstore
}

var _ blockstore.Blockstore = (*verifyingBlockstore)(nil)

func checkBlock(b blockformat.Block) error {
	ok, err := verify(b.Cid(), b.RawData())
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidBlock, b.Cid(), err)
	}
	if !ok {
		return fmt.Errorf("%w: %s", ErrInvalidBlock, b.Cid())
	}
	return nil
}

func (v *verifyingBlockstore) Get(ctx context.Context, c cid.Cid) (blockformat.Block, error) {
	b, err := v.base.Get(ctx, c)
	if ipld.IsNotFound(err) {
		return nil, notFoundError{c}
	}
	if err != nil {
		return nil, fmt.Errorf("blocks: get %s: %w", c, err)
	}
	ok, err := verify(c, b.RawData())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, c, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrCorrupt, c)
	}
	return b, nil
}

func (v *verifyingBlockstore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	n, err := v.base.GetSize(ctx, c)
	if ipld.IsNotFound(err) {
		return -1, notFoundError{c}
	}
	return n, err
}

func (v *verifyingBlockstore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return v.base.Has(ctx, c)
}

func (v *verifyingBlockstore) Put(ctx context.Context, b blockformat.Block) error {
	if err := checkBlock(b); err != nil {
		return err
	}
	return v.base.Put(ctx, b)
}

func (v *verifyingBlockstore) PutMany(ctx context.Context, bs []blockformat.Block) error {
	for _, b := range bs {
		if err := checkBlock(b); err != nil {
			return err
		}
	}
	return v.base.PutMany(ctx, bs)
}

func (v *verifyingBlockstore) DeleteBlock(ctx context.Context, c cid.Cid) error {
	return v.base.DeleteBlock(ctx, c)
}

// AllKeysChan lists the stored blocks as CIDv1 raw CIDs (the store keys by
// multihash and keeps no codec).
func (v *verifyingBlockstore) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	return v.base.AllKeysChan(ctx)
}
