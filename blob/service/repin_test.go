package service_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// TestRepinAfterCutCollection: a file unpinned on a device, then partly
// collected (a collection cut short by a stop deletes blocks in no
// particular order: some leaves, not the root), then pinned again, is
// fetched whole again: the record that it was held whole is not trusted
// once it was unpinned.
func TestRepinAfterCutCollection(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 97)
	b := nodetest.Join(t, a, 98, cell.RoleChain, policy(service.PolicyAll))
	data := content(15, 3<<20+11)
	f, err := a.Blobs().AddFileReader(ctx, "film.bin", bytes.NewReader(data), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	full := waitFile(t, a, f.ID.String(), nil).Held
	waitFile(t, b, f.ID.String(), func(g service.File) bool { return g.Pinned && g.Held == full })
	if err := b.Blobs().UnpinFile(ctx, f.ID.String()); err != nil {
		t.Fatal(err)
	}
	// What a cut collection may leave: the root, without a leaf.
	var leaf cid.Cid
	for _, c := range dagOf(t, b, f.Cap.Root) {
		if c.Type() == cid.Raw {
			leaf = c
		}
	}
	if err := b.Blocks().Delete(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	if err := b.Blobs().PinFile(ctx, f.ID.String()); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 30*time.Second, "b holding the file whole again", func() bool {
		has, err := b.Blocks().Has(ctx, leaf)
		return err == nil && has
	})
}
