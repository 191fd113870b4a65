package server_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// TestBlobExportCutShort: an export that fails once its answer has begun
// (here: a block missing and the node closing) ends as an error for the
// client, not as a CAR file that looks whole.
func TestBlobExportCutShort(t *testing.T) {
	dir, n, _ := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.BlobAdd(t.Context(), bytes.NewReader(testBytes(t, 257*blob.PublicLeafSize)), -1, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := blob.ParseCapability(b.Cap)
	if err != nil {
		t.Fatal(err)
	}
	var leaves []cid.Cid
	sess := n.Exchange().NewSession(t.Context(), blocks.SessionOptions{})
	err = blob.Walk(t.Context(), sess, bc.Root, func(bk blockformat.Block) error {
		if bk.Cid().Type() == cid.Raw {
			leaves = append(leaves, bk.Cid())
		}
		return nil
	})
	sess.Close()
	if err != nil || len(leaves) < 2 {
		t.Fatalf("walk: %v, %d leaves", err, len(leaves))
	}
	// The last leaf, past the first batch of a walk (256 blocks, 64 MiB
	// written), is missing: the export waits for it.
	if err := n.Blocks().Delete(t.Context(), leaves[len(leaves)-1]); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(500 * time.Millisecond)
		_ = n.Blobs().Close()
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	car, err := c.BlobExport(ctx, b.Cap)
	if err != nil {
		return // a problem, before the answer began: fine
	}
	defer car.Close()
	data, err := io.ReadAll(car)
	if err == nil {
		t.Fatalf("an export cut short read as a whole CAR of %d bytes", len(data))
	}
}
