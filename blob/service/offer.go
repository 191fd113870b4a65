package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/store"
)

// A contact's file is fetched or offered (Received) by the size its
// message announced: the contact may lie. The follower's fetch of a
// contact's file therefore checks the blob's true size as soon as its
// root is held (the root is verified against its CID, and gives the
// plaintext size: rootSize), before it fetches any block under it:
// a file whose true size differs from the announced one, or does not fit
// in what is left of the contact's budget (Config.ShareBudget, counted in
// true sizes where roots are held), is recorded Offered with its true
// size, and the fetch stops unless another file keeps the blob. A file
// pinned by hand (PinFile) is fetched whatever its size.

// errOffered stops a follower's fetch of a contact's file found, once
// its root is held, larger than announced or past the contact's budget.
var errOffered = errors.New("blobs: a contact's file is past its budget or announced another size: offered, not fetched")

// checkOffered checks the contact's files of c's root against their
// true size, root being c's root block just fetched (see above). It
// returns errOffered if no file keeps the blob any more.
func (s *Service) checkOffered(ctx context.Context, c blob.Capability, root blockformat.Block) error {
	if c.Dir || bare(c) {
		return nil // a folder's size is its listing's (not checked here)
	}
	fs, err := s.listFiles(ctx)
	if err != nil {
		return err
	}
	over, err := s.overrides(ctx)
	if err != nil {
		return err
	}
	var mine []File
	kept, offered := false, false
	for _, f := range fs {
		if !f.Cap.Root.Equals(c.Root) || over[f.ID] == Unpinned {
			continue
		}
		switch {
		case f.From == "" || over[f.ID] == Pinned:
			kept = true // the cell's own, or pinned by hand
		case f.Offered:
			offered = true // a fetch tried again before the follower's pass
		default:
			mine = append(mine, f)
		}
	}
	if len(mine) == 0 {
		if offered && !kept {
			return errOffered
		}
		return nil
	}
	size, err := sizeOf(ctx, s, c, root)
	if err != nil {
		return fmt.Errorf("blobs: size of %s: %w", c.Root, err)
	}
	for _, f := range mine {
		used := s.contactUsed(ctx, fs, f.From, f.ID)
		if size == f.Size && used+size <= s.cfg.ShareBudget {
			kept = true
			continue
		}
		s.log.Info("blobs: a contact's file is offered, not fetched", "name", f.Name, "from", f.From[:16], "announced", f.Size, "size", size, "used", used, "budget", s.cfg.ShareBudget)
		f.Size, f.Offered = size, true
		if err := s.putFile(ctx, f); err != nil {
			return err
		}
	}
	s.kickFollower() // it takes back the pins of the files now offered
	if kept {
		return nil
	}
	return errOffered
}

// contactUsed returns the bytes of the files of the contact from (hex)
// among fs that count against its budget (not Offered), but for the
// file except: each by its true size if its root is held, else by its
// announced one.
func (s *Service) contactUsed(ctx context.Context, fs []File, from string, except store.EntityID) int64 {
	var used int64
	for _, f := range fs {
		if f.From != from || f.Offered || f.ID == except {
			continue
		}
		used += s.trueSize(ctx, f)
	}
	return used
}

// trueSize is f's size given by its held root (the follower's last pass,
// else read now), else its entity's. A folder's is its entity's.
func (s *Service) trueSize(ctx context.Context, f File) int64 {
	if f.Cap.Dir {
		return f.Size
	}
	s.sizes.mu.Lock()
	size, ok := s.sizes.sizes[f.Cap.Root]
	s.sizes.mu.Unlock()
	if ok {
		return size
	}
	if size, ok, err := s.rootSize(ctx, f.Cap); err == nil && ok {
		return size
	}
	return f.Size
}

// putFile writes f's exo.file entity again.
func (s *Service) putFile(ctx context.Context, f File) error {
	doc, err := json.Marshal(fileDoc{Name: f.Name, Size: f.Size, Media: f.MediaType, Cap: f.Cap.String(), By: f.AddedBy, Added: f.Added, From: f.From, Offered: f.Offered})
	if err != nil {
		return err
	}
	if _, err := s.ents.Put(ctx, f.ID, []store.Trait{{Type: FileType, Doc: doc}}); err != nil {
		return fmt.Errorf("blobs: record file %s: %w", f.Name, err)
	}
	return nil
}

// sizeOf returns the plaintext size of the blob c from its root block,
// held in memory (the store may not have it yet).
func sizeOf(ctx context.Context, s *Service, c blob.Capability, root blockformat.Block) (int64, error) {
	r, err := blob.Open(ctx, rootGetter{root: root, rest: storeGetter{s.bs}}, c, blob.ReaderOptions{Prefetch: -1})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return r.Size(), nil
}

// rootGetter gives one block from memory, the others from rest.
type rootGetter struct {
	root blockformat.Block
	rest storeGetter
}

func (g rootGetter) GetBlocks(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	out := make([]blockformat.Block, len(cs))
	for i, c := range cs {
		if c.Equals(g.root.Cid()) {
			out[i] = g.root
			continue
		}
		b, err := g.rest.GetBlocks(ctx, []cid.Cid{c})
		if err != nil {
			return nil, err
		}
		out[i] = b[0]
	}
	return out, nil
}
