package blob

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"bytes"
	"crypto/sha256"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
)

// memBlocks is a BlockGetter and BlockPutter over a map, counting the
// blocks asked of it: the format's tests need no datastore.
type memBlocks struct {
	mu     sync.Mutex
	m      map[cid.Cid]blockformat.Block
	asked  atomic.Int64 // blocks asked through GetBlocks
	calls  atomic.Int64 // GetBlocks calls
	maxLen atomic.Int64 // the most CIDs in one GetBlocks
}

func newMemBlocks() *memBlocks { return &memBlocks{m: map[cid.Cid]blockformat.Block{}} }

func (s *memBlocks) PutMany(_ context.Context, bs []blockformat.Block) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range bs {
		s.m[b.Cid()] = b
	}
	return nil
}

func (s *memBlocks) GetBlocks(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	s.calls.Add(1)
	s.asked.Add(int64(len(cs)))
	for {
		m := s.maxLen.Load()
		if int64(len(cs)) <= m || s.maxLen.CompareAndSwap(m, int64(len(cs))) {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]blockformat.Block, len(cs))
	for i, c := range cs {
		b, ok := s.m[c]
		if !ok {
			return nil, fmt.Errorf("memBlocks: no block %s", c)
		}
		out[i] = b
	}
	return out, nil
}

func (s *memBlocks) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// randomBytes returns n bytes of a ChaCha8 stream seeded with seed.
func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// boxoImport imports data with boxo's balanced layout (what Kubo runs)
// with the DagBuilderParams of the format and chunker size-leaf, and
// returns the root and every block it made, by multihash (the blockstore
// keeps no codec).
func boxoImport(data []byte, leaf int) (cid.Cid, map[string][]byte, error) {
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	dserv := merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
	p := helpers.DagBuilderParams{Dagserv: dserv, Maxlinks: MaxLinks, RawLeaves: true, CidBuilder: cidPrefix}
	db, err := p.New(chunker.NewSizeSplitter(bytes.NewReader(data), int64(leaf)))
	if err != nil {
		return cid.Undef, nil, err
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		return cid.Undef, nil, err
	}
	ctx := context.Background()
	keys, err := bs.AllKeysChan(ctx)
	if err != nil {
		return cid.Undef, nil, err
	}
	out := map[string][]byte{}
	for c := range keys {
		b, err := bs.Get(ctx, c)
		if err != nil {
			return cid.Undef, nil, err
		}
		out[string(c.Hash())] = b.RawData()
	}
	return nd.Cid(), out, nil
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
