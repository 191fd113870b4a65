package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blocks"
)

// Progress is how far a fetch is.
type Progress struct {
	// Bytes and Blocks are the blocks of the DAG the node has so far (held
	// before or fetched now).
	Bytes, Blocks int64
	// TotalBytes is the whole DAG's, known from its root (0 before);
	// TotalBlocks is known once every internal node is (0 before). For
	// an encrypted folder, whose listing names its entries' DAGs, both are
	// 0 again while entries are still to be walked.
	TotalBytes, TotalBlocks int64
	// Peers are the blocks fetched from each peer, by peer ID.
	Peers map[string]PeerProgress
}

// PeerProgress is what one peer sent.
type PeerProgress struct{ Blocks, Bytes int64 }

// tally follows a fetch's walks: one DAG, or a folder's and each of its
// entries'.
type tally struct {
	mu       sync.Mutex
	p        Progress
	atRoot   bool  // the next block visited is a walk's root
	walks    int64 // walks known of and not yet begun (a folder's entries)
	internal int64 // dag-pb nodes seen (as links or as roots)
	visited  int64 // dag-pb nodes visited
	leaves   int64 // raw blocks seen (as links or as roots)
	total    int64 // the bytes of the DAGs whose roots were visited
}

// startWalk says that the next block visited is a DAG's root.
func (t *tally) startWalk() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.atRoot = true
	if t.walks > 0 {
		t.walks--
	}
}

// expect says that n more DAGs (a folder's entries) are to be walked.
func (t *tally) expect(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.walks += int64(n)
	t.p.TotalBlocks, t.p.TotalBytes = 0, 0
}

func (t *tally) visit(b blockformat.Block) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.p.Blocks++
	t.p.Bytes += int64(len(b.RawData()))
	root := t.atRoot
	t.atRoot = false
	if b.Cid().Type() != cid.DagProtobuf {
		if root { // a DAG of one leaf
			t.leaves++
			t.total += int64(len(b.RawData()))
		}
	} else {
		n, err := merkledag.DecodeProtobuf(b.RawData())
		if err != nil {
			return fmt.Errorf("blobs: %s: %w: %w", b.Cid(), blob.ErrMalformed, err)
		}
		if root {
			t.internal++
			t.total += int64(len(b.RawData()))
			for _, l := range n.Links() {
				t.total += int64(l.Size)
			}
		}
		t.visited++
		for _, l := range n.Links() {
			if l.Cid.Type() == cid.DagProtobuf {
				t.internal++
			} else {
				t.leaves++
			}
		}
	}
	if t.walks == 0 {
		t.p.TotalBytes = t.total
		if t.visited == t.internal {
			t.p.TotalBlocks = t.internal + t.leaves
		}
	}
	return nil
}

func (t *tally) fetched(p peer.ID, size int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.p.Peers == nil {
		t.p.Peers = make(map[string]PeerProgress)
	}
	pp := t.p.Peers[p.String()]
	pp.Blocks++
	pp.Bytes += int64(size)
	t.p.Peers[p.String()] = pp
}

func (t *tally) snapshot() Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.p
	p.Peers = make(map[string]PeerProgress, len(t.p.Peers))
	for k, v := range t.p.Peers {
		p.Peers[k] = v
	}
	return p
}

// Fetch brings the whole DAG of c into the store, from every peer that
// holds some of it (one bitswap session), with the blocks it holds
// already read locally: an interrupted fetch resumes where it stopped.
// The root is pinned "fetch" while the fetch is under way, so that a
// collection keeps a partial DAG (and the next start resumes it); the pin
// goes when the fetch succeeds: pin the root to keep it. progress, if
// set, is called after each block, from one goroutine at a time. It
// blocks until the DAG is held, or ctx ends.
func (s *Service) Fetch(ctx context.Context, c blob.Capability, progress func(Progress)) error {
	return s.fetchBlob(ctx, c, progress, false)
}

