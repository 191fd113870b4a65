package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	blockformat "github.com/ipfs/go-block-format"
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
// chain on every node (but for this node's own entries among them, which
// it writes again).

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
// every entry that has one of them as an ancestor. This node's own entries
// among them are written again, with the same payloads, on what the chain
// keeps: nothing it acknowledged is lost. It does the work once per roster
// version. Called with mu held.
func (r *Replica) applyCutoffsLocked(ctx context.Context, ro *cell.Roster) error {
	if r.cutVersion == ro.Version {
		return nil
	}
	authors := make([]peer.ID, len(ro.Former))
	for i, f := range ro.Former {
		authors[i] = f.Peer
	}
	if r.st.BeyondCutoff(ro, authors) {
		dropped, again, err := r.cut(ctx, ro)
		if err != nil {
			r.dropLocked()
			return err
		}
		r.stats.Dropped += uint64(dropped)
		r.log.Warn("entries of a removed member past its cut-off dropped", "entries", dropped, "ownWrittenAgain", again, "rosterVersion", ro.Version)
		r.signalLocked()
	}
	r.cutVersion = ro.Version
	return nil
}

// cut rebuilds the chain of ro's cell from the store without the entries
// ro refuses as past a cut-off and their descendants, and writes this
// node's own dropped entries again on top of it. Crash-safe order: the new
// entries' blocks first, then one synced batch that rewrites the index
// (kept entries keep their arrival order, renumbered) and adds the new
// entries, then the dropped blocks are deleted. It returns how many
// entries were dropped and how many written again.
func (r *Replica) cut(ctx context.Context, ro *cell.Roster) (dropped, again int, err error) {
	prefix := indexPrefix(ro)
	stored, err := readIndex(ctx, r.d, prefix)
	if err != nil {
		return 0, 0, err
	}
	st := chain.NewState(ro.Cell)
	st.SetLimits(r.cfg.Waiting)
	var gone []*chain.Entry
	first := len(stored) // the first index that changes
	for i, c := range stored {
		b, err := r.blocks.Get(ctx, c)
		if err != nil {
			return 0, 0, fmt.Errorf("chain: entry %s of the index: %w", c, err)
		}
		e, err := chain.Decode(b.RawData())
		if err != nil {
			return 0, 0, fmt.Errorf("chain: stored entry %s: %w", c, err)
		}
		if chain.PastCutoff(e, ro) || !parentsHeld(st, e) {
			gone = append(gone, e)
			first = min(first, i)
			continue
		}
		if _, err := st.Restore(e); err != nil {
			return 0, 0, fmt.Errorf("chain: stored entry %s: %w", c, err)
		}
	}
	added, err := r.writeAgain(st, ro, gone)
	if err != nil {
		return 0, 0, err
	}
	blks := make([]blockformat.Block, len(added))
	for i, e := range added {
		if blks[i], err = blockformat.NewBlockWithCid(e.Bytes(), e.CID()); err != nil {
			return 0, 0, fmt.Errorf("chain: block of %s: %w", e.CID(), err)
		}
	}
	if err := r.blocks.PutMany(ctx, blks); err != nil {
		return 0, 0, fmt.Errorf("chain: store entries written again: %w", err)
	}
	batch, err := r.d.Batch(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("chain: batch: %w", err)
	}
	for _, m := range st.Arrivals(uint64(first), st.Len()) {
		if err := batch.Put(ctx, indexKey(prefix, m.Index), m.CID.Bytes()); err != nil {
			return 0, 0, fmt.Errorf("chain: rewrite index: %w", err)
		}
	}
	for i := st.Len(); i < len(stored); i++ {
		if err := batch.Delete(ctx, indexKey(prefix, uint64(i))); err != nil {
			return 0, 0, fmt.Errorf("chain: rewrite index: %w", err)
		}
	}
	if err := batch.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("chain: rewrite index: %w", err)
	}
	r.st = st
	r.recent.reset()
	for _, e := range gone {
		if err := r.blocks.Delete(ctx, e.CID()); err != nil && !errors.Is(err, blocks.ErrNotFound) {
			r.log.Warn("dropped entry not deleted", "entry", e.CID(), "err", err)
		}
	}
	return len(gone), len(added), nil
}

// writeAgain writes this node's entries among gone (in their arrival
// order, a causal one) as new entries on st, in ro's epoch, with the same
// payloads. An entry whose payload does not open is lost, and logged.
func (r *Replica) writeAgain(st *chain.State, ro *cell.Roster, gone []*chain.Entry) ([]*chain.Entry, error) {
	sec := secrets(r.cell.Keys())
	secret, ok := sec(ro.Epoch)
	var added []*chain.Entry
	for _, old := range gone {
		if old.Author != r.self {
			continue
		}
		pt, err := chain.Open(old, sec)
		if err == nil && !ok {
			err = fmt.Errorf("%w %d", chain.ErrUnknownEpoch, ro.Epoch)
		}
		if err != nil {
			r.log.Error("own entry past a cut-off lost", "entry", old.CID(), "err", err)
			continue
		}
		e, err := chain.Write(st.Next(r.self, ro.Cell, ro.Epoch), r.key, secret, pt, r.cfg.Rand)
		if err != nil {
			return nil, err
		}
		if rd := st.Add([]*chain.Entry{e}); len(rd.Accepted) != 1 {
			return nil, fmt.Errorf("chain: own entry refused: %v", rd.Rejected)
		}
		added = append(added, e)
	}
	return added, nil
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

// A member that does not know of a removal yet holds entries past the
// cut-off, so its announcements look ahead of this node's chain however
// often it is pulled. After a pull that offered such entries and brought
// nothing, announcements (and its own pulls) do not trigger pulls from it
// for a SyncInterval; the periodic pull from a random member goes on, and
// the member soon learns of the removal.

// hushLocked stops pulls on id's announcements for a SyncInterval. The
// map holds members only (a pull is from a member), so the roster bounds
// it.
func (r *Replica) hushLocked(id peer.ID) {
	if r.hushed == nil {
		r.hushed = make(map[peer.ID]time.Time)
	}
	r.hushed[id] = r.cfg.Now().Add(r.cfg.SyncInterval)
}

// quietLocked reports whether id is hushed, and forgets it once it is not.
func (r *Replica) quietLocked(id peer.ID) bool {
	until, ok := r.hushed[id]
	if ok && !r.cfg.Now().Before(until) {
		delete(r.hushed, id)
		return false
	}
	return ok
}
