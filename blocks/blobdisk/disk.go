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
// last run closed the disk (a final sync) and wrote nothing after. It is
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
	Err     string    // what stopped the scrub, if anything did
}

// Disk is the flatfs of blob blocks (<datadir>/blobs), written
// without an fsync per block, as Kubo's default flatfs is: a block is in
// the page cache when its write returns. Unlike Kubo, it knows what a
// crash may have damaged. A syncer, once writes pause (Quiet) or have
// waited MaxDirty, calls syncfs(2) on the file system and then records a
// checkpoint (StateFile): every block file written before it is on
// disk. Close syncs and records the stop as clean. When it opens after a
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
	sync bool // per-file fsync instead (no syncfs on this system)

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
}

// syncState is StateFile's content.
type syncState struct {
	Checkpoint time.Time `json:"checkpoint"`
	Clean      bool      `json:"clean"`
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
	d := &Disk{Datastore: f, path: path, cfg: cfg, sync: perFile, wrote: make(chan struct{}, 1), scrubCh: make(chan struct{})}
	d.log.Store(cfg.Logger)
	b, err := os.ReadFile(filepath.Join(path, StateFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		// New, or made when every write was synced: on disk up to now.
		d.state = syncState{Clean: true, Checkpoint: cfg.Now()}
	case err != nil:
		f.Close()
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
// the scrub.
func (d *Disk) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started || d.closed {
		return errors.New("blobdisk: Disk started twice or after Close")
	}
	unclean := !d.state.Clean
	cp := d.state.Checkpoint
	if err := d.writeState(syncState{Checkpoint: cp}); err != nil {
		return err
	}
	d.started = true
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	if unclean {
		d.scrub = ScrubStats{Unclean: true, Since: cp.Add(-d.cfg.Margin)}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.runScrub(ctx, cp.Add(-d.cfg.Margin))
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

// noteWrite records that block files were written and not yet synced.
func (d *Disk) noteWrite() {
	d.dirty.Store(true)
	select {
	case d.wrote <- struct{}{}:
	default:
	}
}

// Put stores value under key, unsynced (see Disk).
func (d *Disk) Put(ctx context.Context, key ds.Key, value []byte) error {
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
		if err := d.syncNow(false); err != nil {
			d.log.Load().Warn("blob store: sync failed; trying again at the next write", "err", err)
		}
	}
}

// syncNow syncs the file system and records a checkpoint, clean if asked
// (at Close). The checkpoint is the time before the sync: every write
// noted before it has returned, so syncfs flushes its data.
func (d *Disk) syncNow(clean bool) error {
	if !d.dirty.Swap(false) && !clean {
		return nil
	}
	t := d.cfg.Now()
	if err := syncfs(d.path); err != nil {
		d.dirty.Store(true)
		return fmt.Errorf("blobdisk: sync the blob store: %w", err)
	}
	d.mu.Lock()
	done := d.scrub.Done
	d.mu.Unlock()
	if !done {
		return nil
	}
	return d.writeState(syncState{Checkpoint: t, Clean: clean})
}

// writeState replaces StateFile with st, durably.
func (d *Disk) writeState(st syncState) error {
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
	return nil
}

// Close stops the syncer and the scrub and waits for them, syncs, and
// records a clean stop (unless the scrub had not finished: the next open
// scrubs again). Then it closes the flatfs. Idempotent.
func (d *Disk) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	started := d.started
	d.mu.Unlock()
	var err error
	if started {
		d.cancel()
		d.wg.Wait()
		err = d.syncNow(true)
	}
	return errors.Join(err, d.Datastore.Close())
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
}
