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
	return walk(ctx, g, root, visit, map[cid.Cid]struct{}{})
}

// walk is Walk skipping the blocks in seen, and adding those it visits.
func walk(ctx context.Context, g BlockGetter, root cid.Cid, visit func(blockformat.Block) error, seen map[cid.Cid]struct{}) error {
	if _, ok := seen[root]; ok {
		return nil
	}
	seen[root] = struct{}{}
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

// WalkTree visits every block of the blob c, as Walk does, and for an
// encrypted directory every block of the blobs it lists, recursively: the
// listing's blocks are walked first, then read back through g to find the
// entries. (A public directory links its entries in the DAG: Walk alone
// reaches them.) Each block is visited once. Errors: as Walk and ReadDir.
func WalkTree(ctx context.Context, g BlockGetter, c Capability, visit func(blockformat.Block) error) error {
	return walkTree(ctx, g, c, visit, map[cid.Cid]struct{}{}, 0)
}

func walkTree(ctx context.Context, g BlockGetter, c Capability, visit func(blockformat.Block) error, seen map[cid.Cid]struct{}, depth int) error {
	if depth > maxDirDepth {
		return fmt.Errorf("blob: directories nested deeper than %d: %w", maxDirDepth, ErrMalformed)
	}
	if _, ok := seen[c.Root]; ok {
		return nil
	}
	if err := walk(ctx, g, c.Root, visit, seen); err != nil {
		return err
	}
	if !c.Dir || c.Public {
		return nil
	}
	es, err := ReadDir(ctx, g, c)
	if err != nil {
		return err
	}
	for _, e := range es {
		if err := walkTree(ctx, g, e.Cap, visit, seen, depth+1); err != nil {
			return err
		}
	}
	return nil
}
