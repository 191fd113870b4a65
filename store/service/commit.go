package service

import (
	"context"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/exopeer/exopeer/store"
)

// Group commit. Writes that arrive while one is being committed are
// committed together by the next commit, in the order of the queue: in
// one chain entry, a batch of transactions (store.EncodeBatch) holding
// each write's transaction as it would be alone, so that the commit
// signs, seals and stores one entry, not one per write (past
// store.MaxPayload bytes or store.MaxBatch writes, several entries); the
// entries are appended in one AppendMany (one synced datastore write) and
// the index catches up once. A commit of one write writes its
// transaction as it is (version 1), as before batches. A write is not
// merged into another's transaction: an index checks and skips a
// transaction whole, so a device whose schemas refuse one write's
// document (another version of a type, or a schema the writer does not
// have) would lose every write merged with it; a batch's transactions
// are checked and skipped one by one (TestGroupSkipAlone). Each write's
// Written names the entry that holds it (shared with the writes of its
// batch) and its transaction's place in it (Tx). The scheme is leader and followers, with
// no goroutine of its own: a write that finds no commit under way commits
// the queue (its own write first, so a lone write waits for no company);
// the others wait in the queue, and when a commit ends, the first of the
// queue commits the queue as it is then. At most maxQueued writes wait at once (queued or in the
// commit under way); a write beyond it blocks until one returns, or its
// ctx ends. Each write returns when its own commit did: on disk and, on a
// store node, in the index; a failed commit fails every write in it, and
// only those.

// maxQueued bounds the writes waiting for a commit, queued or in the
// commit under way.
const maxQueued = 256

// write is one caller's write: its transaction, encoded, and how its
// commit went. wake receives one value: the commit that took it ended
// (its result is set), or it is to commit the queue (lead).
type write struct {
	e    store.EntityID
	p    []byte // store.Encode of the transaction
	wake chan struct{}
	lead bool
	w    Written
	err  error
	// ent and tx are set by entries: the write's entry among its
	// commit's, and its transaction's index in that entry.
	ent, tx int
}

// commit appends the transaction of entity e, encoded as p, as a chain
// entry, with the writes committed alongside it, and returns its entry. ctx bounds the wait for a place in the queue and in it; once its
// commit started a write runs to its end.
func (s *Service) commit(ctx context.Context, e store.EntityID, p []byte) (Written, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return Written{}, fmt.Errorf("store: append: %w", ctx.Err())
	}
	defer func() { <-s.slots }()
	w := &write{e: e, p: p, wake: make(chan struct{}, 1)}
	s.cmu.Lock()
	if s.cdone {
		s.cmu.Unlock()
		return Written{}, ErrClosed
	}
	s.queue = append(s.queue, w)
	lead := !s.busy
	w.lead, s.busy = lead, true
	s.cmu.Unlock()
	if !lead {
		select {
		case <-w.wake:
		case <-ctx.Done():
			s.cmu.Lock()
			if i := slices.Index(s.queue, w); i >= 0 && !w.lead {
				s.queue = slices.Delete(s.queue, i, i+1)
				s.cmu.Unlock()
				return Written{}, fmt.Errorf("store: append: %w", ctx.Err())
			}
			s.cmu.Unlock()
			<-w.wake // in a commit under way, or leading the next one
		}
		if !w.lead { // set before the wake, if at all
			return w.w, w.err
		}
	}
	s.cmu.Lock()
	batch := s.queue
	s.queue = nil
	s.cmu.Unlock()
	s.commitBatch(batch)
	s.cmu.Lock()
	if len(s.queue) > 0 {
		next := s.queue[0]
		next.lead = true
		next.wake <- struct{}{}
	} else {
		s.busy = false
	}
	s.cmu.Unlock()
	return w.w, w.err
}

