package service_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
)

// TestFilesAcrossTheCell: a file added on one member is listed on
// another (a thin member, reading through the store member), which keeps
// it under the default policy (all) by fetching it in the background;
// both read any range. The same content added on the other member is the
// same blob (a key derived from the cell's secret and the content); two
// files of one name make that name ambiguous.
func TestFilesAcrossTheCell(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 61)
	b := nodetest.Join(t, a, 62, cell.RoleChain)
	data := content(1, 3<<20+12345)
	fs, err := a.Blobs().AddFiles(ctx, []string{writeFile(t, "report.pdf", data)}, service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := fs[0]
	if f.Name != "report.pdf" || f.Size != int64(len(data)) || f.MediaType != "application/pdf" || f.Cap.Public || f.AddedBy != a.ID().String() || !f.Pinned {
		t.Fatalf("added %+v", f)
	}
	if got := reasons(t, a, f.Cap.Root); strings.Join(got, ",") != "file:"+f.ID.String() {
		t.Errorf("pinned for %v, want file:%s", got, f.ID)
	}
	onA, err := a.Blobs().File(ctx, f.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	if onA.Held == 0 || onA.Cap != f.Cap || !onA.Added.Equal(f.Added) {
		t.Fatalf("File on a: %+v, added %+v", onA, f)
	}

	onB := waitFile(t, b, f.ID.String(), func(f service.File) bool { return f.Pinned && f.Held == onA.Held })
	if onB.Name != f.Name || onB.Cap != f.Cap || onB.Size != f.Size {
		t.Errorf("b lists %+v, a added %+v", onB, f)
	}
	checkRange(t, b, f.Cap, data, 1<<20-7, 100000)
	checkRange(t, a, f.Cap, data, 0, len(data))

	// The same content, uploaded on b under another name: the same blob.
	g, err := b.Blobs().AddFileReader(ctx, "../copy.pdf", bytes.NewReader(data), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "copy.pdf" || g.Cap != f.Cap || g.ID == f.ID {
		t.Errorf("the same content again: %+v, first %+v", g, f)
	}
	for _, bad := range []string{"", "/", ".", strings.Repeat("n", 256), "\xff"} {
		if _, err := b.Blobs().AddFileReader(ctx, bad, strings.NewReader("x"), service.AddOptions{}); err == nil {
			t.Errorf("AddFileReader named %q: no error", bad)
		}
	}
	// A second report.pdf makes the name ambiguous; IDs still name each.
	if _, err := b.Blobs().AddFileReader(ctx, "report.pdf", strings.NewReader("other"), service.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFile(t, a, "copy.pdf", nil)
	nodetest.Eventually(t, 30*time.Second, "a listing three files", func() bool {
		all, err := a.Blobs().Files(ctx)
		return err == nil && len(all) == 3
	})
	if _, err := a.Blobs().File(ctx, "report.pdf"); !errors.Is(err, service.ErrAmbiguous) || !strings.Contains(err.Error(), f.ID.String()) {
		t.Errorf("File(report.pdf) with two: %v, want ErrAmbiguous naming %s", err, f.ID)
	}
	if got, err := a.Blobs().File(ctx, f.Cap.String()); err != nil || got.Cap != f.Cap {
		t.Errorf("File(capability) = %+v, %v", got, err)
	}
	if _, err := a.Blobs().File(ctx, "nothing.txt"); !errors.Is(err, service.ErrNoFile) {
		t.Errorf("File(nothing.txt): %v, want ErrNoFile", err)
	}
	all, err := a.Blobs().Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Added.After(all[i-1].Added) {
			t.Errorf("Files not newest first: %v before %v", all[i-1].Added, all[i].Added)
		}
	}
}

// failingReader gives n bytes, then an error.
type failingReader struct {
	r io.Reader
}

var errBroken = errors.New("the upload broke")

func (f failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errBroken
	}
	return n, err
}

// TestFailedAddListsNothing: an upload that breaks, or a path that does
// not exist, adds no file and pins nothing; the files added before the
// failure stay.
func TestFailedAddListsNothing(t *testing.T) {
	ctx := t.Context()
	n := nodetest.CellNode(t, 64)
	_, err := n.Blobs().AddFileReader(ctx, "broken.bin", failingReader{bytes.NewReader(content(2, 2<<20))}, service.AddOptions{})
	if !errors.Is(err, errBroken) {
		t.Fatalf("a broken upload: %v, want its error", err)
	}
	_, err = n.Blobs().AddFileReader(ctx, "broken-public.bin", failingReader{bytes.NewReader(content(3, 2<<20))}, service.AddOptions{Public: true})
	if !errors.Is(err, errBroken) {
		t.Fatalf("a broken public upload: %v, want its error", err)
	}
	good := writeFile(t, "good.txt", []byte("fine"))
	added, err := n.Blobs().AddFiles(ctx, []string{good, good + ".missing"}, service.AddOptions{})
	if err == nil || len(added) != 1 || added[0].Name != "good.txt" {
		t.Fatalf("AddFiles(good, missing) = %+v, %v; want the good one and an error", added, err)
	}
	files, err := n.Blobs().Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].ID != added[0].ID {
		t.Errorf("files after failures: %+v, want only good.txt", files)
	}
	ps, err := n.Pins().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || !ps[0].Root.Equals(added[0].Cap.Root) {
		t.Errorf("pins after failures: %+v, want only good.txt's", ps)
	}
	// What the failed imports wrote is garbage: a collection takes it.
	if _, err := n.Blobs().GC(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := usage(t, n), added[0].Held; got != want {
		t.Errorf("after GC %d bytes of blob blocks, want good.txt's %d", got, want)
	}
	checkRange(t, n, added[0].Cap, []byte("fine"), 0, 4)
}

// TestNotMember: files need a cell; blobs do not.
func TestNotMember(t *testing.T) {
	ctx := t.Context()
	n := nodetest.Start(t, nodetest.Options(t, 65))
	if _, err := n.Blobs().Files(ctx); !errors.Is(err, service.ErrNotMember) {
		t.Errorf("Files in no cell: %v, want ErrNotMember", err)
	}
	if _, err := n.Blobs().AddFileReader(ctx, "x", strings.NewReader("x"), service.AddOptions{}); !errors.Is(err, service.ErrNotMember) {
		t.Errorf("AddFileReader in no cell: %v, want ErrNotMember", err)
	}
	im, err := n.Blobs().AddBlob(ctx, strings.NewReader("a raw blob"), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := reasons(t, n, im.Cap.Root); strings.Join(got, ",") != service.ReasonManual {
		t.Errorf("a raw blob pinned for %v, want manual", got)
	}
	checkRange(t, n, im.Cap, []byte("a raw blob"), 2, 3)
}

// TestSpool: an upload is spooled to the node's spool and removed after,
// as is one a crash left there, at the next start.
func TestSpool(t *testing.T) {
	spool := t.TempDir()
	left := filepath.Join(spool, "exopeer-upload-123")
	other := filepath.Join(spool, "keep.txt")
	for _, f := range []string{left, other} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n := nodetest.CellNode(t, 66, func(o *p.Options) { o.Files.Spool = spool })
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("a leftover upload survived the start: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another file of the spool went: %v", err)
	}
	if _, err := n.Blobs().AddFileReader(t.Context(), "a.txt", strings.NewReader("spooled"), service.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 1 {
		t.Errorf("the spool holds %d files after an upload, want only keep.txt", len(ents))
	}
}
