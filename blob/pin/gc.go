package pin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/exopeer/exopeer/blocks"
)

// sweepBatch is how many blocks the sweep deletes at a time (in one
// datastore batch, under the lock that Pin and Hold take). A variable for
// the tests.
var sweepBatch = 256

// cand is a blob block the mark did not reach: a candidate for the sweep.
type cand struct {
	c    cid.Cid
	size int
}

// GCStats is what a collection did.
type GCStats struct {
	Deleted, Kept int64         // blob blocks deleted, and left
	Freed         int64         // bytes of the blocks deleted
	Took          time.Duration // from start to end, waiting for another GC included
	// Damaged are the pinned roots under which the mark met a stored
	// node that is corrupt or does not decode: the sweep deleted it and
	// all it alone linked, so that the DAG is no longer held whole
	// though its root may be (fetch it again).
	Damaged []cid.Cid
}

// Hold keeps the blocks of cs from collection until release is called
// (release is idempotent). It is for blocks of an import or a fetch under
// way: hold a block before writing it. Holds are counted: a block held
// twice stays until both are released. It blocks only for the time of a
// collection's sweep batch.
func (p *Pins) Hold(cs ...cid.Cid) (release func()) {
	keys := make([]string, 0, len(cs))
	for _, c := range cs {
		if c.Defined() {
			keys = append(keys, string(c.Hash()))
		}
	}
	p.mu.Lock()
	for _, k := range keys {
		p.held[k]++
	}
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, k := range keys {
				if p.held[k]--; p.held[k] <= 0 {
					delete(p.held, k)
				}
			}
		})
	}
}

// BlockPutter is where a Holding writes blocks (blob.BlockPutter's shape).
type BlockPutter interface {
	PutMany(ctx context.Context, bs []blockformat.Block) error
}

// BlockGetter is where a Holding's Getter gets blocks (blob.BlockGetter's
// shape).
type BlockGetter interface {
	GetBlocks(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error)
}

// Holding holds blocks for an import or a fetch under way, until Release:
// an import writes through it (PutMany), a fetch gets through its Getter,
// so that a collection running meanwhile keeps every block they wrote,
// whatever the moment. It is safe for concurrent use.
type Holding struct {
	p   *Pins
	dst BlockPutter

	mu       sync.Mutex
	releases []func()
}

// Holding returns a Holding that writes to dst (nil for one that only
// holds and gets).
func (p *Pins) Holding(dst BlockPutter) *Holding { return &Holding{p: p, dst: dst} }

// Hold holds cs until Release.
func (h *Holding) Hold(cs ...cid.Cid) {
	rel := h.p.Hold(cs...)
	h.mu.Lock()
	h.releases = append(h.releases, rel)
	h.mu.Unlock()
}

// PutMany holds the blocks of bs, then writes them to dst. It blocks like
// dst.PutMany; it takes ownership of bs as dst does.
func (h *Holding) PutMany(ctx context.Context, bs []blockformat.Block) error {
	cs := make([]cid.Cid, len(bs))
	for i, b := range bs {
		cs[i] = b.Cid()
	}
	h.Hold(cs...)
	return h.dst.PutMany(ctx, bs)
}

// Getter returns a BlockGetter that holds the CIDs asked for, then gets
// them from g (which fetches and stores those missing): what a fetch
// stores stays until Release even if a collection runs meanwhile.
func (h *Holding) Getter(g BlockGetter) BlockGetter { return heldGetter{h, g} }

type heldGetter struct {
	h *Holding
	g BlockGetter
}

func (hg heldGetter) GetBlocks(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	hg.h.Hold(cs...)
	return hg.g.GetBlocks(ctx, cs)
}

// Release releases every hold the Holding took. Call it once the root is
// pinned, or the import given up.
func (h *Holding) Release() {
	h.mu.Lock()
	rs := h.releases
	h.releases = nil
	h.mu.Unlock()
	for _, r := range rs {
		r()
	}
}

// OverBudget reports whether the blob blocks of the store take more than
// budget bytes (a budget of 0 or less is no budget: never over), with
// their Usage. It does not scan the store but once (see blocks.Store.Usage).
func (p *Pins) OverBudget(ctx context.Context, budget int64) (bool, blocks.Usage, error) {
	u, err := p.s.Usage(ctx)
	if err != nil {
		return false, blocks.Usage{}, err
	}
	return budget > 0 && u.Bytes > budget, u, nil
}