// commitBatch appends the writes of batch, settles the index, sets every
// write's result and wakes every write but the leader's (whose wake has
// served already).
func (s *Service) commitBatch(batch []*write) {
	err := s.live()
	if err == nil {
		s.commits.Add(1)
		if s.commitHook != nil {
			s.commitHook()
		}
		ents, aerr := s.chain.AppendMany(s.ctx, entries(batch))
		if aerr != nil {
			err = fmt.Errorf("store: append: %w", aerr)
		} else {
			s.omu.Lock()
			for _, e := range ents {
				s.own.add(e.CID)
			}
			s.omu.Unlock()
			s.settle(s.ctx)
			for _, w := range batch {
				w.w = Written{Entity: w.e, CID: ents[w.ent].CID, Pos: ents[w.ent].Pos, Tx: w.tx}
			}
		}
	}
	for _, w := range batch {
		w.err = err
		if !w.lead {
			w.wake <- struct{}{}
		}
	}
}

// entries returns the payloads of batch's chain entries and sets each
// write's ent and tx: runs of consecutive writes, each run as long as its
// batch's encoding fits in store.MaxPayload (counted with
// store.BatchHeader and store.BatchPart) and it has at most
// store.MaxBatch writes; a run of one write is that write's own
// encoding, a longer one a store.EncodeBatch of theirs, in order.
func entries(batch []*write) [][]byte {
	var out [][]byte
	for len(batch) > 0 {
		n, size := 1, store.BatchHeader+store.BatchPart(len(batch[0].p))
		for n < len(batch) && n < store.MaxBatch {
			next := size + store.BatchPart(len(batch[n].p))
			if next > store.MaxPayload {
				break
			}
			n, size = n+1, next
		}
		run := batch[:n]
		batch = batch[n:]
		if n == 1 {
			run[0].ent, run[0].tx = len(out), 0
			out = append(out, run[0].p)
			continue
		}
		txs := make([][]byte, n)
		for i, w := range run {
			txs[i] = w.p
			w.ent, w.tx = len(out), i
		}
		p, err := store.EncodeBatch(txs)
		if err != nil { // the run was sized for it: a programmer's error
			panic(fmt.Sprintf("store: a group commit's batch: %v", err))
		}
		out = append(out, p)
	}
	return out
}

// closeQueue fails the writes waiting in the queue with ErrClosed and
// refuses new ones; a commit under way ends as it would.
func (s *Service) closeQueue() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.cdone = true
	kept := s.queue[:0]
	for _, w := range s.queue {
		if w.lead {
			kept = append(kept, w) // woken to lead: it commits, and finds the service closed
			continue
		}
		w.err = ErrClosed
		w.wake <- struct{}{}
	}
	s.queue = kept
}

// The entries of this service's own commits: their documents were
// validated by Put (or a Delete carries none) against s.reg, the
// registry the index is opened with, so the index need not validate them
// again when it catches up (index.Arrival.Validated: Registry.Validate
// parses each document, and was a tenth of a write's CPU). A CID names
// the entry's bytes, so an entry that arrives with one of these CIDs is
// the one Put validated, whoever sends it. The set holds only CIDs that
// the node's own AppendMany returned; at most maxOwn, the oldest
// forgotten first (a forgotten entry is validated again, no more).
const maxOwn = 2 * maxQueued

// ownSet is a bounded set of CIDs, guarded by Service.omu.
type ownSet struct {
	m    map[cid.Cid]struct{}
	ring [maxOwn]cid.Cid // the CIDs in m, oldest at next once full
	next int
}

// add puts c in the set, forgetting the oldest when it is full.
func (o *ownSet) add(c cid.Cid) {
	if o.m == nil {
		o.m = make(map[cid.Cid]struct{}, maxOwn)
	}
	if _, ok := o.m[c]; ok {
		return
	}
	if old := o.ring[o.next]; old.Defined() {
		delete(o.m, old)
	}
	o.ring[o.next] = c
	o.m[c] = struct{}{}
	o.next = (o.next + 1) % maxOwn
}

// has reports whether c is in the set.
func (o *ownSet) has(c cid.Cid) bool {
	_, ok := o.m[c]
	return ok
}
