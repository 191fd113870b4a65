package blocks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"

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

// keyPrefix is the datastore namespace under which a Store keeps the
// blocks of its meta datastore (the chain's), and blobPrefix the one under
// which it keeps blob blocks when they share that datastore.
var (
	keyPrefix  = ds.NewKey("/blocks")
	blobPrefix = ds.NewKey("/blobs")
)

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

// Store is a verifying block store on go-datastores. It is safe for
// concurrent use. A Store holds no resources of its own: closing the
// datastores it was made on is the caller's business, and ends the Store.
//
// Blocks whose CID has the raw or dag-pb codec (the blocks of blobs: file
// leaves and UnixFS nodes) are kept apart from all others (the chain's
// dag-cbor entries), in the blobs datastore of [NewStoreWith]; the codec of
// the CID a block is put, read, checked or deleted with decides which
// datastore is asked.
type Store struct {
	root  ds.Batching // the meta datastore, as given (PutManyWith's records)
	md    ds.Batching // root under keyPrefix: the blocks that are not blobs'
	blobs ds.Batching // the blobs datastore, as given
	bd    ds.Batching // where blob blocks are: blobs, or root under blobPrefix
	split bool        // blobs is not root

	meta, blob blockstore.Blockstore // boxo's, on md and bd
	bs         *verifyingBlockstore
	count      blobCount
}

// NewStore returns a Store keeping every block in d: blob blocks under the
// namespace /blobs, the others under /blocks, so d may be the node's root
// datastore shared with other users of other namespaces. It is
// NewStoreWith(d, d). It starts nothing and does not block.
func NewStore(d ds.Batching) *Store { return NewStoreWith(d, d) }

// NewStoreWith returns a Store keeping blob blocks (CIDs of codec raw or
// dag-pb) in blobs and every other block in meta, under the namespace
// /blocks. A blobs datastore other than meta is the Store's alone: blocks
// are its keys from the root (the base32 of their multihash, one key
// component, as flatfs requires); if blobs is meta, blob blocks are kept
// in it under /blobs. It starts nothing and does not block.
func NewStoreWith(meta, blobs ds.Batching) *Store {
	s := &Store{root: meta, md: namespace.Wrap(meta, keyPrefix), blobs: blobs, bd: blobs}
	s.split = !sameDatastore(meta, blobs)
	if !s.split {
		s.bd = namespace.Wrap(meta, blobPrefix)
	}
	s.meta = blockstore.NewBlockstore(s.md, blockstore.NoPrefix())
	s.blob = blockstore.NewBlockstore(s.bd, blockstore.NoPrefix())
	s.bs = &verifyingBlockstore{s: s}
	return s
}

// sameDatastore reports whether a and b are the same datastore value
// (without panicking on datastores of an incomparable type).
func sameDatastore(a, b ds.Batching) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb || !ta.Comparable() {
		return false
	}
	return any(a) == any(b)
}

// isBlob reports whether c names a blob block: codec raw or dag-pb.
func isBlob(c cid.Cid) bool {
	switch c.Type() {
	case cid.Raw, cid.DagProtobuf:
		return true
	}
	return false
}

// where returns the datastore that keeps c's block and its key there.
func (s *Store) where(c cid.Cid) (ds.Batching, ds.Key) {
	k := dshelp.MultihashToDsKey(c.Hash())
	if isBlob(c) {
		return s.bd, k
	}
	return s.md, k
}

// Put stores b after checking that its data hashes to its CID; storing a
// block that is already there does nothing. It blocks on the datastore
// (with go-ds-leveldb, until the write is synced to disk). The Store keeps
// no reference to b.
func (s *Store) Put(ctx context.Context, b blockformat.Block) error {
	return s.bs.Put(ctx, b)
}

// PutMany stores bs after checking every block as Put does; if any block
// is invalid, none is stored. Blocks of one datastore are written in one
// batch (blob blocks first, when they have a datastore of their own). It
// blocks like Put. The Store keeps no reference to bs.
func (s *Store) PutMany(ctx context.Context, bs []blockformat.Block) error {
	return s.bs.PutMany(ctx, bs)
}

// PutOwn stores bs as PutMany does but without hashing their data again:
// it is for blocks whose CID this process has just computed from their
// data (an import), and trusts that. Only blocks made so may be given to
// it: a block whose data does not match its CID would be stored and later
// read as ErrCorrupt. It blocks like Put.
func (s *Store) PutOwn(ctx context.Context, bs []blockformat.Block) error {
	return s.putMany(ctx, bs, nil, false)
}

// PutManyWith stores bs as PutMany does and writes records: keys of the
// meta datastore the Store was made on (outside /blocks and /blobs), so
// that a caller's index and the blocks it indexes are stored together. The
// records are written in the same datastore batch as the blocks of that
// datastore; blob blocks kept in a datastore of their own are written
// first, so that a record never names a blob block that was not written.
// In the data dir's blob store (blobdisk.Disk) they are then in the page
// cache only, durable at its next checkpoint: after a crash before it, a
// record may name a block the scrub deleted or that never reached the
// disk (the blob service checks its files again after such a start). It blocks like Put. The Store keeps no reference to bs or
// records.
func (s *Store) PutManyWith(ctx context.Context, bs []blockformat.Block, records map[ds.Key][]byte) error {
	return s.putWith(ctx, bs, records, false)
}

// PutNewWith is PutManyWith for blocks the caller has just made and that
// are new by construction (a chain entry, sealed under a fresh random
// nonce): a block outside the blob store is written without being looked
// up first (a datastore read per block, of no use for a new block; one
// stored already after all is only written again, with the same bytes).
// Blob blocks are looked up as PutManyWith does, since their count
// depends on it. Every block is checked against its CID all the same.
func (s *Store) PutNewWith(ctx context.Context, bs []blockformat.Block, records map[ds.Key][]byte) error {
	return s.putWith(ctx, bs, records, true)
}

