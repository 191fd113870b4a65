package blocks

import (
	"context"
	"errors"
	"fmt"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// getOrMissing reads c's block from the store for a fetch that can ask
// peers: a block not stored, or stored corrupt, is missing (nil block, nil
// error). A corrupt record (its bytes do not hash to c: a disk's bit rot,
// a file truncated by a crash) is deleted first and logged once, with its
// CID, so that the fetch stores the good block in its place: otherwise a
// corrupt leaf under a pinned root failed every read of its range while
// peers held it, and nothing ever fetched it again (a collection marks
// leaves without reading them). Any other error is returned.
//
// Only blob blocks (raw, dag-pb) are repaired so: a chain block is left to
// the chain's replica, whose index names it. Repairs of one CID are
// serialized and read the block again first, so that a reader that saw it
// corrupt before another repaired it does not delete the good copy.
func (e *Exchange) getOrMissing(ctx context.Context, c cid.Cid) (blockformat.Block, error) {
	b, err := e.store.Get(ctx, c)
	switch {
	case err == nil:
		return b, nil
	case errors.Is(err, ErrNotFound) && c.Defined():
		return nil, nil
	case errors.Is(err, ErrCorrupt) && isBlob(c):
		return e.repair(ctx, c)
	default:
		return nil, err
	}
}

// repair deletes c's stored block if it is still corrupt (nil, nil: to be
// fetched), or returns it if another repair stored it meanwhile.
func (e *Exchange) repair(ctx context.Context, c cid.Cid) (blockformat.Block, error) {
	mu := &e.repairs[repairStripe(c)]
	mu.Lock()
	defer mu.Unlock()
	b, err := e.store.Get(ctx, c)
	switch {
	case err == nil:
		return b, nil
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case !errors.Is(err, ErrCorrupt):
		return nil, err
	}
	if derr := e.store.Delete(context.WithoutCancel(ctx), c); derr != nil {
		return nil, fmt.Errorf("%w (deleting it to fetch it again: %w)", err, derr)
	}
	e.log.Warn("corrupt stored block deleted, to be fetched again", "cid", c.String())
	return nil, nil
}

// repairStripes is how many locks serialize repairs, by CID.
const repairStripes = 64

func repairStripe(c cid.Cid) int {
	h := c.Hash()
	if len(h) == 0 {
		return 0
	}
	return int(h[len(h)-1]) % repairStripes
}

// storedOrMissing is getOrMissing for a read that cannot fetch: a corrupt
// record is an error wrapping ErrCorrupt, and is left in place.
func (e *Exchange) storedOrMissing(ctx context.Context, c cid.Cid) (blockformat.Block, error) {
	b, err := e.store.Get(ctx, c)
	if errors.Is(err, ErrNotFound) && c.Defined() {
		return nil, nil
	}
	return b, err
}
