package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"path"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
)

// testTree is a small tree: files of a few sizes (one over a leaf),
// nested directories, an empty file and an empty directory, non-ASCII
// names.
func testTree() fstest.MapFS {
	return fstest.MapFS{
		"a.txt":             {Data: []byte("hello")},
		"big.bin":           {Data: randomBytes(40, 16*SegmentSize+300)},
		"docs/été.md":       {Data: []byte("# été\n")},
		"docs/deep/x/empty": {Data: nil},
		"docs/deep/y.bin":   {Data: randomBytes(41, 70000)},
		"void":              {Mode: fs.ModeDir},
	}
}

// checkTree reads the directory c back and compares it with fsys at dir.
func checkTree(t *testing.T, g BlockGetter, c Capability, fsys fstest.MapFS, dir string) int64 {
	t.Helper()
	es, err := ReadDir(t.Context(), g, c)
	if err != nil {
		t.Fatalf("ReadDir %s: %v", dir, err)
	}
	des, err := fs.ReadDir(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != len(des) {
		t.Fatalf("%s: %d entries, want %d", dir, len(es), len(des))
	}
	var total int64
	for i, e := range es {
		p := path.Join(dir, des[i].Name())
		if e.Name != des[i].Name() || e.Cap.Dir != des[i].IsDir() || e.Cap.Public != c.Public {
			t.Fatalf("entry %d of %s: %+v, want %s", i, dir, e, des[i].Name())
		}
		if e.Cap.Dir {
			if got := checkTree(t, g, e.Cap, fsys, p); got != e.Size {
				t.Fatalf("%s: size %d, its files hold %d", p, e.Size, got)
			}
		} else {
			r, err := Open(t.Context(), g, e.Cap, ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, fsys[p].Data) || e.Size != int64(len(got)) {
				t.Fatalf("%s: %d bytes (entry says %d), %v", p, len(got), e.Size, err)
			}
		}
		total += e.Size
	}
	return total
}

func TestImportDir(t *testing.T) {
	tree := testTree()
	var want int64
	for _, f := range tree {
		want += int64(len(f.Data))
	}
	for _, tc := range []struct {
		name string
		o    ImportOptions
	}{
		{"random keys", ImportOptions{}},
		{"derived keys", ImportOptions{Secret: []byte("cell")}},
		{"public", ImportOptions{Public: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemBlocks()
			var last int64
			o := tc.o
			o.Progress = func(n int64) {
				if n < last {
					t.Fatalf("progress went back from %d to %d", last, n)
				}
				last = n
			}
			im, err := ImportDir(t.Context(), tree, st, o)
			if err != nil {
				t.Fatal(err)
			}
			if !im.Cap.Dir || im.Cap.Public != tc.o.Public || im.Size != want || last != want || im.Blocks != st.len() {
				t.Fatalf("imported %+v (%d blocks stored, progress %d), want %d bytes", im, st.len(), last, want)
			}
			if got := checkTree(t, st, im.Cap, tree, "."); got != want {
				t.Fatalf("the tree holds %d bytes, want %d", got, want)
			}
			again, err := ImportDir(t.Context(), tree, newMemBlocks(), tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if same := again.Cap == im.Cap; same != (tc.o.Secret != nil || tc.o.Public) {
				t.Fatalf("imported twice: the same capability is %v", same)
			}
			if _, err := Open(t.Context(), st, im.Cap, ReaderOptions{}); !errors.Is(err, ErrIsDir) {
				t.Fatalf("Open of a directory: %v", err)
			}
		})
	}
}

func TestImportDirSameAsBoxo(t *testing.T) {
	tree := testTree()
	tree["many/"+strings.Repeat("n", 255)] = &fstest.MapFile{Data: randomBytes(42, 3*PublicLeafSize+1)}
	im, err := ImportDir(t.Context(), tree, newMemBlocks(), ImportOptions{Public: true})
	if err != nil {
		t.Fatal(err)
	}
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	dserv := merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
	root, err := boxoDir(t.Context(), dserv, tree, ".")
	if err != nil {
		t.Fatal(err)
	}
	if root.Cid() != im.Cap.Root {
		t.Fatalf("public directory %s, boxo's %s", im.Cap.Root, root.Cid())
	}
}

// boxoDir imports dir of fsys with boxo: each file with the balanced
// layout of the format, each directory with uio.NewDirectory and CIDv1.
func boxoDir(ctx context.Context, dserv ipld.DAGService, fsys fstest.MapFS, dir string) (ipld.Node, error) {
	d, err := uio.NewDirectory(dserv, uio.WithCidBuilder(cidPrefix))
	if err != nil {
		return nil, err
	}
	des, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	for _, de := range des {
		p := path.Join(dir, de.Name())
		var nd ipld.Node
		if de.IsDir() {
			nd, err = boxoDir(ctx, dserv, fsys, p)
		} else {
			p := helpers.DagBuilderParams{Dagserv: dserv, Maxlinks: MaxLinks, RawLeaves: true, CidBuilder: cidPrefix}
			db, err2 := p.New(chunker.NewSizeSplitter(bytes.NewReader(fsys[path.Join(dir, de.Name())].Data), PublicLeafSize))
			if err2 != nil {
				return nil, err2
			}
			nd, err = balanced.Layout(db)
		}
		if err != nil {
			return nil, err
		}
		if err := d.AddChild(ctx, de.Name(), nd); err != nil {
			return nil, err
		}
	}
	nd, err := d.GetNode()
	if err != nil {
		return nil, err
	}
	return nd, dserv.Add(ctx, nd)
}

func TestImportDirRefuses(t *testing.T) {
	link := fstest.MapFS{"a": {Data: []byte("x")}, "l": {Mode: fs.ModeSymlink, Data: []byte("a")}}
	if _, err := ImportDir(t.Context(), link, newMemBlocks(), ImportOptions{}); err == nil {
		t.Fatal("ImportDir took a symlink")
	}
	st, im := importBytes(t, []byte("a file"), ImportOptions{})
	if _, err := ReadDir(t.Context(), st, im.Cap); !errors.Is(err, ErrNotDir) {
		t.Fatalf("ReadDir of a file: %v", err)
	}
	c := im.Cap
	c.Dir = true
	if _, err := ReadDir(t.Context(), st, c); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("ReadDir of a file's capability marked dir: %v", err)
	}
	dst := newMemBlocks()
	d, err := ImportDir(t.Context(), testTree(), dst, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Cap.Key[3] ^= 1
	if _, err := ReadDir(t.Context(), dst, d.Cap); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("ReadDir under a wrong key: %v", err)
	}
}

func TestListing(t *testing.T) {
	root := testCID(cid.Raw, "x")
	ok := []Entry{{Name: "a", Size: 3, Cap: Capability{Root: root, Key: Key{1}}}, {Name: "b", Size: 0, Cap: Capability{Root: root, Dir: true, Public: true}}}
	b, err := encodeListing(ok)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeListing(b)
	if err != nil || len(got) != 2 || got[0] != ok[0] || got[1] != ok[1] {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for name, es := range map[string][]Entry{
		"unsorted":    {ok[1], ok[0]},
		"duplicate":   {ok[0], ok[0]},
		"slash":       {{Name: "a/b", Cap: ok[0].Cap}},
		"dot":         {{Name: ".", Cap: ok[0].Cap}},
		"dotdot":      {{Name: "..", Cap: ok[0].Cap}},
		"empty name":  {{Name: "", Cap: ok[0].Cap}},
		"long name":   {{Name: strings.Repeat("x", 256), Cap: ok[0].Cap}},
		"not UTF-8":   {{Name: "\xff", Cap: ok[0].Cap}},
		"negative":    {{Name: "a", Size: -1, Cap: ok[0].Cap}},
		"NUL in name": {{Name: "a\x00", Cap: ok[0].Cap}},
	} {
		if _, err := encodeListing(es); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: encodeListing: %v", name, err)
		}
	}
	for name, bad := range map[string][]byte{
		"empty":       nil,
		"version 2":   append([]byte{2}, b[1:]...),
		"trailing":    append(bytes.Clone(b), 0),
		"truncated":   b[:len(b)-1],
		"bad flags":   func() []byte { c := bytes.Clone(b); c[2+1+1+1] = 0x80; return c }(),
		"huge count":  {1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"count short": {1, 2},
		"long varint": {1, 0x80, 0x00},
	} {
		if _, err := decodeListing(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: decodeListing: %v", name, err)
		}
	}
}

// FuzzDecodeListing: a listing that decodes encodes back to the same
// bytes; anything else is ErrMalformed, never a panic.
func FuzzDecodeListing(f *testing.F) {
	root := testCID(cid.DagProtobuf, "x")
	b, _ := encodeListing([]Entry{{Name: "a", Size: 3, Cap: Capability{Root: root, Key: Key{1}}}, {Name: "été", Cap: Capability{Root: root, Dir: true, Public: true}}})
	f.Add(b)
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 1, 1, 'a', 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := decodeListing(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		again, err := encodeListing(es)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("decoded %+v does not encode back: %v", es, err)
		}
	})
}