func (s *Store) putWith(ctx context.Context, bs []blockformat.Block, records map[ds.Key][]byte, fresh bool) error {
	for _, b := range bs {
		if err := checkBlock(b); err != nil {
			return err
		}
	}
	for k := range records {
		for _, p := range []ds.Key{keyPrefix, blobPrefix} {
			if k.IsDescendantOf(p) || k.Equal(p) {
				return fmt.Errorf("blocks: record %s is inside the block namespace %s", k, p)
			}
		}
	}
	return s.putMany(ctx, bs, records, fresh)
}

// Get returns the block stored under c's multihash, as a block with CID c,
// after checking that its bytes hash to c. A missing block gives an error
// wrapping ErrNotFound; a record that does not match gives one wrapping
// ErrCorrupt; in both cases the block is nil. It blocks on the datastore.
// The returned block's data belongs to the caller.
func (s *Store) Get(ctx context.Context, c cid.Cid) (blockformat.Block, error) {
	return s.bs.Get(ctx, c)
}

// Has reports whether a block with c's multihash is stored (in the
// datastore of c's codec). It does not read or verify the data. It blocks
// on the datastore.
func (s *Store) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return s.bs.Has(ctx, c)
}

// Delete removes the block with c's multihash; deleting a block that is
// not stored is not an error. It blocks on the datastore.
func (s *Store) Delete(ctx context.Context, c cid.Cid) error {
	return s.bs.DeleteBlock(ctx, c)
}

// Count returns the number of blocks stored, in both datastores. It walks
// every key, so it takes time proportional to the number of blocks; it
// stops early with ctx's error when ctx ends.
func (s *Store) Count(ctx context.Context) (int, error) {
	n, err := countKeys(ctx, s.md)
	if err != nil {
		return 0, err
	}
	m, err := countKeys(ctx, s.bd)
	if err != nil {
		return 0, err
	}
	return n + m, nil
}

// countKeys counts the keys of d.
func countKeys(ctx context.Context, d ds.Datastore) (int, error) {
	res, err := d.Query(ctx, query.Query{KeysOnly: true})
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

// served is the blockstore bitswap is given: the Store's, except that Get
// does not hash the bytes it reads. Bitswap's server only sends what it
// reads to peers, and each receiver hashes every block it gets (bitswap's
// message decoder computes the block's CID from its bytes, and a block
// under a CID nobody wanted is dropped, and counted against the sender):
// a record corrupted on disk goes out as junk and never into anyone's
// store. Every other read of the Store (Get, blob reads, sessions reading
// stored blocks) still hashes. This saves the seeder a SHA-256 pass per
// served byte. Bitswap's client gets the same blockstore but reads nothing
// from it (WithoutDuplicatedBlockStats).
func (s *Store) served() blockstore.Blockstore { return servingBlockstore{s.bs} }

type servingBlockstore struct{ *verifyingBlockstore }

func (v servingBlockstore) Get(ctx context.Context, c cid.Cid) (blockformat.Block, error) {
	b, err := v.base(c).Get(ctx, c)
	if ipld.IsNotFound(err) {
		return nil, notFoundError{c}
	}
	if err != nil {
		return nil, fmt.Errorf("blocks: get %s: %w", c, err)
	}
	return b, nil
}

// verifyingBlockstore checks every block it reads or writes against its
// CID, routes each to the datastore of its codec, and turns not-found
// errors into notFoundError.
type verifyingBlockstore struct {
	s *Store
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

func (v *verifyingBlockstore) base(c cid.Cid) blockstore.Blockstore {
	if isBlob(c) {
		return v.s.blob
	}
	return v.s.meta
}

func (v *verifyingBlockstore) Get(ctx context.Context, c cid.Cid) (blockformat.Block, error) {
	b, err := v.base(c).Get(ctx, c)
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
	n, err := v.base(c).GetSize(ctx, c)
	if ipld.IsNotFound(err) {
		return -1, notFoundError{c}
	}
	return n, err
}

func (v *verifyingBlockstore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return v.base(c).Has(ctx, c)
}

func (v *verifyingBlockstore) Put(ctx context.Context, b blockformat.Block) error {
	return v.PutMany(ctx, []blockformat.Block{b})
}

func (v *verifyingBlockstore) PutMany(ctx context.Context, bs []blockformat.Block) error {
	for _, b := range bs {
		if err := checkBlock(b); err != nil {
			return err
		}
	}
	return v.s.putMany(ctx, bs, nil, false)
}

func (v *verifyingBlockstore) DeleteBlock(ctx context.Context, c cid.Cid) error {
	return v.s.DeleteMany(ctx, []cid.Cid{c})
}

// AllKeysChan lists the stored blocks of both datastores as CIDv1 raw CIDs
// (the store keys by multihash and keeps no codec).
func (v *verifyingBlockstore) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	meta, err := v.s.meta.AllKeysChan(ctx)
	if err != nil {
		return nil, err
	}
	blob, err := v.s.blob.AllKeysChan(ctx)
	if err != nil {
		// meta's goroutine ends with ctx or once drained.
		go func() {
			for range meta {
			}
		}()
		return nil, err
	}
	out := make(chan cid.Cid, query.KeysOnlyBufSize)
	go func() {
		defer close(out)
		for _, ch := range []<-chan cid.Cid{meta, blob} {
			for c := range ch {
				select {
				case out <- c:
				case <-ctx.Done():
				}
			}
		}
	}()
	return out, nil
}
