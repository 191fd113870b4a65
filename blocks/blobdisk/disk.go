// Package blobdisk keeps the blocks of blobs on disk: a flatfs (Kubo's
// layout) written without an fsync per block, a background syncer that
// syncs the file system and records how far every block is on disk, and
// a scrub that, after a run that did not close cleanly, finds and deletes
// what the crash damaged. See Disk. It imports no libp2p, so the data dir
// (package datadir) opens it.
package blobdisk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"
	flatfs "github.com/ipfs/go-ds-flatfs"

	"github.com/exopeer/exopeer/internal/ambient"
)

// StateFile is the file in a Disk's directory that records how
// far its blocks are known to be on disk: JSON {"checkpoint": time
// (RFC 3339), "clean": bool}. checkpoint: every block file written before
// it was on disk (syncfs returned) when the file was written; clean: the
// last run closed the disk (a final sync) and wrote nothing after;
// recheck: a run did not close cleanly and whoever keeps DAGs whole has
// not yet checked them again since its scrub (see ScrubStats.Recheck). It is
// written to a temporary file, synced, and renamed over (then the
// directory synced): a crash leaves the old one or the new one.
const StateFile = "exopeer-sync.json"

// Config tunes a Disk. Zero values mean the defaults.
type Config struct {
	// Quiet is how long after the last write the syncer syncs. Default 2 s.
	Quiet time.Duration
	// MaxDirty is the longest the syncer lets writes wait for a sync
	// while writes go on. Default 10 s.
	MaxDirty time.Duration
	// Margin is taken off the checkpoint when the scrub picks the block
	// files to read (by mtime), for a clock stepped back and coarse
	// mtimes. Default 1 min.
	Margin time.Duration
	// ScrubRate bounds the bytes per second the scrub reads. Default
	// 128 MiB/s.
	ScrubRate int64
	// Logger gets the syncer's errors and the scrub's findings; nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock of the checkpoints, compared with the files'
	// mtimes: it must be the file system's. nil: the real clock
	// (internal/ambient).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Quiet <= 0 {
		c.Quiet = 2 * time.Second
	}
	if c.MaxDirty <= 0 {
		c.MaxDirty = 10 * time.Second
	}
	if c.Margin <= 0 {
		c.Margin = time.Minute
	}
	if c.ScrubRate <= 0 {
		c.ScrubRate = 128 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Now = ambient.NowOr(c.Now)
	return c
}

// ScrubStats is what the scrub of a Disk did after a run that did not
// close cleanly (all zero after a clean one).
type ScrubStats struct {
	Unclean bool      // the last run did not close cleanly: a scrub runs
	Since   time.Time // block files modified after this were read
	Done    bool      // the scrub has ended (or was not needed)
	Checked int64     // block files read and verified
	Deleted int64     // of those, files that did not match their key: deleted
	Err     string    // what stopped the scrub's last round, if anything did (it is tried again)
	// Recheck, when not zero, says that a run did not close cleanly and
	// the DAGs kept whole have not been checked again since: whoever
	// keeps them checks them once Done and then calls AckRecheck with
	// this value. It is kept in StateFile, so a stop before the check
	// does not lose it.
	Recheck uint64
	// SyncErr: a sync of the file system failed in this run (a writeback
	// error: some block written before it may not be on disk). No later
	// checkpoint nor clean stop is recorded in this run, so the next
	// start scrubs from the last good checkpoint; Close returns it.
	SyncErr string
}

