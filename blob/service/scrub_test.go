package service_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/go-cid"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/blocks/blobdisk"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
)

// openDisk opens and starts the blob store at dir; t.Cleanup closes it
// (after the nodes on it, which are started later).
func openDisk(t *testing.T, dir string) *blobdisk.Disk {
	t.Helper()
	d, err := blobdisk.Open(dir, blobdisk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// crashed is a cell of a and b in which b held a file whole in a
// blobdisk.Disk at dir (blob blocks written without an fsync each), then
// stopped without the clean mark, as a crash would, with one leaf's file
// zeroed as a crash before the writeback leaves it. b is closed; opts
// start it again.
type crashed struct {
	a    *p.Node
	opts p.Options
	dir  string
	f    service.File
	data []byte
	full int64   // the bytes of the file's blocks
	leaf cid.Cid // the leaf zeroed
}

func crashWithZeroedLeaf(t *testing.T, seed uint64) crashed {
	t.Helper()
	ctx := t.Context()
	c := crashed{a: nodetest.CellNode(t, 93), dir: filepath.Join(t.TempDir(), "blobs")}
	disk := openDisk(t, c.dir)
	b := nodetest.Join(t, c.a, 94, cell.RoleChain, func(o *p.Options) { o.Blobs = disk; c.opts = *o })
	c.data = content(seed, 3<<20+99)
	added, err := c.a.Blobs().AddFiles(ctx, []string{writeFile(t, "scan.tiff", c.data)}, service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.f = added[0]
	c.full = waitFile(t, c.a, c.f.ID.String(), nil).Held
	waitFile(t, b, c.f.ID.String(), func(g service.File) bool { return g.Held == c.full })

	// A leaf of the file, and its block file in b's store.
	root, err := c.a.Blocks().Get(ctx, c.f.Cap.Root)
	if err != nil {
		t.Fatal(err)
	}
	kids, err := blob.Children(root)
	if err != nil || len(kids) < 2 || kids[1].Type() != cid.Raw {
		t.Fatalf("the root's children: %v, %v", kids, err)
	}
	c.leaf = kids[1]
	k := dshelp.MultihashToDsKey(c.leaf.Hash()).String()[1:]
	leafFile := filepath.Join(c.dir, k[len(k)-3:len(k)-1], k+".data")

	// "Crash": the node stops, the store is left marked not clean (the
	// state a kill leaves), and the leaf's file holds zeros.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := disk.Close(); err != nil {
		t.Fatal(err)
	}
	state, _ := json.Marshal(map[string]any{"checkpoint": time.Now().Add(-time.Hour), "clean": false})
	if err := os.WriteFile(filepath.Join(c.dir, blobdisk.StateFile), state, 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(leafFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leafFile, make([]byte, fi.Size()), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestScrubbedLeafFetchedAgain: b keeps a file of the cell whole and
// crashes with a leaf's file zeroed (crashWithZeroedLeaf). At the next
// start the scrub deletes that leaf, the follower finds the file it held
// whole no longer whole, and fetches the leaf again from a: the file reads
// back byte for byte, and the status says what happened.
func TestScrubbedLeafFetchedAgain(t *testing.T) {
	ctx := t.Context()
	c := crashWithZeroedLeaf(t, 31)
	c.opts.Blobs = openDisk(t, c.dir)
	b := nodetest.Start(t, c.opts)
	nodetest.Eventually(t, 60*time.Second, "the scrubbed leaf fetched again", func() bool {
		_, err := b.Blocks().Get(ctx, c.leaf)
		return err == nil
	})
	st, err := b.Blobs().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Scrub.Unclean || !st.Scrub.Done || st.Scrub.Deleted != 1 || st.Incomplete != 1 {
		t.Errorf("status after the scrub: %+v, incomplete %d; want 1 block deleted, 1 file found incomplete", st.Scrub, st.Incomplete)
	}
	waitFile(t, b, c.f.ID.String(), func(g service.File) bool { return g.Held == c.full })
	checkRange(t, b, c.f.Cap, c.data, 0, len(c.data))
}

// TestRecheckSurvivesCleanStop (review finding 2): after an unclean stop
// the scrub deletes a damaged leaf and ends, and the run stops cleanly
// before any blob service checked its files again (here: a run of the
// store alone). The request to check them is kept: at the next start,
// clean, the follower checks and fetches the leaf again, then the request
// is acknowledged.
func TestRecheckSurvivesCleanStop(t *testing.T) {
	ctx := t.Context()
	c := crashWithZeroedLeaf(t, 32)

	// A run in which the scrub deletes the leaf and ends, then a clean
	// stop before any follower pass.
	d2 := openDisk(t, c.dir)
	_, done := d2.Scrub()
	<-done
	if st, _ := d2.Scrub(); st.Deleted != 1 || st.Recheck == 0 {
		t.Fatalf("scrub: %+v; want the leaf deleted and a recheck asked", st)
	}
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}

	d3 := openDisk(t, c.dir)
	if st, _ := d3.Scrub(); st.Unclean || st.Recheck == 0 {
		t.Fatalf("a clean start after an unacknowledged scrub: %+v; want no scrub, a recheck asked", st)
	}
	c.opts.Blobs = d3
	b := nodetest.Start(t, c.opts)
	nodetest.Eventually(t, 60*time.Second, "the scrubbed leaf fetched again", func() bool {
		_, err := b.Blocks().Get(ctx, c.leaf)
		return err == nil
	})
	nodetest.Eventually(t, 60*time.Second, "the recheck acknowledged", func() bool {
		st, _ := d3.Scrub()
		return st.Recheck == 0
	})
	waitFile(t, b, c.f.ID.String(), func(g service.File) bool { return g.Held == c.full })
	checkRange(t, b, c.f.Cap, c.data, 0, len(c.data))
}