// GC deletes every blob block of the store that no pinned root reaches
// through the blocks held locally and that no hold keeps (see the package
// documentation for how, and for what an interrupted collection did). It
// waits for a collection under way to end first. It blocks on the store
// for as long as it takes; ctx ends it, with ctx's error and what it did
// so far.
func (p *Pins) GC(ctx context.Context) (GCStats, error) {
	start := p.now()
	var st GCStats
	select {
	case p.gc <- struct{}{}:
	case <-ctx.Done():
		return st, ctx.Err()
	}
	defer func() { <-p.gc }()

	marked := make(map[string]struct{})
	p.mu.Lock()
	p.gcRunning, p.late = true, make(map[cid.Cid]bool)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.gcRunning, p.late = false, nil
		p.mu.Unlock()
	}()

	pins, err := p.List(ctx)
	if err != nil {
		return st, fmt.Errorf("pin: gc: %w", err)
	}
	roots := make([]cid.Cid, len(pins))
	for i, pn := range pins {
		roots[i] = pn.Root
	}
	for _, r := range roots {
		damaged, err := p.mark(ctx, []cid.Cid{r}, marked)
		if err != nil {
			return st, fmt.Errorf("pin: gc: mark: %w", err)
		}
		if damaged {
			st.Damaged = append(st.Damaged, r)
		}
	}

	var cands []cand
	err = p.s.BlobKeys(ctx, func(c cid.Cid, size int) error {
		if _, ok := marked[string(c.Hash())]; !ok {
			cands = append(cands, cand{c, size})
		} else {
			st.Kept++
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("pin: gc: list blocks: %w", err)
	}

	for len(cands) > 0 {
		if err := ctx.Err(); err != nil {
			st.Kept += int64(len(cands))
			st.Took = p.now().Sub(start)
			return st, err
		}
		n := min(len(cands), sweepBatch)
		batch := cands[:n]
		cands = cands[n:]
		deleted, freed, kept, damaged, err := p.sweep(ctx, batch, marked)
		st.Damaged = append(st.Damaged, damaged...)
		st.Deleted += deleted
		st.Freed += freed
		st.Kept += kept
		if err != nil {
			st.Kept += int64(len(cands))
			st.Took = p.now().Sub(start)
			return st, fmt.Errorf("pin: gc: sweep: %w", err)
		}
	}
	st.Took = p.now().Sub(start)
	p.log.Info("blob blocks collected", "deleted", st.Deleted, "kept", st.Kept, "freed", st.Freed, "took", st.Took)
	return st, nil
}

// sweep deletes the blocks of batch that are neither marked nor held,
// after marking from the roots pinned since the last look.
func (p *Pins) sweep(ctx context.Context, batch []cand, marked map[string]struct{}) (deleted, freed, kept int64, damaged []cid.Cid, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.late) > 0 {
		roots := make([]cid.Cid, 0, len(p.late))
		for r := range p.late {
			roots = append(roots, r)
		}
		clear(p.late)
		for _, r := range roots {
			bad, err := p.mark(ctx, []cid.Cid{r}, marked)
			if err != nil {
				return 0, 0, int64(len(batch)), damaged, err
			}
			if bad {
				damaged = append(damaged, r)
			}
		}
	}
	var gone []cid.Cid
	for _, b := range batch {
		k := string(b.c.Hash())
		if _, ok := marked[k]; ok {
			kept++
			continue
		}
		if p.held[k] > 0 {
			kept++
			continue
		}
		gone = append(gone, b.c)
		freed += int64(b.size)
	}
	if err := p.s.DeleteMany(ctx, gone); err != nil {
		return 0, 0, int64(len(batch)), damaged, err
	}
	return int64(len(gone)), freed, kept, damaged, nil
}

// mark adds to marked every block that roots reach through the blocks
// stored: raw leaves by their CID alone, dag-pb nodes read, verified and
// decoded for their links. A node not stored, corrupt or not dag-pb is
// not followed (a corrupt one is not marked: the sweep deletes it, and a
// fetch gets it again; damaged says that one was met, or a node that
// does not decode). It stops with ctx.
func (p *Pins) mark(ctx context.Context, roots []cid.Cid, marked map[string]struct{}) (damaged bool, err error) {
	level := roots
	for len(level) > 0 {
		var next []cid.Cid
		for _, c := range level {
			if err := ctx.Err(); err != nil {
				return damaged, err
			}
			k := string(c.Hash())
			if _, ok := marked[k]; ok {
				continue
			}
			if c.Type() != cid.DagProtobuf {
				if c.Type() == cid.Raw {
					marked[k] = struct{}{}
				}
				continue
			}
			b, err := p.s.Get(ctx, c)
			switch {
			case errors.Is(err, blocks.ErrNotFound):
				continue
			case errors.Is(err, blocks.ErrCorrupt):
				p.log.Warn("corrupt blob block left to collect", "cid", c.String(), "err", err)
				damaged = true
				continue
			case err != nil:
				return damaged, err
			}
			marked[k] = struct{}{}
			nd, err := merkledag.DecodeProtobuf(b.RawData())
			if err != nil {
				p.log.Warn("pinned dag-pb block does not decode", "cid", c.String(), "err", err)
				damaged = true
				continue
			}
			for _, l := range nd.Links() {
				next = append(next, l.Cid)
			}
		}
		level = next
	}
	return damaged, nil
}