// Disk is the flatfs of blob blocks (<datadir>/blobs), written
// without an fsync per block, as Kubo's default flatfs is: a block is in
// the page cache when its write returns. Unlike Kubo, it knows what a
// crash may have damaged. A syncer, once writes pause (Quiet) or have
// waited MaxDirty, calls syncfs(2) on the file system and then records a
// checkpoint (StateFile): every block file written before it is on
// disk. Close syncs and records the stop as clean. A sync that fails
// (a writeback error) stops both for the rest of the run: the next start
// scrubs from the last good checkpoint. When it opens after a
// run that did not close cleanly, a scrub in the background reads every
// block file modified after the checkpoint (less Margin), checks it
// against its key (the multihash) and deletes those that do not match;
// files lost whole are missing blocks, found by whoever needs them (the
// blob service checks its files' DAGs after such a start: blocks.Store's
// Scrub).
//
// It is a ds.Batching (its flatfs, with the writes noted), safe for
// concurrent use. Open opens it; Start starts the syncer and the
// scrub; Close stops them and waits.
type Disk struct {
	*flatfs.Datastore
	path string
	cfg  Config
	sync bool     // per-file fsync instead (no syncfs on this system)
	dirF *os.File // the directory, open for the whole run: syncfs sees every writeback error since Open

	dirty  atomic.Bool
	wrote  chan struct{} // cap 1: a write was noted
	log    atomic.Pointer[slog.Logger]
	state  syncState // as read at open
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	started bool
	closed  bool
	scrub   ScrubStats
	scrubCh chan struct{} // closed when the scrub is done
	retry   time.Duration // the first wait before a failed scrub is tried again
	failed  error         // a sync failed: no checkpoint from now on

	// stMu serializes the writes of StateFile; cur is what it holds.
	stMu sync.Mutex
	cur  syncState
	// lowered counts the times beforeWrite lowered the checkpoint (a
	// clock stepped back): a sync that began before does not record its
	// own. Guarded by stMu.
	lowered uint64
	// floor is the highest checkpoint recorded or about to be (unix
	// nanoseconds): a write whose clock is before it lowers the
	// checkpoint first (beforeWrite).
	floor atomic.Int64

	// wmu is held shared by each write under way (Put, a batch's
	// Commit) and alone by Close from the moment it refuses writes
	// (closing), so that no write lands after the final sync and the
	// clean mark.
	wmu     sync.RWMutex
	closing bool // guarded by wmu
}

// ErrClosed is the error of a write to a Disk that is closing or closed.
var ErrClosed = errors.New("blobdisk: the blob store is closed")

// syncState is StateFile's content.
type syncState struct {
	Checkpoint time.Time `json:"checkpoint"`
	Clean      bool      `json:"clean"`
	Recheck    bool      `json:"recheck,omitempty"`
}

// Open opens (creating it if needed) the flatfs at path, sharded
// as Kubo's (flatfs.NextToLast(2)), and reads its sync state. A
// directory without a state file is taken as clean (made before the
// state file was, when every write was synced), with a checkpoint now.
// It starts nothing.
func Open(path string, cfg Config) (*Disk, error) {
	cfg = cfg.withDefaults()
	perFile := !haveSyncfs
	f, err := flatfs.CreateOrOpen(path, flatfs.NextToLast(2), perFile)
	if err != nil {
		return nil, fmt.Errorf("blobdisk: open the blob store %s: %w", path, err)
	}
	dirF, err := os.Open(path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobdisk: open the blob store %s: %w", path, err)
	}
	d := &Disk{Datastore: f, path: path, dirF: dirF, cfg: cfg, sync: perFile, wrote: make(chan struct{}, 1), scrubCh: make(chan struct{}), retry: 10 * time.Second}
	d.log.Store(cfg.Logger)
	b, err := os.ReadFile(filepath.Join(path, StateFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		// New, or made when every write was synced: on disk up to now.
		d.state = syncState{Clean: true, Checkpoint: cfg.Now()}
	case err != nil:
		f.Close()
		dirF.Close()
		return nil, fmt.Errorf("blobdisk: blob store sync state: %w", err)
	default:
		if err := json.Unmarshal(b, &d.state); err != nil {
			// A state file that does not parse says nothing: scrub all.
			d.state = syncState{}
		}
	}
	return d, nil
}

// SetLogger sets where the disk logs from now on (nil: nowhere). Safe
// for concurrent use.
func (d *Disk) SetLogger(l *slog.Logger) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	d.log.Store(l)
}

// Start records the run as under way (not clean), starts the syncer and,
// after a run that did not close cleanly, the scrub. It does not wait for
// the scrub. A checkpoint after the clock's now (the clock was ahead in a
// past run, then stepped back) is lowered to now first, and after an
// unclean stop the scrub then reads every block file: files written
// since have mtimes before that checkpoint.
func (d *Disk) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started || d.closed {
		return errors.New("blobdisk: Disk started twice or after Close")
	}
	unclean := !d.state.Clean
	cp := d.state.Checkpoint
	since := cp.Add(-d.cfg.Margin)
	if now := d.cfg.Now(); now.Before(cp) {
		d.log.Load().Warn("blob store: the sync checkpoint is after the clock's now (the clock was stepped back); lowering it", "checkpoint", cp, "now", now)
		cp, since = now, time.Time{}
	}
	// After an unclean stop the DAGs kept whole are checked again once
	// the scrub is done; that is recorded until acknowledged.
	recheck := d.state.Recheck || unclean
	if err := d.writeState(syncState{Checkpoint: cp, Recheck: recheck}); err != nil {
		return err
	}
	d.floor.Store(cp.UnixNano())
	if recheck {
		d.scrub.Recheck = 1
	}
	d.started = true
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	if unclean {
		d.scrub.Unclean, d.scrub.Since = true, since
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.runScrub(ctx, since)
		}()
	} else {
		d.scrub.Done = true
		close(d.scrubCh)
	}
	d.wg.Add(1)
	go d.syncLoop(ctx)
	return nil
}

