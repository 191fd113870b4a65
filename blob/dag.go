package blob

import (
	"crypto/sha256"
	"fmt"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

// cidPrefix is the CID of the DAG's internal nodes: CIDv1, dag-pb,
// SHA-256 (Kubo's with --cid-version=1).
var cidPrefix = cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}

// rawLeaf returns a raw leaf block of data, hashing it once.
func rawLeaf(data []byte) blockformat.Block {
	sum := sha256.Sum256(data)
	h, err := mh.Encode(sum[:], mh.SHA2_256)
	if err != nil {
		panic("blob: multihash: " + err.Error()) // a fixed-size SHA-256 always encodes
	}
	b, err := blockformat.NewBlockWithCid(data, cid.NewCidV1(cid.Raw, h))
	if err != nil {
		panic("blob: block: " + err.Error())
	}
	return b
}

// dagChild is a node of the DAG as its parent links it.
type dagChild struct {
	c     cid.Cid
	tsize uint64 // the link's Tsize: the block's size plus all below it
	fsize uint64 // the UnixFS bytes under it (the blocksize entry)
}

// dagBuilder builds the balanced UnixFS layout of boxo's balanced.Layout
// (and Kubo's) from leaves given in order, keeping only the pending
// children of one node per level: levels[0] holds leaves, levels[k] nodes
// of depth k. A level's node is made once it is full and another child
// comes (so the last full node can still become the root), and at finish.
type dagBuilder struct {
	maxLinks int
	levels   [][]dagChild
	emit     func(blockformat.Block) error // each internal node, children first
}

func newDAGBuilder(maxLinks int, emit func(blockformat.Block) error) *dagBuilder {
	return &dagBuilder{maxLinks: maxLinks, emit: emit}
}

// addLeaf adds the next leaf, of size bytes.
func (b *dagBuilder) addLeaf(c cid.Cid, size int) error {
	return b.add(0, dagChild{c: c, tsize: uint64(size), fsize: uint64(size)})
}

func (b *dagBuilder) add(level int, ch dagChild) error {
	if level == len(b.levels) {
		b.levels = append(b.levels, make([]dagChild, 0, b.maxLinks))
	}
	if len(b.levels[level]) == b.maxLinks {
		n, err := b.node(b.levels[level])
		if err != nil {
			return err
		}
		b.levels[level] = b.levels[level][:0]
		if err := b.add(level+1, n); err != nil {
			return err
		}
	}
	b.levels[level] = append(b.levels[level], ch)
	return nil
}

// finish makes the remaining nodes and returns the root. With a single
// leaf, the leaf is the root.
func (b *dagBuilder) finish() (dagChild, error) {
	if len(b.levels) == 0 {
		return dagChild{}, fmt.Errorf("blob: a DAG without leaves")
	}
	if len(b.levels) == 1 && len(b.levels[0]) == 1 {
		return b.levels[0][0], nil
	}
	for k := 0; k < len(b.levels)-1; k++ {
		if len(b.levels[k]) == 0 {
			continue
		}
		n, err := b.node(b.levels[k])
		if err != nil {
			return dagChild{}, err
		}
		b.levels[k] = b.levels[k][:0]
		if err := b.add(k+1, n); err != nil {
			return dagChild{}, err
		}
	}
	return b.node(b.levels[len(b.levels)-1])
}

// node encodes an internal UnixFS file node over children, exactly as
// boxo's FSNodeOverDag.Commit does, and emits it.
func (b *dagBuilder) node(children []dagChild) (dagChild, error) {
	nd := new(dag.ProtoNode)
	if err := nd.SetCidBuilder(cidPrefix); err != nil {
		return dagChild{}, err
	}
	fsn := ft.NewFSNode(ft.TFile)
	tsize := uint64(0)
	for _, ch := range children {
		if err := nd.AddRawLink("", &ipld.Link{Size: ch.tsize, Cid: ch.c}); err != nil {
			return dagChild{}, err
		}
		fsn.AddBlockSize(ch.fsize)
		tsize += ch.tsize
	}
	data, err := fsn.GetBytes()
	if err != nil {
		return dagChild{}, err
	}
	nd.SetData(data)
	raw := nd.RawData()
	blk, err := blockformat.NewBlockWithCid(raw, nd.Cid())
	if err != nil {
		return dagChild{}, err
	}
	if err := b.emit(blk); err != nil {
		return dagChild{}, err
	}
	return dagChild{c: blk.Cid(), tsize: tsize + uint64(len(raw)), fsize: fsn.FileSize()}, nil
}
