package replica

import (
	"context"
	"slices"

	"github.com/ipfs/go-cid"
)

// The recent cache: the plaintext of the entries this node appended last,
// by CID, so that a reader of its own new entries (the store's index,
// which catches up after every write) neither reads their blocks back
// from the datastore nor decodes and decrypts them again. A CID names an
// entry's bytes, so a cached entry is right whatever its arrival index
// (taken from the chain when it is read); the cache is emptied with the
// in-memory chain all the same (a failed write, a reload, a cut-off's
// rewrite). It holds at most recentEntries entries and recentBytes bytes
// of plaintext, the oldest evicted first.
const (
	recentEntries = 1024
	recentBytes   = 4 << 20
)

// recent is the cache; guarded by Replica.mu.
type recent struct {
	m     map[cid.Cid]Entry // Index unset: it is the chain's to say
	order []cid.Cid         // oldest first
	bytes int
}

// add keeps a copy of e's plaintext (the caller keeps e.Payload).
func (c *recent) add(e Entry) {
	if len(e.Payload) > recentBytes {
		return
	}
	if c.m == nil {
		c.m = make(map[cid.Cid]Entry)
	}
	if _, ok := c.m[e.CID]; ok {
		return
	}
	for len(c.order) >= recentEntries || c.bytes+len(e.Payload) > recentBytes {
		old := c.order[0]
		c.order = c.order[1:]
		c.bytes -= len(c.m[old].Payload)
		delete(c.m, old)
	}
	e.Index, e.Payload = 0, slices.Clone(e.Payload)
	c.m[e.CID] = e
	c.order = append(c.order, e.CID)
	c.bytes += len(e.Payload)
}

// get returns the cached entry of c with a copy of its plaintext.
func (c *recent) get(id cid.Cid) (Entry, bool) {
	e, ok := c.m[id]
	if ok {
		e.Payload = slices.Clone(e.Payload)
	}
	return e, ok
}

// reset empties the cache.
func (c *recent) reset() { *c = recent{} }

// Tip returns how many entries this node holds, which is the arrival
// index of the next one, and the CID of the last arrival (cid.Undef when
// there is none). It reads nothing from disk once the chain is loaded,
// so that a reader can tell cheaply that it has seen every arrival. Safe
// for concurrent use.
func (r *Replica) Tip(ctx context.Context) (uint64, cid.Cid, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.stateLocked(ctx)
	if err != nil {
		return 0, cid.Undef, err
	}
	n := st.Len()
	if n == 0 {
		return 0, cid.Undef, nil
	}
	return uint64(n), st.Arrivals(uint64(n-1), 1)[0].CID, nil
}