// Scrub returns what the scrub did so far, and a channel closed once it
// is done (at once when none was needed). Safe for concurrent use.
func (d *Disk) Scrub() (ScrubStats, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.scrub, d.scrubCh
}

// AckRecheck records that the DAGs kept whole were checked again after
// the scrub that ScrubStats.Recheck gen asked for (once it was Done). A
// later request (a greater gen) stays. It writes StateFile.
func (d *Disk) AckRecheck(gen uint64) error {
	d.mu.Lock()
	if gen == 0 || d.scrub.Recheck != gen || !d.scrub.Done {
		d.mu.Unlock()
		return nil
	}
	d.scrub.Recheck = 0
	d.mu.Unlock()
	return d.updateState(func(st *syncState) { st.Recheck = false })
}

// beforeWrite is called by every write of block files before it writes:
// when the clock is before the checkpoint (recorded, or being recorded by
// a sync under way), the clock was stepped back, and the files it writes
// would have mtimes the next scrub skips; so it first lowers the
// checkpoint to now, durably. Otherwise (always, but after a step back)
// it costs a clock read and an atomic load.
func (d *Disk) beforeWrite() error {
	now := d.cfg.Now()
	if now.UnixNano() >= d.floor.Load() {
		return nil
	}
	d.stMu.Lock()
	defer d.stMu.Unlock()
	if now.UnixNano() >= d.floor.Load() {
		return nil
	}
	d.log.Load().Warn("blob store: the clock is before the sync checkpoint (stepped back); lowering it", "checkpoint", d.cur.Checkpoint, "now", now)
	d.lowered++
	st := d.cur
	if now.Before(st.Checkpoint) {
		st.Checkpoint = now
	}
	st.Clean = false
	if err := d.writeStateLocked(st); err != nil {
		return err
	}
	d.floor.Store(now.UnixNano())
	return nil
}

// noteWrite records that block files were written and not yet synced.
func (d *Disk) noteWrite() {
	d.dirty.Store(true)
	select {
	case d.wrote <- struct{}{}:
	default:
	}
}

// begin starts a write: refused once the Disk is closing, and after a
// clock stepped back behind the checkpoint, lowered first (beforeWrite).
// The caller calls d.wmu.RUnlock when the write is done.
func (d *Disk) begin() error {
	d.wmu.RLock()
	if d.closing {
		d.wmu.RUnlock()
		return ErrClosed
	}
	if err := d.beforeWrite(); err != nil {
		d.wmu.RUnlock()
		return fmt.Errorf("blobdisk: lower the sync checkpoint before a write: %w", err)
	}
	return nil
}

// Put stores value under key, unsynced (see Disk).
func (d *Disk) Put(ctx context.Context, key ds.Key, value []byte) error {
	if err := d.begin(); err != nil {
		return err
	}
	defer d.wmu.RUnlock()
	err := d.Datastore.Put(ctx, key, value)
	d.noteWrite()
	return err
}

// Batch returns a batch of flatfs whose commit is noted for the syncer.
func (d *Disk) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := d.Datastore.Batch(ctx)
	if err != nil {
		return nil, err
	}
	return noted{b, d}, nil
}

type noted struct {
	ds.Batch
	d *Disk
}

func (n noted) Commit(ctx context.Context) error {
	if err := n.d.begin(); err != nil {
		return err
	}
	defer n.d.wmu.RUnlock()
	err := n.Batch.Commit(ctx)
	n.d.noteWrite()
	return err
}

// syncLoop syncs once writes have paused for Quiet, or have waited
// MaxDirty, and records a checkpoint after each sync (once the scrub is
// done: until then the old checkpoint must stand, so that a crash
// meanwhile scrubs again what this one has not).
func (d *Disk) syncLoop(ctx context.Context) {
	defer d.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wrote:
		}
		first := d.cfg.Now()
		quiet := time.NewTimer(d.cfg.Quiet)
	wait:
		for {
			select {
			case <-ctx.Done():
				quiet.Stop()
				return
			case <-d.wrote:
				left := d.cfg.MaxDirty - d.cfg.Now().Sub(first)
				quiet.Reset(max(0, min(d.cfg.Quiet, left)))
			case <-quiet.C:
				break wait
			}
		}
		if err := d.syncNow(false); err != nil && !d.latched(err) {
			d.log.Load().Warn("blob store: no checkpoint recorded; trying again at the next write", "err", err)
		}
	}
}

