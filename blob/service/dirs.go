package service

import (
	"context"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/exopeer/exopeer/blob"
)

// Folders. An encrypted folder's listing is a blob whose ciphertext names
// its entries' roots: its DAG does not link them, so a collection marking
// from the folder's root would not reach them, nor would a walk. The
// service pins each entry of a folder it keeps "dir:<folder root>", down
// through subfolders, when it imports or fetches the folder; an entry pin
// whose folder root is no longer pinned is taken back (sweepDirPins), so
// that unpinning a folder frees its whole tree at the next collection. A
// public folder is plain UnixFS, whose DAG links its entries: nothing to
// do.

// dirReasonPrefix starts the pin reason of a folder's entry.
const dirReasonPrefix = "dir:"

// dirReason is the pin reason of an entry of the folder under parent.
func dirReason(parent cid.Cid) string { return dirReasonPrefix + parent.String() }

// sealedDir reports whether c is an encrypted folder.
func sealedDir(c blob.Capability) bool { return c.Dir && !c.Public }

// maxFolderDepth bounds the nesting of folders the service follows (the
// blob package's bound on ImportDir and ReadDir).
const maxFolderDepth = 64

// pinTree pins the entries of the encrypted folder c, and theirs down,
// each "dir:<its folder's root>", reading the listings through g. Each
// folder is read once, however many times the tree lists it.
func (s *Service) pinTree(ctx context.Context, g blob.BlockGetter, c blob.Capability) error {
	return s.pinTreeSeen(ctx, g, c, map[cid.Cid]bool{}, 0)
}

func (s *Service) pinTreeSeen(ctx context.Context, g blob.BlockGetter, c blob.Capability, seen map[cid.Cid]bool, depth int) error {
	if !sealedDir(c) || seen[c.Root] {
		return nil
	}
	if depth > maxFolderDepth {
		return fmt.Errorf("blobs: folders nested deeper than %d: %w", maxFolderDepth, blob.ErrMalformed)
	}
	seen[c.Root] = true
	entries, err := blob.ReadDir(ctx, g, c)
	if err != nil {
		return fmt.Errorf("blobs: list %s: %w", c.Root, err)
	}
	pinned := make(map[cid.Cid]bool, len(entries))
	for _, e := range entries {
		if pinned[e.Cap.Root] {
			continue
		}
		pinned[e.Cap.Root] = true
		if err := s.pins.Pin(ctx, e.Cap.Root, dirReason(c.Root)); err != nil {
			return fmt.Errorf("blobs: pin %s of %s: %w", e.Name, c.Root, err)
		}
		if err := s.pinTreeSeen(ctx, g, e.Cap, seen, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// sweepDirPins takes back every folder entry pin whose folder's root is
// pinned no more, level by level down the tree.
func (s *Service) sweepDirPins(ctx context.Context) error {
	for range 2 + 64 { // a folder tree is at most 64 deep (blob's bound)
		pinned, err := s.pinnedRoots(ctx)
		if err != nil {
			return err
		}
		swept := false
		for root, reasons := range pinned {
			for _, r := range reasons {
				parent, ok := dirParent(r)
				if !ok {
					continue
				}
				if _, held := pinned[parent]; held {
					continue
				}
				if err := s.pins.Unpin(ctx, root, r); err != nil {
					return fmt.Errorf("blobs: unpin %s: %w", root, err)
				}
				s.unpinned()
				swept = true
			}
		}
		if !swept {
			return nil
		}
	}
	return nil
}

// dirParent returns the folder root a "dir:" reason names.
func dirParent(reason string) (cid.Cid, bool) {
	rest, ok := strings.CutPrefix(reason, dirReasonPrefix)
	if !ok {
		return cid.Undef, false
	}
	c, err := cid.Decode(rest)
	return c, err == nil
}

// entriesOf maps each pinned folder root to the roots pinned as its
// entries.
func entriesOf(pinned map[cid.Cid][]string) map[cid.Cid][]cid.Cid {
	out := make(map[cid.Cid][]cid.Cid)
	for root, reasons := range pinned {
		for _, r := range reasons {
			if parent, ok := dirParent(r); ok {
				out[parent] = append(out[parent], root)
			}
		}
	}
	return out
}