// fetchBlob is Fetch; follower: the follower's background fetch, which
// checks a contact's file's true size before it fetches past its root
// (offer.go).
func (s *Service) fetchBlob(ctx context.Context, c blob.Capability, progress func(Progress), follower bool) error {
	ctx, cancel, err := s.bound(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if err := s.pins.Pin(ctx, c.Root, ReasonFetch); err != nil {
		return fmt.Errorf("blobs: pin %s: %w", c.Root, err)
	}
	if !bare(c) {
		// For the next start to resume it whole (a folder's entries,
		// a public blob's serving).
		if err := s.d.Put(ctx, fetchingPrefix.ChildString(c.Root.String()), []byte(c.String())); err != nil {
			return fmt.Errorf("blobs: record the fetch of %s: %w", c.Root, err)
		}
	}
	defer s.checkDisk() // once the fetch pin is gone, when it goes
	var t tally
	var pmu sync.Mutex
	report := func() {
		if progress != nil {
			pmu.Lock()
			defer pmu.Unlock()
			progress(t.snapshot())
		}
	}
	// A file a contact shared: its devices may be asked too.
	sharers := s.sharers(ctx, c.Root)
	sess := s.xchg.NewSession(ctx, blocks.SessionOptions{Public: c.Public, Peers: sharers, OnBlock: s.onBlock(c, func(p peer.ID, _ cid.Cid, size int) { t.fetched(p, size) })})
	defer sess.Close()
	// Hold each block before it is asked for: a collection running
	// meanwhile marked the DAG as it was then, and swept what came after
	// (a node, and below it all it links, while the fetch called it whole).
	held := s.pins.Holding(nil)
	defer held.Release()
	var check func(blockformat.Block) error
	if follower {
		check = func(root blockformat.Block) error { return s.checkOffered(ctx, c, root) }
	}
	err = s.fetchTree(ctx, held.Getter(sess), c, &t, report, check, map[cid.Cid]bool{}, 0)
	if err != nil {
		return fmt.Errorf("blobs: fetch %s: %w", c.Root, err)
	}
	if c.Public {
		if err := s.markPublic(ctx, c.Root); err != nil {
			return err
		}
	}
	if !bare(c) {
		// A bare CID's walk does not know whether it is a folder's
		// listing, whose entries it has not fetched.
		s.markWhole(ctx, c.Root)
	}
	if s.sharedRoot(c.Root) {
		// The shared set names the blocks held when it was built: the
		// ones just fetched are served too.
		if err := s.loadAccess(ctx); err != nil {
			s.log.Info("blobs: shared blocks not reloaded after a fetch", "root", c.Root, "err", err)
		}
	}
	if err := s.pins.Unpin(ctx, c.Root, ReasonFetch); err != nil {
		return fmt.Errorf("blobs: unpin %s: %w", c.Root, err)
	}
	s.unpinned()
	if err := s.d.Delete(ctx, fetchingPrefix.ChildString(c.Root.String())); err != nil {
		return fmt.Errorf("blobs: record the fetch of %s: %w", c.Root, err)
	}
	return nil
}

// fetchingPrefix keys the capabilities of the fetches under way (roots
// pinned "fetch"): /fetching/<root>.
var fetchingPrefix = ds.NewKey("/fetching")

// fetchTree walks the DAG of c into the store and, for an encrypted
// folder, each entry's, pinned "dir:<folder root>" before it is fetched
// (so that a collection keeps what comes of it while the folder is
// pinned). Each DAG is walked once (seen): a folder may list the same
// subfolder many times, at every level.
// check, if set, is called with c's root block before any block under
// it is fetched; its error stops the walk.
func (s *Service) fetchTree(ctx context.Context, sess blob.BlockGetter, c blob.Capability, t *tally, report func(), check func(blockformat.Block) error, seen map[cid.Cid]bool, depth int) error {
	if depth > maxFolderDepth {
		return fmt.Errorf("folders nested deeper than %d: %w", maxFolderDepth, blob.ErrMalformed)
	}
	seen[c.Root] = true
	t.startWalk()
	err := blob.Walk(ctx, sess, c.Root, func(b blockformat.Block) error {
		if err := t.visit(b); err != nil {
			return err
		}
		if depth == 0 && check != nil && b.Cid().Equals(c.Root) {
			if err := check(b); err != nil {
				return err
			}
		}
		if depth == 0 && s.cfg.Policy == PolicyBudget && b.Cid().Equals(c.Root) {
			// Its true size is known now: the follower counts it
			// (sizes.go), and stops this fetch if it does not fit.
			s.kickFollower()
		}
		report()
		return nil
	})
	if err != nil || !sealedDir(c) {
		return err
	}
	entries, err := blob.ReadDir(ctx, sess, c)
	if err != nil {
		return err
	}
	var todo []blob.Entry
	pinned := make(map[cid.Cid]bool, len(entries))
	for _, e := range entries {
		if !pinned[e.Cap.Root] {
			if err := s.pins.Pin(ctx, e.Cap.Root, dirReason(c.Root)); err != nil {
				return fmt.Errorf("blobs: pin %s of %s: %w", e.Name, c.Root, err)
			}
			pinned[e.Cap.Root] = true
		}
		if !seen[e.Cap.Root] {
			seen[e.Cap.Root] = true
			todo = append(todo, e)
		}
	}
	t.expect(len(todo))
	for _, e := range todo {
		if err := s.fetchTree(ctx, sess, e.Cap, t, report, nil, seen, depth+1); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
	}
	return nil
}

// fetching is the background fetches of pinned roots: a queue with
// backoff, run by fetchLoop with at most Config.Fetchers at once.
type fetching struct {
	mu      sync.Mutex
	pending map[cid.Cid]*job
	done    map[cid.Cid]bool // held whole, as far as this process knows
	wake    chan struct{}    // cap 1
}

type job struct {
	c       blob.Capability
	next    time.Time // not before
	fails   int
	running context.CancelFunc // nil when not running
	stopped bool               // by stopFetch: its "fetch" pin goes when it ends
}

func (f *fetching) init() {
	f.pending = make(map[cid.Cid]*job)
	f.done = make(map[cid.Cid]bool)
	f.wake = make(chan struct{}, 1)
}

func (f *fetching) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
}

