package pin

import (
	"slices"
	"testing"

	"github.com/ipfs/boxo/datastore/dshelp"
	flatfs "github.com/ipfs/go-ds-flatfs"
	leveldb "github.com/ipfs/go-ds-leveldb"

	"github.com/exopeer/exopeer/blocks"
)

// TestGCReportsDamagedRoots: a corrupt node under a pinned root is
// deleted by a collection, and with it all it linked (nothing marks it),
// while the root stays: the blob service took a DAG whose root is held
// for a DAG held whole, and never fetched it again. A collection names
// the pinned roots it found damaged.
func TestGCReportsDamagedRoots(t *testing.T) {
	ctx := t.Context()
	meta, err := leveldb.NewDatastore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	fs, err := flatfs.CreateOrOpen(t.TempDir(), flatfs.NextToLast(2), true)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	e := &env{meta: meta, store: blocks.NewStoreWith(meta, fs)}
	e.pins = New(meta, e.store, nil)
	e.rng = newEnv(t).rng
	d := e.newDAG(t, 3, 100)
	other := e.newDAG(t, 2, 100)
	e.put(t, d.all...)
	e.put(t, other.all...)
	for _, r := range []*dag{d, other} {
		if err := e.pins.Pin(ctx, r.root, "manual"); err != nil {
			t.Fatal(err)
		}
	}
	// Rot one mid node of d on disk.
	bad := d.mids[1]
	if err := fs.Put(ctx, dshelp.MultihashToDsKey(bad.Cid().Hash()), []byte("rotten")); err != nil {
		t.Fatal(err)
	}
	st := e.gc(t)
	if !slices.Contains(st.Damaged, d.root) || slices.Contains(st.Damaged, other.root) || len(st.Damaged) != 1 {
		t.Fatalf("GC = %+v; want %s (and only it) damaged", st, d.root)
	}
	e.wantHeld(t, "the rest of the damaged DAG", true, d.all[0], d.mids[0], d.mids[2])
}
