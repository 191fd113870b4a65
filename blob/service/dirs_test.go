package service_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
)

// TestFolders: a folder added as a file is kept whole, its entries too
// (an encrypted listing does not link them in the DAG), through a
// collection, on the device that added it and on one that fetched it
// under policy all, where each entry reads back; removed, the whole tree
// goes at the next collection on both.
func TestFolders(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 95)
	b := nodetest.Join(t, a, 96, cell.RoleChain)
	dir := filepath.Join(t.TempDir(), "album")
	files := map[string][]byte{
		"one.jpg":       content(13, 1<<20+5),
		"sub/two.jpg":   content(14, 2<<20+7),
		"sub/deep/3.md": []byte("three"),
	}
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	added, err := a.Blobs().AddFiles(ctx, []string{dir}, service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := added[0]
	if !f.Cap.Dir || f.MediaType != service.DirMedia || f.Size != int64(1<<20+5+2<<20+7+5) {
		t.Fatalf("added the folder as %+v", f)
	}
	if _, err := a.Blobs().GC(ctx); err != nil {
		t.Fatal(err)
	}
	full := usage(t, a)
	if held := waitFile(t, a, f.ID.String(), nil).Held; held != full || full < 3<<20 {
		t.Fatalf("after a collection a holds %d bytes of the folder, %d in all; want the whole tree", held, full)
	}
	waitFile(t, b, f.ID.String(), func(f service.File) bool { return f.Pinned && f.Held == full })
	if _, err := b.Blobs().GC(ctx); err != nil {
		t.Fatal(err)
	}
	if got := usage(t, b); got != full {
		t.Fatalf("after a collection b holds %d bytes of the folder's %d", got, full)
	}
	// Each entry reads back on b, from what b holds.
	var check func(c blob.Capability, prefix string)
	check = func(c blob.Capability, prefix string) {
		sess := b.Exchange().NewSession(ctx, blocks.SessionOptions{})
		defer sess.Close()
		es, err := blob.ReadDir(ctx, sess, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Cap.Dir {
				check(e.Cap, prefix+e.Name+"/")
				continue
			}
			want := files[prefix+e.Name]
			checkRange(t, b, e.Cap, want, 0, len(want))
		}
	}
	check(f.Cap, "")

	if err := a.Blobs().RemoveFile(ctx, "album"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*p.Node{a, b} {
		nodetest.Eventually(t, 60*time.Second, "the folder unpinned", func() bool {
			ps, err := n.Pins().List(ctx)
			return err == nil && len(ps) == 0
		})
		if _, err := n.Blobs().GC(ctx); err != nil {
			t.Fatal(err)
		}
		if got := usage(t, n); got != 0 {
			t.Errorf("node %s holds %d bytes after the folder's removal and a collection", n.ID(), got)
		}
	}
}
