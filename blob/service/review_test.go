package service_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	mh "github.com/multiformats/go-multihash"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// sealedFolder makes, by blob/doc.go's steps alone, the one-leaf blob of
// an encrypted listing whose entries are n subfolders named e0000… all
// with the capability sub (or none when sub is undefined), under key k.
func sealedFolder(t testing.TB, k blob.Key, n int, sub blob.Capability) (blockformat.Block, blob.Capability) {
	t.Helper()
	l := []byte{1}
	if !sub.Root.Defined() {
		n = 0
	}
	l = binary.AppendUvarint(l, uint64(n))
	for i := range n {
		name := fmt.Sprintf("e%04d", i)
		l = binary.AppendUvarint(l, uint64(len(name)))
		l = append(l, name...)
		l = binary.AppendUvarint(l, 0)
		l = append(l, 1) // a directory, sealed
		cb := sub.Root.Bytes()
		l = binary.AppendUvarint(l, uint64(len(cb)))
		l = append(l, cb...)
		l = append(l, sub.Key[:]...)
	}
	if len(l) > blob.SegmentSize {
		t.Fatalf("listing of %d bytes: one segment only here", len(l))
	}
	pk, err := hkdf.Key(sha256.New, k[:], nil, "exopeer blob v1 dir", 32)
	if err != nil {
		t.Fatal(err)
	}
	bc, _ := aes.NewCipher(pk)
	g, _ := cipher.NewGCM(bc)
	nonce := make([]byte, 12)
	nonce[11] = 1 // segment 0, the final one
	ct := g.Seal(nil, nonce, l, nil)
	sum := sha256.Sum256(ct)
	h, _ := mh.Encode(sum[:], mh.SHA2_256)
	b, err := blockformat.NewBlockWithCid(ct, cid.NewCidV1(cid.Raw, h))
	if err != nil {
		t.Fatal(err)
	}
	return b, blob.Capability{Root: b.Cid(), Key: k, Dir: true}
}

// TestFetchFolderBomb: a folder shared with a device may list the same
// subfolder many times, at every level (a few blocks of listings, each
// entry naming the level below): a fetch walked and pinned every path of
// the tree, 500^4 of them here, instead of each folder once.
func TestFetchFolderBomb(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 97)
	var c blob.Capability
	var bs []blockformat.Block
	for level := range 5 {
		var b blockformat.Block
		b, c = sealedFolder(t, blob.Key{byte(level + 1)}, 500, c)
		bs = append(bs, b)
	}
	if err := a.Blocks().PutMany(ctx, bs); err != nil {
		t.Fatal(err)
	}
	es, err := blob.ReadDir(ctx, a.Exchange().NewSession(ctx, blocks.SessionOptions{}), c)
	if err != nil || len(es) != 500 {
		t.Fatalf("the top listing: %d entries, %v", len(es), err)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	err = a.Blobs().Fetch(fctx, c, nil)
	if d := time.Since(start); err != nil || d > 15*time.Second {
		t.Fatalf("fetch of a folder of 5 listings: %v after %v", err, d)
	}
}

// TestFetchDuringGC: a collection that runs while a fetch stores blocks
// must not delete them. The fetch got its blocks unheld: a node of the DAG
// stored after a collection's mark, and its leaves, were swept, and the
// fetch still reported the DAG whole.
func TestFetchDuringGC(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 98)
	b := nodetest.Join(t, a, 99, cell.RoleChain, policy(service.PolicyNone))
	data := content(15, 200*blob.PublicLeafSize+3) // two levels of nodes
	im, err := a.Blobs().AddBlob(ctx, bytes.NewReader(data), service.AddOptions{Public: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Pins().Pin(ctx, im.Cap.Root, "manual"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := b.Blobs().GC(ctx); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
		}
	}()
	err = b.Blobs().Fetch(ctx, im.Cap, nil)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	// Every block of the DAG is on b.
	var missing int
	level := []cid.Cid{im.Cap.Root}
	for len(level) > 0 {
		var next []cid.Cid
		for _, c := range level {
			blk, err := b.Blocks().Get(ctx, c)
			if err != nil {
				missing++
				continue
			}
			ls, err := blob.Children(blk)
			if err != nil {
				t.Fatal(err)
			}
			next = append(next, ls...)
		}
		level = next
	}
	if missing > 0 {
		t.Fatalf("after a fetch with collections running, %d blocks of the pinned DAG are missing", missing)
	}
}

// carGetter is a BlockGetter over the blocks of a CAR file alone.
type carGetter map[cid.Cid]blockformat.Block

func (g carGetter) GetBlocks(_ context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	out := make([]blockformat.Block, len(cs))
	for i, c := range cs {
		b, ok := g[c]
		if !ok {
			return nil, fmt.Errorf("block %s not in the CAR", c)
		}
		out[i] = b
	}
	return out, nil
}

// TestExportFolder: the export of an encrypted folder given with its key
// holds the whole tree: its listing links its entries only in ciphertext,
// so an export of the listing's DAG alone had none of the files.
func TestExportFolder(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 100)
	dir := filepath.Join(t.TempDir(), "album")
	files := map[string][]byte{"one.jpg": content(16, 1<<20+5), "sub/two.md": []byte("two")}
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	im, err := a.Blobs().AddPath(ctx, dir, service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := a.Blobs().Export(ctx, &buf, im.Cap); err != nil {
		t.Fatal(err)
	}
	br, err := car.NewBlockReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	g := carGetter{}
	for {
		b, err := br.Next()
		if err != nil {
			break
		}
		g[b.Cid()] = b
	}
	var check func(c blob.Capability, prefix string)
	check = func(c blob.Capability, prefix string) {
		es, err := blob.ReadDir(ctx, g, c)
		if err != nil {
			t.Fatalf("list %q from the CAR: %v", prefix, err)
		}
		for _, e := range es {
			if e.Cap.Dir {
				check(e.Cap, prefix+e.Name+"/")
				continue
			}
			r, err := blob.Open(ctx, g, e.Cap, blob.ReaderOptions{})
			if err != nil {
				t.Fatalf("open %s%s from the CAR: %v", prefix, e.Name, err)
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, files[prefix+e.Name]) {
				t.Fatalf("read %s%s from the CAR: %v", prefix, e.Name, err)
			}
		}
	}
	check(im.Cap, "")
}
