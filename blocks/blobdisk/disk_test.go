package blobdisk_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/boxo/datastore/dshelp"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/blocks/blobdisk"
)

// newStore returns a blocks.Store whose blob blocks go to d.
func newStore(d *blobdisk.Disk) *blocks.Store {
	return blocks.NewStoreWith(dssync.MutexWrap(ds.NewMapDatastore()), d)
}

// randomBlock returns a raw block of n random bytes.
func randomBlock(t *testing.T, n int) blockformat.Block {
	b := make([]byte, n)
	rand.Read(b)
	return blocks.NewBlock(b)
}

// blockFile is the path of b's file in the flatfs at dir (NextToLast(2)).
func blockFile(dir string, c cid.Cid) string {
	k := dshelp.MultihashToDsKey(c.Hash()).String()[1:]
	return filepath.Join(dir, k[len(k)-3:len(k)-1], k+".data")
}

// TestDiskScrubAfterCrash: blocks written to a Disk that then
// "crashes" (stopped with no final sync and no clean mark) with some of
// their files cut short, zeroed or emptied, as a crash before the
// writeback could leave them: at the next open the scrub reads the files
// written since the checkpoint, deletes exactly the damaged ones, and
// every other block reads back; after a clean Close no scrub runs.
func TestDiskScrubAfterCrash(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "blobs")
	d, err := blobdisk.Open(dir, blobdisk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if st, ch := d.Scrub(); st.Unclean || !st.Done || !isClosed(ch) {
		t.Fatalf("a new store: scrub %+v", st)
	}
	s := newStore(d)
	var bs []blockformat.Block
	for i := range 12 {
		bs = append(bs, randomBlock(t, 1000+i*4099))
	}
	if err := s.PutOwn(ctx, bs); err != nil {
		t.Fatal(err)
	}
	d.Crash()

	damage := map[int]func(p string) error{
		1: func(p string) error { return os.Truncate(p, 10) },
		4: func(p string) error { return os.Truncate(p, 0) },
		7: func(p string) error { // zeros where the data was
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, make([]byte, fi.Size()), 0o644)
		},
	}
	for i, f := range damage {
		if err := f(blockFile(dir, bs[i].Cid())); err != nil {
			t.Fatal(err)
		}
	}
	var stf blobdisk.State
	if b, err := os.ReadFile(filepath.Join(dir, blobdisk.StateFile)); err != nil || json.Unmarshal(b, &stf) != nil || stf.Clean {
		t.Fatalf("after the crash the state file says %s (%v), want not clean", b, err)
	}

	d, err = blobdisk.Open(dir, blobdisk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	s = newStore(d)
	st, ch := d.Scrub()
	if !st.Unclean {
		t.Fatalf("after a crash: scrub %+v, want unclean", st)
	}
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("the scrub did not end")
	}
	st, _ = d.Scrub()
	if st.Checked != int64(len(bs)) || st.Deleted != int64(len(damage)) || st.Err != "" {
		t.Errorf("scrub %+v, want %d checked and %d deleted", st, len(bs), len(damage))
	}
	for i, b := range bs {
		got, err := s.Get(ctx, b.Cid())
		if _, bad := damage[i]; bad {
			if has, _ := s.Has(ctx, b.Cid()); has {
				t.Errorf("damaged block %d still stored (get: %v)", i, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got.RawData(), b.RawData()) {
			t.Errorf("block %d after the scrub: %v", i, err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, blobdisk.StateFile)); err != nil || json.Unmarshal(b, &stf) != nil || !stf.Clean {
		t.Fatalf("after Close the state file says %s (%v), want clean", b, err)
	}

	// A clean stop: no scrub.
	d, err = blobdisk.Open(dir, blobdisk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if st, ch := d.Scrub(); st.Unclean || st.Checked != 0 || !isClosed(ch) {
		t.Errorf("after a clean stop: scrub %+v, want none", st)
	}
}

// TestDiskCheckpoints: the syncer syncs once writes pause and then
// records a checkpoint; a crash after it scrubs only the files modified
// since (less the margin), not those before.
func TestDiskCheckpoints(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "blobs")
	cfg := blobdisk.Config{Quiet: 10 * time.Millisecond, MaxDirty: 50 * time.Millisecond, Margin: time.Nanosecond}
	d, err := blobdisk.Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	s := newStore(d)
	old := []blockformat.Block{randomBlock(t, 5000), randomBlock(t, 6000)}
	if err := s.PutOwn(ctx, old); err != nil {
		t.Fatal(err)
	}
	state := func() blobdisk.State {
		var st blobdisk.State
		b, _ := os.ReadFile(filepath.Join(dir, blobdisk.StateFile))
		_ = json.Unmarshal(b, &st)
		return st
	}
	deadline := time.Now().Add(30 * time.Second)
	for state().Checkpoint.IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint recorded after the writes paused")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := state(); st.Clean {
		t.Fatalf("state %+v while running, want not clean", st)
	}
	// Make the old files older than the checkpoint, as time would.
	past := time.Now().Add(-time.Hour)
	for _, b := range old {
		if err := os.Chtimes(blockFile(dir, b.Cid()), past, past); err != nil {
			t.Fatal(err)
		}
	}
	young := randomBlock(t, 7000)
	if err := s.PutOwn(ctx, []blockformat.Block{young}); err != nil {
		t.Fatal(err)
	}
	d.Crash()
	// Written after any checkpoint (the syncer may have synced it too).
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(blockFile(dir, young.Cid()), future, future); err != nil {
		t.Fatal(err)
	}
	d, err = blobdisk.Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, ch := d.Scrub()
	<-ch
	if st, _ := d.Scrub(); st.Checked != 1 || st.Deleted != 0 {
		t.Errorf("scrub after a checkpoint: %+v, want only the one file written since read", st)
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