func (f *fetching) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// want asks for c to be fetched in the background, unless it is held
// whole or already asked for; false when the queue is full.
func (s *Service) want(c blob.Capability) bool {
	f := &s.fetch
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done[c.Root] {
		return true
	}
	if j := f.pending[c.Root]; j != nil {
		if bare(j.c) && !bare(c) {
			// A resumed fetch, now with its capability: a folder's
			// entries are fetched too.
			j.c = c
			if j.running != nil {
				j.running() // started again by fetchLoop
			}
		}
		return true
	}
	if len(f.pending) >= s.cfg.MaxPending {
		return false
	}
	f.pending[c.Root] = &job{c: c}
	f.poke()
	return true
}

// bare reports whether c is only a root CID (a fetch resumed at start):
// no key, not known to be public or a folder.
func bare(c blob.Capability) bool {
	return !c.Public && !c.Dir && c.Key == (blob.Key{})
}

// unwant drops root from the background fetches, stopping one under way,
// and forgets that it was held (a collection may take it now).
func (s *Service) unwant(root cid.Cid) {
	f := &s.fetch
	f.mu.Lock()
	defer f.mu.Unlock()
	if j := f.pending[root]; j != nil && j.running != nil {
		// It began after the pass read the pins: its "fetch" pin goes
		// when it ends, as a stopped one's does.
		j.stopped = true
		j.running()
	}
	delete(f.pending, root)
	delete(f.done, root)
}

// fetchLoop starts the due fetches, Config.Fetchers at most at once, and
// waits for them when ctx ends.
func (s *Service) fetchLoop(ctx context.Context) {
	defer s.wg.Done()
	f := &s.fetch
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	running := 0
	finished := make(chan struct{}, s.cfg.Fetchers)
	for {
		now := s.cfg.Now()
		var wait time.Duration = time.Hour
		f.mu.Lock()
		for _, j := range f.pending {
			if j.running != nil {
				continue
			}
			if d := j.next.Sub(now); d > 0 {
				wait = min(wait, d)
				continue
			}
			if running >= s.cfg.Fetchers {
				break
			}
			jctx, cancel := context.WithCancel(ctx)
			j.running = cancel
			running++
			wg.Add(1)
			go func(j *job, c blob.Capability) {
				defer wg.Done()
				err := s.fetchBlob(jctx, c, nil, true)
				cancel()
				if s.fetched(j, c, err) {
					s.dropFetch(context.WithoutCancel(ctx), c.Root)
				}
				finished <- struct{}{}
			}(j, j.c)
		}
		f.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-finished:
			running--
		case <-timer.C:
		}
	}
}

// fetched records the end of a background fetch of j, run with c. True:
// the fetch was stopped (stopFetch), its pin is to go.
func (s *Service) fetched(j *job, c blob.Capability, err error) (stopped bool) {
	f := &s.fetch
	f.mu.Lock()
	defer f.mu.Unlock()
	j.running = nil
	if f.pending[j.c.Root] != j {
		// Unwanted meanwhile; its pin goes only if no later job of the
		// root (wanted again since) holds it now.
		return j.stopped && f.pending[j.c.Root] == nil
	}
	if err == nil && bare(c) && !bare(j.c) {
		return false // fetched bare, its capability known meanwhile: again
	}
	if err == nil {
		delete(f.pending, j.c.Root)
		if !bare(c) {
			f.done[j.c.Root] = true
		}
		s.log.Debug("blob fetched", "root", j.c.Root)
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	j.fails++
	back := s.cfg.Backoff << min(j.fails-1, 20)
	if back > s.cfg.MaxBackoff || back <= 0 {
		back = s.cfg.MaxBackoff
	}
	j.next = s.cfg.Now().Add(back)
	s.log.Info("blob fetch failed; trying again later", "root", j.c.Root, "fails", j.fails, "in", back, "err", err)
	return false
}

// stopFetch stops the follower's fetch of root, if it runs one, and takes
// back its "fetch" pin once it has ended (at once if it had not started):
// the fetch pinned root before it began, and may not pin it again after.
// A fetch that the follower does not run (a user's Fetch) is left alone.
func (s *Service) stopFetch(ctx context.Context, root cid.Cid) {
	f := &s.fetch
	f.mu.Lock()
	j := f.pending[root]
	if j == nil {
		f.mu.Unlock()
		return
	}
	j.stopped = true
	running := j.running != nil
	if running {
		j.running()
	}
	delete(f.pending, root)
	delete(f.done, root)
	f.mu.Unlock()
	if !running {
		s.dropFetch(ctx, root)
	}
}

// dropFetch takes back the "fetch" pin of root and the record of its
// fetch, so that no later start resumes it.
func (s *Service) dropFetch(ctx context.Context, root cid.Cid) {
	if err := s.pins.Unpin(ctx, root, ReasonFetch); err != nil {
		s.log.Warn("blob: unpin a stopped fetch", "root", root, "err", err)
		return
	}
	s.unpinned()
	if err := s.d.Delete(ctx, fetchingPrefix.ChildString(root.String())); err != nil {
		s.log.Warn("blob: drop the record of a stopped fetch", "root", root, "err", err)
	}
}
