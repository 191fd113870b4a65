package blob

import (
	"context"
	"fmt"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// walkBatch is the most CIDs Walk asks of its getter at once.
const walkBatch = 256

// maxWalkLevel bounds a level's CIDs Walk keeps (a level of 174-link nodes
// over 4 Mi nodes is an 8 PiB blob): past it, ErrMalformed.
const maxWalkLevel = 1 << 22

// Walk visits every block of the DAG under root: the root, then each
// level's blocks in order, asked of g in batches of up to 256 CIDs (so a
// fetching getter gets many at once). A CID met twice (identical leaves,
// or a directory listing the same blob twice) is visited once. visit is
// called from Walk's goroutine; its error stops the walk and is returned.
// Errors of g pass through; a dag-pb block that does not decode is
// ErrMalformed.
func Walk(ctx context.Context, g BlockGetter, root cid.Cid, visit func(blockformat.Block) error) error {
	seen := map[cid.Cid]struct{}{root: {}}
	level := []cid.Cid{root}
	for depth := 0; len(level) > 0; depth++ {
		if depth > maxDepth+2 { // a directory's levels above its files' DAGs
			return fmt.Errorf("blob: walk of %s deeper than %d: %w", root, maxDepth+2, ErrMalformed)
		}
		var next []cid.Cid
		for len(level) > 0 {
			batch := level[:min(len(level), walkBatch)]
			level = level[len(batch):]
			bs, err := g.GetBlocks(ctx, batch)
			if err != nil {
				return fmt.Errorf("blob: walk: %w", err)
			}
			if err := checkBlocks(bs, batch); err != nil {
				return err
			}
			for _, b := range bs {
				links, err := Children(b)
				if err != nil {
					return err
				}
				if err := visit(b); err != nil {
					return err
				}
				for _, c := range links {
					if _, ok := seen[c]; ok {
						continue
					}
					seen[c] = struct{}{}
					next = append(next, c)
				}
				if len(next) > maxWalkLevel {
					return fmt.Errorf("blob: walk of %s: a level of more than %d blocks: %w", root, maxWalkLevel, ErrMalformed)
				}
			}
		}
		level = next
	}
	return nil
}
