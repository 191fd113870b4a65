package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain"
)

// Removal: the roster that removes a member records its cut-off (package
// cell, Former). Verify refuses the member's entries past it; entries this
// node took before it knew of the removal are dropped from the chain, with
// every entry that descends from them, when it adopts that roster
// (applyCutoffsLocked): the same roster and the same entries give the same
// chain on every node.

// removedError says why a removed node refuses to write.
func removedError(ro *cell.Roster) error {
	return fmt.Errorf("%w %s (%q) by roster version %d: it takes no more appends, and the cell accepts nothing it writes now",
		ErrRemoved, ro.ID(), ro.Name, ro.Version)
}

// Cutoff returns the cut-off a removal of id records: the highest
// sequence number of id's entries this node holds and their CIDs. With
// fetch, it first pulls (bounded by ctx) every entry id holds, so that
// what id acknowledged before its removal stays in the cell; a failed pull
// (id unreachable) leaves the cut-off at what this node holds. It blocks.
func (r *Replica) Cutoff(ctx context.Context, id peer.ID, fetch bool) (cell.Cutoff, error) {
	if fetch {
		if err := r.Pull(ctx, id); err != nil {
			r.log.Info("removal: could not take the member's last entries", "peer", id, "err", err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.stateLocked(ctx)
	if err != nil {
		return cell.Cutoff{}, err
	}
	seq, last := st.Last(id)
	return cell.Cutoff{Seq: seq, Last: last}, nil
}

// applyCutoffsLocked drops from the chain, in memory and on disk, the
// entries that ro refuses as past their removed author's cut-off, and
// every entry that has one of them as an ancestor. It does the work once
// per roster version. Called with mu held.
func (r *Replica) applyCutoffsLocked(ctx context.Context, ro *cell.Roster) error {
	if r.cutVersion == ro.Version {
		return nil
	}
	authors := make([]peer.ID, len(ro.Former))
	for i, f := range ro.Former {
		authors[i] = f.Peer
	}
	if r.st.BeyondCutoff(ro, authors) {
		st, dropped, err := cut(ctx, r.blocks, r.d, ro)
		if err != nil {
			r.dropLocked()
			return err
		}
		r.st = st
		r.stats.Dropped += uint64(len(dropped))
		r.log.Warn("entries of a removed member past its cut-off dropped", "entries", len(dropped), "rosterVersion", ro.Version)
		r.signalLocked()
	}
	r.cutVersion = ro.Version
	return nil
}

// cut rebuilds the chain of ro's cell from the store without the entries
// ro refuses as past a cut-off and their descendants, rewrites the index
// (the kept entries keep their arrival order, renumbered) in one synced
// batch, then deletes the dropped entries' blocks. It returns the chain
// and the dropped entries.
func cut(ctx context.Context, bs *blocks.Store, d ds.Batching, ro *cell.Roster) (*chain.State, []cid.Cid, error) {
	prefix := indexPrefix(ro)
	stored, err := readIndex(ctx, d, prefix)
	if err != nil {
		return nil, nil, err
	}
	st := chain.NewState(ro.Cell)
	var dropped []cid.Cid
	batch, err := d.Batch(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("chain: batch: %w", err)
	}
	for _, c := range stored {
		b, err := bs.Get(ctx, c)
		if err != nil {
			return nil, nil, fmt.Errorf("chain: entry %s of the index: %w", c, err)
		}
		e, err := chain.Decode(b.RawData())
		if err != nil {
			return nil, nil, fmt.Errorf("chain: stored entry %s: %w", c, err)
		}
		if chain.PastCutoff(e, ro) || !parentsHeld(st, e) {
			dropped = append(dropped, c)
			continue
		}
		if _, err := st.Restore(e); err != nil {
			return nil, nil, fmt.Errorf("chain: stored entry %s: %w", c, err)
		}
		if n := uint64(st.Len() - 1); len(dropped) > 0 {
			if err := batch.Put(ctx, indexKey(prefix, n), c.Bytes()); err != nil {
				return nil, nil, fmt.Errorf("chain: rewrite index: %w", err)
			}
		}
	}
	for i := st.Len(); i < len(stored); i++ {
		if err := batch.Delete(ctx, indexKey(prefix, uint64(i))); err != nil {
			return nil, nil, fmt.Errorf("chain: rewrite index: %w", err)
		}
	}
	if err := batch.Commit(ctx); err != nil {
		return nil, nil, fmt.Errorf("chain: rewrite index: %w", err)
	}
	for _, c := range dropped {
		if err := bs.Delete(ctx, c); err != nil && !errors.Is(err, blocks.ErrNotFound) {
			return nil, nil, fmt.Errorf("chain: delete dropped entry %s: %w", c, err)
		}
	}
	return st, dropped, nil
}

func parentsHeld(st *chain.State, e *chain.Entry) bool {
	for _, p := range e.Parents {
		if !st.Has(p, false) {
			return false
		}
	}
	return true
}

// readIndex returns the CIDs of the index under prefix, in arrival order.
func readIndex(ctx context.Context, d ds.Datastore, prefix ds.Key) ([]cid.Cid, error) {
	res, err := d.Query(ctx, query.Query{Prefix: prefix.String(), Orders: []query.Order{query.OrderByKey{}}})
	if err != nil {
		return nil, fmt.Errorf("chain: read index: %w", err)
	}
	defer res.Close()
	var out []cid.Cid
	for item := range res.Next() {
		if item.Error != nil {
			return nil, fmt.Errorf("chain: read index: %w", item.Error)
		}
		if want := indexKey(prefix, uint64(len(out))); item.Key != want.String() {
			return nil, fmt.Errorf("chain: index record %s where %s was expected: the store is damaged", item.Key, want)
		}
		c, err := cid.Cast(item.Value)
		if err != nil {
			return nil, fmt.Errorf("chain: index record %s: %w", item.Key, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// dropPastCutoffLocked removes from es, verified against an earlier
// roster, the entries that the current roster refuses as past a cut-off.
// Called with mu held, after stateLocked.
func (r *Replica) dropPastCutoffLocked(es []*chain.Entry) []*chain.Entry {
	ro := r.cell.Roster()
	if ro == nil || len(ro.Former) == 0 {
		return es
	}
	n := len(es)
	es = slices.DeleteFunc(es, func(e *chain.Entry) bool { return chain.PastCutoff(e, ro) })
	r.stats.PastCutoff += uint64(n - len(es))
	return es
}
