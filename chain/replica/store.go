package replica

import (
	"context"
	"fmt"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain"
)

// The store: every entry is a block in the node's block store, and the
// index /chain/<cell id>/a/<arrival index, 16 hex digits> holds its CID.
// Blocks and index records of one append (or one received batch) are
// written in one synced datastore batch, in arrival order, which is a
// causal order: a restart replays the index and finds every parent before
// its children.

func indexPrefix(r *cell.Roster) ds.Key {
	return ds.NewKey("/chain").ChildString(r.ID()).ChildString("a")
}

func indexKey(prefix ds.Key, index uint64) ds.Key {
	return prefix.ChildString(fmt.Sprintf("%016x", index))
}

// load rebuilds the chain of r's cell from the store.
func load(ctx context.Context, bs *blocks.Store, d ds.Datastore, r *cell.Roster, lim chain.Limits) (*chain.State, error) {
	st := chain.NewState(r.Cell)
	st.SetLimits(lim)
	prefix := indexPrefix(r)
	res, err := d.Query(ctx, query.Query{Prefix: prefix.String(), Orders: []query.Order{query.OrderByKey{}}})
	if err != nil {
		return nil, fmt.Errorf("chain: read index: %w", err)
	}
	defer res.Close()
	want := uint64(0)
	for item := range res.Next() {
		if item.Error != nil {
			return nil, fmt.Errorf("chain: read index: %w", item.Error)
		}
		if item.Key != indexKey(prefix, want).String() {
			return nil, fmt.Errorf("chain: index record %s where %s was expected: the store is damaged", item.Key, indexKey(prefix, want))
		}
		want++
		c, err := cid.Cast(item.Value)
		if err != nil {
			return nil, fmt.Errorf("chain: index record %s: %w", item.Key, err)
		}
		b, err := bs.Get(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("chain: entry %s of the index: %w", c, err)
		}
		e, err := chain.Decode(b.RawData())
		if err != nil {
			return nil, fmt.Errorf("chain: stored entry %s: %w", c, err)
		}
		if _, err := st.Restore(e); err != nil {
			return nil, fmt.Errorf("chain: stored entry %s: %w", c, err)
		}
	}
	return st, nil
}

// persist stores accepted entries (just added to st) and their index
// records, in one synced batch. own says that the entries are this
// node's, just written (chain.Write seals each under a fresh random
// nonce, so no block of theirs is stored yet): their blocks are then not
// looked up first (blocks.Store.PutNewWith).
func persist(ctx context.Context, bs *blocks.Store, st *chain.State, r *cell.Roster, accepted []*chain.Entry, own bool) error {
	if len(accepted) == 0 {
		return nil
	}
	prefix := indexPrefix(r)
	blks := make([]blockformat.Block, len(accepted))
	records := make(map[ds.Key][]byte, len(accepted))
	for i, e := range accepted {
		b, err := blockformat.NewBlockWithCid(e.Bytes(), e.CID())
		if err != nil {
			return fmt.Errorf("chain: block of %s: %w", e.CID(), err)
		}
		blks[i] = b
		m, ok := st.Meta(e.CID())
		if !ok {
			return fmt.Errorf("chain: persist %s: not in the chain", e.CID())
		}
		records[indexKey(prefix, m.Index)] = e.CID().Bytes()
	}
	put := bs.PutManyWith
	if own {
		put = bs.PutNewWith
	}
	if err := put(ctx, blks, records); err != nil {
		return fmt.Errorf("chain: store entries: %w", err)
	}
	return nil
}

// readEntries loads and decodes stored entries.
func readEntries(ctx context.Context, bs *blocks.Store, cs []cid.Cid) ([]*chain.Entry, error) {
	out := make([]*chain.Entry, 0, len(cs))
	for _, c := range cs {
		b, err := bs.Get(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("chain: entry %s: %w", c, err)
		}
		e, err := chain.Decode(b.RawData())
		if err != nil {
			return nil, fmt.Errorf("chain: stored entry %s: %w", c, err)
		}
		out = append(out, e)
	}
	return out, nil
}
