package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/store"
)

// kickFollower asks the follower for a pass.
func (s *Service) kickFollower() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// follow keeps the device's pins in line with the cell's files and its
// policy: a pass at start, after each change the store's watch of the
// files reports, on a kick, and every Config.Check (which also sees
// changes past the watched page, and the disk budget). It also resumes
// the fetches that an earlier run left under way.
func (s *Service) follow(ctx context.Context) {
	defer s.wg.Done()
	s.resume(ctx)
	// After an unclean stop the blob store scrubs what the crash may have
	// damaged; once it is done, the next pass checks that every file held
	// whole still is (and acknowledges it: until then the store keeps the
	// request across stops). While the scrub fails and is tried again,
	// each Check tick checks too, so that what it deleted is fetched.
	_, scrubbed := s.bs.Scrub()
	tick := time.NewTicker(s.cfg.Check)
	defer tick.Stop()
	var events <-chan store.WatchEvent
	var stopWatch context.CancelFunc = func() {}
	defer func() { stopWatch() }()
	wait := watchRetry
	for {
		failed := false
		if events == nil {
			if _, err := s.member(); err == nil {
				wctx, cancel := context.WithCancel(ctx)
				ch, err := s.ents.Watch(wctx, store.Query{Type: FileType, Limit: store.MaxLimit, Traits: []string{}})
				if err != nil {
					cancel()
					failed = true
					s.log.Debug("blob follower: no watch of the files yet", "err", err, "again in", wait)
				} else {
					events, stopWatch, wait = ch, cancel, watchRetry
				}
			}
		}
		if err := s.reconcile(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrNotMember) {
			s.log.Info("blob follower: pass failed", "err", err)
		}
		if err := s.sweepDirPins(ctx); err != nil && ctx.Err() == nil {
			s.log.Info("blob follower: folder pins not swept", "err", err)
		}
		// Without a watch (in no cell yet, or no store member reachable),
		// look again soon.
		var retry <-chan time.Time
		if events == nil {
			retry = time.After(wait)
			if failed {
				wait = min(2*wait, s.cfg.Check)
			}
		}
		select {
		case <-retry:
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				stopWatch()
				events = nil
			}
		case <-s.kick:
		case <-tick.C:
			s.overDisk(ctx)
			if st, _ := s.bs.Scrub(); st.Recheck != 0 && !st.Done && st.Err != "" {
				s.recheck.Store(true)
			}
		case <-s.gcKick:
			s.overDisk(ctx)
		case <-scrubbed:
			scrubbed = nil
			st, _ := s.bs.Scrub()
			if st.Recheck != 0 {
				s.recheck.Store(true)
			}
			if st.Deleted > 0 {
				// The scrub deleted blocks behind the store's count.
				if _, err := s.bs.Recount(ctx); err != nil && ctx.Err() == nil {
					s.log.Info("blob follower: blob usage not recounted", "err", err)
				}
			}
		}
	}
}

// watchRetry is how soon the follower tries again to watch the files
// when it could not (in no cell yet, no store member reachable), doubled
// at each failure up to Config.Check.
const watchRetry = 2 * time.Second

// resume asks for the fetches an earlier run left under way (roots still
// pinned "fetch").
func (s *Service) resume(ctx context.Context) {
	ps, err := s.pins.List(ctx)
	if err != nil {
		s.log.Warn("blob follower: pins", "err", err)
		return
	}
	for _, p := range ps {
		for _, r := range p.Reasons {
			if r == ReasonFetch {
				s.wantRoot(ctx, p.Root)
			}
		}
	}
}

// reconcile makes one pass: the files the device keeps (Choose) are
// pinned "file:<id>" and fetched in the background; the file pins of
// files no longer kept (removed, unpinned, out of the budget) are taken
// back.
func (s *Service) reconcile(ctx context.Context) (err error) {
	fs, err := s.listFiles(ctx)
	if err != nil {
		return err
	}
	over, err := s.overrides(ctx)
	if err != nil {
		return err
	}
	if s.cfg.Policy == PolicyBudget {
		s.correctSizes(ctx, fs)
	}
	keep := Choose(fs, s.cfg.Policy, s.cfg.PinBudget, over)
	pinned, err := s.pinnedRoots(ctx)
	if err != nil {
		return err
	}
	want := make(map[string]bool) // "root reason"
	scrub, _ := s.bs.Scrub()      // before the check: what it acknowledges
	recheck := s.recheck.Swap(false)
	entries := entriesOf(pinned)
	defer func() {
		switch {
		case !recheck:
		case err != nil:
			s.recheck.Store(true) // not done: the next pass
		case scrub.Recheck != 0 && scrub.Done && ctx.Err() == nil:
			if err := s.bs.AckRecheck(scrub.Recheck); err != nil {
				s.log.Warn("blob follower: the recheck after a scrub not recorded; it runs again at the next start", "err", err)
			}
		}
	}()
	for _, f := range fs {
		if !keep[f.ID] {
			continue
		}
		reason := fileReason(f.ID)
		want[f.Cap.Root.KeyString()+" "+reason] = true
		if !hasReason(pinned[f.Cap.Root], reason) {
			if len(pinned[f.Cap.Root]) == 0 {
				// Unpinned until now: a collection cut short may
				// have taken some of its blocks, not its root.
				s.forgetWhole(ctx, f.Cap.Root)
			}
			if err := s.pins.Pin(ctx, f.Cap.Root, reason); err != nil {
				return fmt.Errorf("blobs: pin %s: %w", f.Name, err)
			}
		}
		if s.whole(ctx, f.Cap.Root) {
			if !recheck || s.heldWhole(ctx, f.Cap.Root, entries) {
				continue
			}
			// A block of it was lost in an unclean stop (deleted by
			// the scrub, or never on disk): fetch it again.
			s.log.Warn("blob follower: a file held whole lost blocks in an unclean stop; fetching them again", "file", f.Name, "root", f.Cap.Root)
			s.incomplete.Add(1)
			s.forgetWhole(ctx, f.Cap.Root)
		}
		if !s.want(f.Cap) {
			s.log.Warn("blob follower: too many fetches waiting; the rest next pass", "max", s.cfg.MaxPending)
		}
	}
	for root, reasons := range pinned {
		still, dropped, fetching := false, false, false
		for _, r := range reasons {
			if !strings.HasPrefix(r, "file:") {
				if r == ReasonFetch {
					fetching = true
				} else {
					still = true
				}
				continue
			}
			if want[root.KeyString()+" "+r] {
				still = true
				continue
			}
			if err := s.pins.Unpin(ctx, root, r); err != nil {
				return fmt.Errorf("blobs: unpin %s: %w", root, err)
			}
			dropped = true
			s.unpinned()
		}
		switch {
		case still:
		case dropped && fetching:
			// Its last file is no longer kept (removed, unpinned, or
			// larger than its entity said): the follower's fetch of it
			// stops, and its "fetch" pin goes.
			s.stopFetch(ctx, root)
		case !fetching:
			s.unwant(root)
		}
	}
	return nil
}

