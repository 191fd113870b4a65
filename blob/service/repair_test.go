package service_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"

	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
)

// TestCorruptLeafFetchedAgain: a leaf of a file that b holds whole, pinned,
// rots on b's disk (its record no longer hashes to its CID). A read of its
// range on b works: the session finds the record corrupt, deletes it and
// fetches the leaf from a; b then holds it whole again.
func TestCorruptLeafFetchedAgain(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 91)
	var bstore ds.Batching
	b := nodetest.Join(t, a, 92, cell.RoleChain, policy(service.PolicyAll), func(o *p.Options) { bstore = o.Datastore })
	data := content(16, 3<<20+5)
	f, err := a.Blobs().AddFileReader(ctx, "film.bin", bytes.NewReader(data), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	full := waitFile(t, a, f.ID.String(), nil).Held
	waitFile(t, b, f.ID.String(), func(g service.File) bool { return g.Pinned && g.Held == full })

	// The second leaf: plaintext bytes 16*65520 to 2*16*65520.
	var leaves []cid.Cid
	for _, c := range dagOf(t, b, f.Cap.Root) {
		if c.Type() == cid.Raw {
			leaves = append(leaves, c)
		}
	}
	if len(leaves) != 4 {
		t.Fatalf("the file has %d leaves, want 4", len(leaves))
	}
	leaf := leaves[1]
	// b's blob blocks are in its datastore under /blobs (blocks.NewStore).
	key := ds.NewKey("/blobs").Child(dshelp.MultihashToDsKey(leaf.Hash()))
	if err := bstore.Put(ctx, key, []byte("rotten")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Blocks().Get(ctx, leaf); !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("the rotten leaf reads as %v, want ErrCorrupt", err)
	}

	const seg = 65520
	checkRange(t, b, f.Cap, data, 16*seg+100, 20*seg)
	got, err := b.Blocks().Get(ctx, leaf)
	if err != nil {
		t.Fatalf("the leaf after the read: %v", err)
	}
	if !got.Cid().Equals(leaf) {
		t.Fatalf("the leaf after the read is %s", got.Cid())
	}
}
