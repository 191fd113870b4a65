package simnet

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blob/pin"
	blobservice "github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/cell"
)

// TestFilesInACell: a file added on one node of a cell of three is listed
// on all; the node with policy "all" fetches it whole; the node with
// policy "none" holds nothing of it until it opens it, then reads a range
// fetched on demand; removed, it is unpinned everywhere and a collection
// frees its blocks on every node.
func TestFilesInACell(t *testing.T) {
	const seed = 12
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	data := bytes.Repeat([]byte("exopeer files in a simulated cell. "), 3<<20/35)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		admin := addNode(t, ctx, n, NodeConfig{Dir: dirs[0]})
		if _, err := admin.Peer().Cell().Create(ctx, "files", "admin"); err != nil {
			fail("Create: %v", err)
		}
		all := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}, Dir: dirs[1]})
		join(t, ctx, admin, all, cell.RoleChain)
		lazy := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}, Dir: dirs[2], Files: blobservice.Config{Policy: blobservice.PolicyNone}})
		join(t, ctx, admin, lazy, cell.RoleChain)
		nodes := []*Node{admin, all, lazy}
		waitAlive(t, nodes, time.Minute)

		f, err := admin.Peer().Blobs().AddFileReader(ctx, "notes.txt", bytes.NewReader(data), blobservice.AddOptions{})
		if err != nil {
			fail("AddFileReader: %v", err)
		}
		file := func(nd *Node) (blobservice.File, bool) {
			got, err := nd.Peer().Blobs().File(ctx, f.ID.String())
			return got, err == nil
		}
		full, _ := file(admin)
		for _, nd := range nodes {
			if _, ok := waitUntil(2*time.Minute, time.Second, func() bool { _, ok := file(nd); return ok }); !ok {
				fail("node %d does not list the file", nd.Index)
			}
		}
		if _, ok := waitUntil(2*time.Minute, time.Second, func() bool {
			got, ok := file(all)
			return ok && got.Pinned && got.Held == full.Held
		}); !ok {
			got, _ := file(all)
			fail("the node with policy all holds %d of %d bytes, pinned %v", got.Held, full.Held, got.Pinned)
		}
		if got, _ := file(lazy); got.Pinned || got.Held != 0 {
			fail("the node with policy none keeps %+v", got)
		}

		// On demand: a range read from the blob's holders.
		r, err := lazy.Peer().Blobs().Open(ctx, f.Cap)
		if err != nil {
			fail("Open: %v", err)
		}
		buf := make([]byte, 200000)
		off := int64(len(data)) - 300000
		if _, err := r.ReadAt(buf, off); err != nil {
			fail("ReadAt: %v", err)
		}
		r.Close()
		if !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
			fail("the range read on demand differs from what was added")
		}
		if got, _ := file(lazy); got.Held == 0 || got.Held >= full.Held || got.Pinned {
			fail("after reading a range the lazy node holds %d of %d bytes, pinned %v", got.Held, full.Held, got.Pinned)
		}

		// Removed: unpinned everywhere; a collection frees it everywhere.
		if err := all.Peer().Blobs().RemoveFile(ctx, "notes.txt"); err != nil {
			fail("RemoveFile: %v", err)
		}
		for _, nd := range nodes {
			if _, ok := waitUntil(2*time.Minute, time.Second, func() bool { return !pinned(ctx, nd, f.Cap) }); !ok {
				fail("node %d keeps the removed file pinned", nd.Index)
			}
			if _, err := nd.Peer().Blobs().GC(ctx); err != nil {
				fail("node %d GC: %v", nd.Index, err)
			}
			u, err := nd.Peer().Blocks().Usage(ctx)
			if err != nil {
				fail("Usage: %v", err)
			}
			if u.Bytes != 0 {
				fail("node %d holds %d bytes of blob blocks after removal and GC", nd.Index, u.Bytes)
			}
		}
	})
}

// pinned reports whether nd pins c's root for any reason.
func pinned(ctx context.Context, nd *Node, c blob.Capability) bool {
	ps, err := nd.Peer().Pins().List(ctx)
	if err != nil {
		return true
	}
	return slices.ContainsFunc(ps, func(p pin.Pin) bool { return p.Root.Equals(c.Root) })
}
