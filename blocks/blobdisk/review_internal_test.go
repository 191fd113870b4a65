package blobdisk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/boxo/datastore/dshelp"
	ds "github.com/ipfs/go-datastore"
	"github.com/multiformats/go-multihash"
)

// These tests reach into the syncer and the scrub (syncNow, the syncfs
// and readBlockFile seams) to drive them step by step: no sleeps.

// readState returns the StateFile in dir.
func readState(t *testing.T, dir string) syncState {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st syncState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// writeState writes st as the StateFile in dir.
func writeStateFile(t *testing.T, dir string, st syncState) {
	t.Helper()
	b, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, StateFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// idle is a Config whose syncer never syncs by itself in a test.
var idle = Config{Quiet: time.Hour, MaxDirty: time.Hour}

// TestSyncErrorLatches (review finding 1): a sync fails (EIO: the pages of
// a block written before it are lost); the next sync succeeds, as Linux
// reports a writeback error once. No checkpoint after the lost write nor
// clean stop may be recorded in that run; Close returns the error, and
// Scrub reports it.
func TestSyncErrorLatches(t *testing.T) {
	ctx := t.Context()
	real := syncfs
	t.Cleanup(func() { syncfs = real })
	var fail atomic.Bool
	fail.Store(true)
	syncfs = func(f *os.File) error {
		if fail.Swap(false) {
			return syscall.EIO
		}
		return real(f)
	}
	dir := filepath.Join(t.TempDir(), "blobs")
	d, err := Open(dir, idle)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	before := readState(t, dir).Checkpoint
	if err := d.Put(ctx, ds.NewKey("CIQLOST"), []byte("lost in writeback")); err != nil {
		t.Fatal(err)
	}
	if err := d.syncNow(false); !errors.Is(err, syscall.EIO) {
		t.Fatalf("the failed sync: %v", err)
	}
	if err := d.Put(ctx, ds.NewKey("CIQLATER"), []byte("later")); err != nil {
		t.Fatal(err)
	}
	if err := d.syncNow(false); !errors.Is(err, syscall.EIO) {
		t.Errorf("a sync after a failed one: %v; want the first error again", err)
	}
	if st, _ := d.Scrub(); !strings.Contains(st.SyncErr, "input/output error") {
		t.Errorf("scrub stats after a failed sync: %+v", st)
	}
	if err := d.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("Close after a failed sync: %v; want it", err)
	}
	if st := readState(t, dir); st.Clean || !st.Checkpoint.Equal(before) {
		t.Errorf("after a failed sync: state %+v; want not clean, the checkpoint of before (%v)", st, before)
	}
}

// TestCheckpointOnlyAfterScrubDone (review finding 4): a sync under way
// when the scrub deletes and ends must not record its checkpoint: its
// syncfs did not cover those deletes.
func TestCheckpointOnlyAfterScrubDone(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "blobs")
	d, err := Open(dir, idle)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		k := dshelp.MultihashToDsKey(sum(t, fmt.Appendf(nil, "block %d", i)))
		if err := d.Datastore.Put(ctx, k, make([]byte, 1000)); err != nil { // damaged
			t.Fatal(err)
		}
	}
	d.Datastore.Close()
	d.dirF.Close()
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	writeStateFile(t, dir, syncState{Checkpoint: old})

	real, realRead := syncfs, readBlockFile
	t.Cleanup(func() { syncfs, readBlockFile = real, realRead })
	d, err = Open(dir, idle)
	if err != nil {
		t.Fatal(err)
	}
	syncing := make(chan struct{})
	readBlockFile = func(path string) ([]byte, fs.FileInfo, error) {
		<-syncing // the scrub reads (and deletes) once the sync began
		return realRead(path)
	}
	syncfs = func(f *os.File) error {
		err := real(f) // what syncfs covers: before the scrub's deletes
		close(syncing)
		_, done := d.Scrub()
		<-done // the scrub deletes and ends while this sync is under way
		return err
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, ds.NewKey("CIQNEW"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.syncNow(false); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.Scrub(); st.Deleted != 4 {
		t.Fatalf("scrub: %+v", st)
	}
	d.crash()
	if st := readState(t, dir); !st.Checkpoint.Equal(old) {
		t.Errorf("state %+v: a checkpoint from a sync that began before the scrub's deletes; want the old one (%v) kept", st, old)
	}
}

// TestClockBackLowersCheckpoint (review finding 3, within a run): a
// checkpoint is recorded while the clock is an hour ahead; the clock is
// stepped back; the next write first lowers the checkpoint (durably, not
// clean), and a sync that began before the step records nothing.
func TestClockBackLowersCheckpoint(t *testing.T) {
	real := syncfs
	t.Cleanup(func() { syncfs = real })
	base := time.Now().Truncate(time.Second)
	var now atomic.Int64
	now.Store(base.Add(time.Hour).UnixNano())
	cfg := idle
	cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
	dir := filepath.Join(t.TempDir(), "blobs")
	d, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.crash()
	d.noteWrite()
	if err := d.syncNow(false); err != nil {
		t.Fatal(err)
	}
	if st := readState(t, dir); !st.Checkpoint.Equal(base.Add(time.Hour)) {
		t.Fatalf("checkpoint %v; want an hour ahead", st.Checkpoint)
	}
	if err := d.beforeWrite(); err != nil {
		t.Fatal(err)
	}
	if st := readState(t, dir); !st.Checkpoint.Equal(base.Add(time.Hour)) {
		t.Fatalf("a write with the clock not stepped back moved the checkpoint to %v", st.Checkpoint)
	}
	// A sync begins (its time: an hour ahead); the clock is stepped back
	// while it runs and a write comes.
	syncfs = func(f *os.File) error {
		now.Store(base.UnixNano())
		if err := d.beforeWrite(); err != nil {
			t.Error(err)
		}
		return real(f)
	}
	d.noteWrite()
	if err := d.syncNow(false); err != nil {
		t.Fatal(err)
	}
	if st := readState(t, dir); st.Clean || !st.Checkpoint.Equal(base) {
		t.Errorf("after the clock stepped back and a write: state %+v; want the checkpoint lowered to %v", st, base)
	}
}

// TestScrubReadErrors (review findings 5 and 6): a file the scrub cannot
// read for a reason other than damage (EMFILE) is not deleted; the scrub
// ends that round with Err, is not done, and is tried again until a round
// goes through; a file that reads EIO is deleted.
func TestScrubReadErrors(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "blobs")
	d, err := Open(dir, idle)
	if err != nil {
		t.Fatal(err)
	}
	good := []byte("a good block")
	gk := dshelp.MultihashToDsKey(sum(t, good))
	ek := dshelp.MultihashToDsKey(sum(t, []byte("unreadable")))
	bad := dshelp.MultihashToDsKey(sum(t, []byte("damaged")))
	for k, v := range map[ds.Key][]byte{gk: good, ek: []byte("unreadable"), bad: make([]byte, 7)} {
		if err := d.Datastore.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	d.Datastore.Close()
	d.dirF.Close()
	writeStateFile(t, dir, syncState{Checkpoint: time.Now().Add(-time.Hour)})

	real := readBlockFile
	t.Cleanup(func() { readBlockFile = real })
	var emfile atomic.Int32
	emfile.Store(2) // the first two rounds
	proceed := make(chan struct{})
	readBlockFile = func(path string) ([]byte, fs.FileInfo, error) {
		switch {
		case strings.Contains(path, gk.String()[1:]) && emfile.Load() > 0:
			if emfile.Add(-1) == 0 {
				<-proceed // the test looks at the failed round first
			}
			return nil, nil, syscall.EMFILE
		case strings.Contains(path, ek.String()[1:]):
			return nil, nil, syscall.EIO
		}
		return real(path)
	}
	d, err = Open(dir, idle)
	if err != nil {
		t.Fatal(err)
	}
	d.SetScrubRetry(time.Millisecond)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st, done := d.Scrub()
	for st.Err == "" { // the first round's error is set before the second round begins
		time.Sleep(time.Millisecond)
		st, _ = d.Scrub()
	}
	if st.Done || !strings.Contains(st.Err, "too many open files") {
		t.Errorf("a scrub that could not read a file: %+v; want not done, with the error", st)
	}
	if has, _ := d.Has(ctx, gk); !has {
		t.Error("the scrub deleted a good block it could not open (EMFILE)")
	}
	close(proceed)
	<-done
	st, _ = d.Scrub()
	if st.Err != "" || st.Recheck == 0 {
		t.Errorf("the scrub tried again: %+v; want done, no error, a recheck asked", st)
	}
	for k, want := range map[ds.Key]bool{gk: true, ek: false, bad: false} {
		if has, _ := d.Has(ctx, k); has != want {
			t.Errorf("after the scrub: %s stored %v, want %v", k, has, want)
		}
	}
}

// sum is the sha2-256 multihash of data.
func sum(t *testing.T, data []byte) multihash.Multihash {
	h, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestScrubSkipsUnknownHash (review finding 7): a block whose hash this
// build cannot compute is left alone.
func TestScrubSkipsUnknownHash(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "blobs")
	d, err := Open(dir, idle)
	if err != nil {
		t.Fatal(err)
	}
	h, err := multihash.Encode(make([]byte, 32), 0x7777) // no hasher registered
	if err != nil {
		t.Fatal(err)
	}
	k := dshelp.MultihashToDsKey(h)
	if err := d.Datastore.Put(ctx, k, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	d.Datastore.Close()
	d.dirF.Close()
	writeStateFile(t, dir, syncState{Checkpoint: time.Now().Add(-time.Hour)})
	d, err = Open(dir, idle)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st, done := d.Scrub()
	<-done
	st, _ = d.Scrub()
	if has, _ := d.Has(ctx, k); !has || st.Deleted != 0 {
		t.Errorf("a block of an unknown hash: stored %v, scrub %+v; want it kept", has, st)
	}
}

// TestScrubKeepsRewrittenFile (review finding 8): the damaged file the
// scrub read is deleted and the block written again (correctly) before
// the scrub deletes: the scrub must keep the new file.
func TestScrubKeepsRewrittenFile(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "blobs")
	d, err := Open(dir, idle)
	if err != nil {
		t.Fatal(err)
	}
	good := []byte("rewritten correctly")
	k := dshelp.MultihashToDsKey(sum(t, good))
	if err := d.Datastore.Put(ctx, k, make([]byte, len(good))); err != nil { // damaged
		t.Fatal(err)
	}
	d.Datastore.Close()
	d.dirF.Close()
	writeStateFile(t, dir, syncState{Checkpoint: time.Now().Add(-time.Hour)})
	d, err = Open(dir, idle)
	if err != nil {
		t.Fatal(err)
	}
	real := readBlockFile
	t.Cleanup(func() { readBlockFile = real })
	readBlockFile = func(path string) ([]byte, fs.FileInfo, error) {
		data, fi, err := real(path)
		// Meanwhile: a collection deletes it, a fetch stores it again.
		if err := d.Datastore.Delete(ctx, k); err != nil {
			t.Error(err)
		}
		if err := d.Datastore.Put(ctx, k, good); err != nil {
			t.Error(err)
		}
		return data, fi, err
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, done := d.Scrub()
	<-done
	if v, err := d.Get(ctx, k); err != nil || string(v) != string(good) {
		t.Errorf("the block written again during the scrub: %q, %v; want it kept", v, err)
	}
}

// TestWritesCheckTheClockAndClose: Put and a batch's Commit lower the
// checkpoint first when the clock was stepped back behind it (they call
// beforeWrite), and once Close has begun both are refused with ErrClosed,
// so that no write lands after the clean mark (review findings 3 and 9).
func TestWritesCheckTheClockAndClose(t *testing.T) {
	ctx := t.Context()
	base := time.Now().Truncate(time.Second)
	var now atomic.Int64
	now.Store(base.Add(time.Hour).UnixNano())
	cfg := idle
	cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
	dir := filepath.Join(t.TempDir(), "blobs")
	d, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	d.noteWrite()
	if err := d.syncNow(false); err != nil {
		t.Fatal(err)
	}
	now.Store(base.UnixNano())
	if err := d.Put(ctx, ds.NewKey("CIQPUT"), []byte("after the step back")); err != nil {
		t.Fatal(err)
	}
	if st := readState(t, dir); st.Clean || !st.Checkpoint.Equal(base) {
		t.Errorf("after a Put with the clock stepped back: state %+v; want the checkpoint lowered to %v", st, base)
	}
	now.Store(base.Add(-time.Hour).UnixNano())
	b, err := d.Batch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, ds.NewKey("CIQBATCH"), []byte("in a batch")); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if st := readState(t, dir); !st.Checkpoint.Equal(base.Add(-time.Hour)) {
		t.Errorf("after a Commit with the clock stepped back again: checkpoint %v; want %v", st.Checkpoint, base.Add(-time.Hour))
	}
	late, err := d.Batch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := late.Put(ctx, ds.NewKey("CIQLATE"), []byte("too late")); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, ds.NewKey("CIQAFTER"), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: %v, want ErrClosed", err)
	}
	if err := late.Commit(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close: %v, want ErrClosed", err)
	}
}
