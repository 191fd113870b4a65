package blob

import (
	"errors"
	"testing"
	"testing/fstest"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

func TestWalk(t *testing.T) {
	// 174*174+3 small leaves: three levels, a level of more than 256.
	data := randomBytes(31, (174*174+3)*8)
	st, im := importBytes(t, data, ImportOptions{Public: true, leaf: 8})
	var got []blockformat.Block
	seen := map[cid.Cid]bool{}
	err := Walk(t.Context(), st, im.Cap.Root, func(b blockformat.Block) error {
		got = append(got, b)
		seen[b.Cid()] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Random 8-byte leaves are distinct: every block once.
	if len(got) != im.Blocks || len(seen) != st.len() || got[0].Cid() != im.Cap.Root {
		t.Fatalf("walked %d blocks (%d distinct), imported %d", len(got), len(seen), im.Blocks)
	}
	if m := st.maxLen.Load(); m != walkBatch {
		t.Fatalf("the largest GetBlocks asked %d CIDs, want %d", m, walkBatch)
	}
	for i := 1; i < len(got); i++ { // level by level: internal nodes before leaves
		if got[i-1].Cid().Type() == cid.Raw && got[i].Cid().Type() != cid.Raw {
			t.Fatalf("block %d is a node after a leaf", i)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := Walk(t.Context(), st, im.Cap.Root, func(blockformat.Block) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("visit's error: %v after %d", err, n)
	}
}

func TestChildren(t *testing.T) {
	leaf := rawLeaf([]byte("leaf"))
	if cs, err := Children(leaf); err != nil || cs != nil {
		t.Fatalf("Children of a raw leaf: %v, %v", cs, err)
	}
	node := fileNodeOver(t, []blockformat.Block{leaf, leaf}, []uint64{4, 4}, 0)
	if cs, err := Children(node); err != nil || len(cs) != 2 || cs[0] != leaf.Cid() {
		t.Fatalf("Children of a node: %v, %v", cs, err)
	}
	bad, _ := blockformat.NewBlockWithCid([]byte{0xff, 0x01}, cid.NewCidV1(cid.DagProtobuf, leaf.Cid().Hash()))
	if _, err := Children(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Children of junk: %v", err)
	}
}

// FuzzDecodeNode feeds arbitrary bytes as a dag-pb block of a file's DAG:
// decodeFileNode and Children refuse what is not a consistent UnixFS file
// node with ErrMalformed (or ErrIsDir), never panic, and a node they accept
// has as many sizes as links, adding up to its total.
func FuzzDecodeNode(f *testing.F) {
	leaf := rawLeaf([]byte("leaf"))
	f.Add(fileNodeOver(&testing.T{}, []blockformat.Block{leaf, leaf}, []uint64{4, 4}, 0).RawData())
	f.Add(fileNodeOver(&testing.T{}, []blockformat.Block{leaf}, []uint64{5}, 0).RawData())
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := blockformat.NewBlockWithCid(data, cid.NewCidV1(cid.DagProtobuf, leaf.Cid().Hash()))
		if err != nil {
			t.Skip()
		}
		if _, err := Children(b); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Children: %v", err)
		}
		n, err := decodeFileNode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrIsDir) {
				t.Fatalf("decodeFileNode: %v", err)
			}
			return
		}
		sum := uint64(len(n.data))
		for _, s := range n.sizes {
			sum += s
		}
		if len(n.sizes) != len(n.links) || sum != n.total {
			t.Fatalf("accepted a node whose sizes do not add up: %+v", n)
		}
	})
}

func TestWalkTree(t *testing.T) {
	for _, o := range []ImportOptions{{}, {Public: true}, {Secret: []byte("cell")}} {
		st := newMemBlocks()
		tree := testTree()
		tree["docs/copy.txt"] = &fstest.MapFile{Data: []byte("hello")} // the same as a.txt
		im, err := ImportDir(t.Context(), tree, st, o)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[cid.Cid]int{}
		err = WalkTree(t.Context(), st, im.Cap, func(b blockformat.Block) error {
			seen[b.Cid()]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != st.len() {
			t.Fatalf("public %v: walked %d blocks, the tree has %d", o.Public, len(seen), st.len())
		}
		for c, n := range seen {
			if n != 1 {
				t.Fatalf("block %s visited %d times", c, n)
			}
		}
	}
}
