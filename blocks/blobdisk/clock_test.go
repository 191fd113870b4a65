package blobdisk_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	blockformat "github.com/ipfs/go-block-format"

	"github.com/exopeer/exopeer/blocks/blobdisk"
)

// TestClockSteppedBack (review finding 3): a run whose clock was an hour
// ahead (an RTC wrong at boot) records its checkpoint in the future; the
// clock is then right again; a block written in the next run is damaged
// by a crash. Its mtime is before the checkpoint less Margin, yet the
// scrub must find it: a start whose clock is before the checkpoint lowers
// it to now.
func TestClockSteppedBack(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "blobs")
	ahead := func() time.Time { return time.Now().Add(time.Hour) }
	d, err := blobdisk.Open(dir, blobdisk.Config{Now: ahead})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if err := newStore(d).PutOwn(ctx, []blockformat.Block{randomBlock(t, 100)}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil { // a clean stop, checkpoint an hour ahead
		t.Fatal(err)
	}

	// The clock is right again; a block is written and the machine
	// crashes before the next sync.
	d, err = blobdisk.Open(dir, blobdisk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	b := randomBlock(t, 5000)
	if err := newStore(d).PutOwn(ctx, []blockformat.Block{b}); err != nil {
		t.Fatal(err)
	}
	d.Crash()
	p := blockFile(dir, b.Cid())
	if err := os.WriteFile(p, make([]byte, 5000), 0o644); err != nil {
		t.Fatal(err)
	}

	d2, err := blobdisk.Open(dir, blobdisk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Start(); err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	_, done := d2.Scrub()
	<-done
	st, _ := d2.Scrub()
	if _, err := os.Stat(p); err == nil || st.Deleted != 1 {
		t.Errorf("the damaged block written after the clock stepped back: stat %v, scrub %+v; want it deleted", err, st)
	}
}
