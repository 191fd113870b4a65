package blocks

import (
	"context"

	blockformat "github.com/ipfs/go-block-format"
)

// PutOwn stores bs as Store.PutOwn does (without hashing their data
// again: only for blocks whose CIDs this process computed from their
// data) and announces them as Put does. The Exchange keeps no reference
// to the slice bs.
func (e *Exchange) PutOwn(ctx context.Context, bs []blockformat.Block) error {
	if err := e.store.PutOwn(ctx, bs); err != nil {
		return err
	}
	if b := e.running(); b != nil {
		return b.NotifyNewBlocks(ctx, bs...)
	}
	return nil
}
