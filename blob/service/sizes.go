package service

import (
	"context"
	"fmt"
	"sync"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blocks"
)

// The size an exo.file entity gives is what the member that added the file
// wrote: a device whose policy is a budget must not trust it, or a member
// (a buggy device, or one whose keys were taken) could have it fetch a
// 100 GiB blob declared as 1 KiB. Once the blob's root block is held, its
// plaintext size is known for sure (the root is verified against its CID,
// and a sealed stream's size follows from its ciphertext size), and that
// size is the one the policy counts. A fetch asks the follower for a pass
// as soon as the root is there, so a file that does not fit once its true
// size is known is unpinned, and its fetch stopped, after its first level
// of blocks at most.

// trueSizes holds the plaintext sizes read from held roots, by root: a
// root's size never changes, so each is read once. It keeps only the roots
// of the files of the last pass (bounded by MaxFiles).
type trueSizes struct {
	mu    sync.Mutex
	sizes map[cid.Cid]int64
}

// correctSizes sets the Size of each file of fs whose blob's root is held
// to the size that root gives, and logs the files whose entity said
// otherwise. Folders keep the size their entity gives (the sum of their
// files, written in the sealed listing by the same member).
func (s *Service) correctSizes(ctx context.Context, fs []File) {
	s.sizes.mu.Lock()
	old := s.sizes.sizes
	s.sizes.mu.Unlock()
	next := make(map[cid.Cid]int64, len(fs))
	for i := range fs {
		f := &fs[i]
		if f.Cap.Dir {
			continue
		}
		size, ok := old[f.Cap.Root]
		if !ok {
			var err error
			if size, ok, err = s.rootSize(ctx, f.Cap); err != nil {
				s.log.Warn("blob follower: the root of a file does not give its size", "name", f.Name, "root", f.Cap.Root, "err", err)
			}
		}
		if !ok {
			continue
		}
		next[f.Cap.Root] = size
		if size != f.Size {
			if _, seen := old[f.Cap.Root]; !seen {
				s.log.Warn("blob follower: a file's entity gives another size than its blob; the blob's counts",
					"name", f.Name, "root", f.Cap.Root, "entity", f.Size, "blob", size, "added by", f.AddedBy)
			}
			f.Size = size
		}
	}
	s.sizes.mu.Lock()
	s.sizes.sizes = next
	s.sizes.mu.Unlock()
}

// rootSize returns the plaintext size of the blob c from its root, if the
// root is held (false, nil if it is not). It reads the store only.
func (s *Service) rootSize(ctx context.Context, c blob.Capability) (int64, bool, error) {
	if has, err := s.bs.Has(ctx, c.Root); err != nil || !has {
		return 0, false, err
	}
	r, err := blob.Open(ctx, storeGetter{s.bs}, c, blob.ReaderOptions{Prefetch: -1})
	if err != nil {
		return 0, false, err
	}
	defer r.Close()
	return r.Size(), true, nil
}

// storeGetter reads blocks from the store only: a missing one is an error.
type storeGetter struct{ s *blocks.Store }

func (g storeGetter) GetBlocks(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	out := make([]blockformat.Block, len(cs))
	for i, c := range cs {
		b, err := g.s.Get(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("blobs: %s: %w", c, err)
		}
		out[i] = b
	}
	return out, nil
}