// syncNow syncs the file system and records a checkpoint, clean if asked
// (at Close). The checkpoint is the time before the sync: every write
// noted before it has returned, so syncfs flushes its data. It records
// none while the scrub is not done when the sync begins (until then the
// old checkpoint must stand, so that a crash meanwhile scrubs again what
// this one has not, and the scrub's deletes are synced), after
// beforeWrite lowered the checkpoint meanwhile, nor ever again in this
// run once a sync failed: Linux reports a writeback error once, so a
// later sync that succeeds says nothing of the pages that error lost; the
// next start scrubs from the last good checkpoint.
func (d *Disk) syncNow(clean bool) error {
	if !d.dirty.Swap(false) && !clean {
		return nil
	}
	d.mu.Lock()
	done, failed := d.scrub.Done, d.failed
	d.mu.Unlock()
	d.stMu.Lock()
	t := d.cfg.Now()
	lowered := d.lowered
	if n := t.UnixNano(); n > d.floor.Load() {
		d.floor.Store(n)
	}
	d.stMu.Unlock()
	if err := syncfs(d.dirF); err != nil {
		err = fmt.Errorf("blobdisk: sync the blob store: %w", err)
		d.mu.Lock()
		if d.failed == nil {
			d.failed = err
			d.scrub.SyncErr = err.Error()
		}
		d.mu.Unlock()
		d.log.Load().Error("blob store: sync failed: blocks written before it may not be on disk; no checkpoint is recorded in this run, the next start scrubs them", "err", err)
		return err
	}
	if failed != nil {
		return failed
	}
	if !done {
		return nil
	}
	d.stMu.Lock()
	defer d.stMu.Unlock()
	if d.lowered != lowered {
		return nil
	}
	st := d.cur
	st.Checkpoint, st.Clean = t, clean
	return d.writeStateLocked(st)
}

// latched reports whether err is the failed sync that stops this run's
// checkpoints (logged once, when it happened).
func (d *Disk) latched(err error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failed != nil && err == d.failed
}

// updateState changes StateFile by f, durably.
func (d *Disk) updateState(f func(*syncState)) error {
	d.stMu.Lock()
	defer d.stMu.Unlock()
	st := d.cur
	f(&st)
	return d.writeStateLocked(st)
}

// writeState replaces StateFile with st, durably.
func (d *Disk) writeState(st syncState) error {
	d.stMu.Lock()
	defer d.stMu.Unlock()
	return d.writeStateLocked(st)
}

// writeStateLocked replaces StateFile with st, durably; stMu is held.
func (d *Disk) writeStateLocked(st syncState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	p := filepath.Join(d.path, StateFile)
	tmp, err := os.CreateTemp(d.path, "."+StateFile+".tmp*")
	if err != nil {
		return fmt.Errorf("blobdisk: write the blob store's sync state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err == nil {
		err = syncDir(d.path)
	}
	if err != nil {
		return fmt.Errorf("blobdisk: write the blob store's sync state: %w", err)
	}
	d.cur = st
	return nil
}

// Close stops the syncer and the scrub and waits for them, syncs, and
// records a clean stop (unless the scrub had not finished: the next open
// scrubs again; nor after a failed sync in this run, whose error it
// returns). Then it closes the flatfs. Idempotent.
func (d *Disk) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	started := d.started
	d.mu.Unlock()
	// No write from now on; those under way end first.
	d.wmu.Lock()
	d.closing = true
	d.wmu.Unlock()
	var err error
	if started {
		d.cancel()
		d.wg.Wait()
		err = d.syncNow(true)
	}
	return errors.Join(err, d.Datastore.Close(), d.dirF.Close())
}

// crash stops the syncer and the scrub as a kill would: no final sync,
// no clean mark (tests). The flatfs is closed.
func (d *Disk) crash() {
	d.mu.Lock()
	d.closed = true
	started := d.started
	d.mu.Unlock()
	if started {
		d.cancel()
		d.wg.Wait()
	}
	d.Datastore.Close()
	d.dirF.Close()
}