func hasReason(rs []string, r string) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// wantRoot asks for a background fetch of root, with the capability its
// fetch recorded, else with none (a fetch of a bare CID: a folder's
// entries are not fetched, and a public blob is not served until its
// capability is known).
func (s *Service) wantRoot(ctx context.Context, root cid.Cid) {
	c := blob.Capability{Root: root}
	if v, err := s.d.Get(ctx, fetchingPrefix.ChildString(root.String())); err == nil {
		if rc, err := blob.ParseCapability(string(v)); err == nil && rc.Root.Equals(root) {
			c = rc
		}
	}
	s.want(c)
}

// overrides returns the device's own choices, by file.
func (s *Service) overrides(ctx context.Context) (map[store.EntityID]Override, error) {
	res, err := s.d.Query(ctx, query.Query{Prefix: overridePrefix.String()})
	if err != nil {
		return nil, fmt.Errorf("blobs: overrides: %w", err)
	}
	defer res.Close()
	out := make(map[store.EntityID]Override)
	for r := range res.Next() {
		if r.Error != nil {
			return nil, fmt.Errorf("blobs: overrides: %w", r.Error)
		}
		id, err := store.ParseEntityID(ds.NewKey(r.Key).BaseNamespace())
		if err != nil || len(r.Value) != 1 {
			continue
		}
		if o := Override(r.Value[0]); o == Pinned || o == Unpinned {
			out[id] = o
		}
	}
	return out, nil
}

// completePrefix keys the roots the node fetched or imported whole:
// /complete/<root>. It spares a restart walking every kept file again.
var completePrefix = ds.NewKey("/complete")

// markWhole records that the DAG (a folder: its tree) under root is held
// whole.
func (s *Service) markWhole(ctx context.Context, root cid.Cid) {
	if err := s.d.Put(ctx, completePrefix.ChildString(root.String()), nil); err != nil {
		s.log.Warn("blob: record a whole DAG", "root", root, "err", err)
	}
	s.fetch.mu.Lock()
	s.fetch.done[root] = true
	s.fetch.mu.Unlock()
}

// forgetWhole drops the record that the DAG under root is held whole, so
// that the follower's next pass fetches it again if a file needs it.
func (s *Service) forgetWhole(ctx context.Context, root cid.Cid) {
	if err := s.d.Delete(ctx, completePrefix.ChildString(root.String())); err != nil {
		s.log.Warn("blob: drop the record of a whole DAG", "root", root, "err", err)
	}
	s.fetch.mu.Lock()
	delete(s.fetch.done, root)
	s.fetch.mu.Unlock()
}

// whole reports whether the DAG under root is held whole: recorded so,
// and its root still held. A collection deletes a DAG's root with the
// rest of it, never the rest alone (it keeps what a pinned root reaches;
// but for a corrupt node, which it deletes with all below it, and then
// says so: forgetWhole), so a record whose root is gone is stale: it is
// dropped. A collection cut short may leave the root and not all the
// rest: a root pinned again after none held it has its record dropped
// (reconcile).
func (s *Service) whole(ctx context.Context, root cid.Cid) bool {
	k := completePrefix.ChildString(root.String())
	if ok, err := s.d.Has(ctx, k); err != nil || !ok {
		return false
	}
	if has, err := s.bs.Has(ctx, root); err == nil && has {
		return true
	}
	_ = s.d.Delete(ctx, k)
	return false
}

// heldWhole reports whether every block of the DAG under root (and of a
// folder's entries pinned as such) is stored, reading only the stored
// dag-pb nodes and asking the store for the leaves (no leaf is read). A
// node that is corrupt or does not decode is not whole.
func (s *Service) heldWhole(ctx context.Context, root cid.Cid, entries map[cid.Cid][]cid.Cid) bool {
	cs, err := s.treeBlocks(ctx, root, entries)
	if err != nil {
		return false
	}
	for _, c := range cs {
		if has, err := s.bs.Has(ctx, c); err != nil || !has {
			return false
		}
	}
	return true
}
