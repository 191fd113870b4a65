package blob

import (
	"fmt"
	"math"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// Bounds on what a DAG may be; anything past them is ErrMalformed.
const (
	// maxNodeLinks is the most links a node may have (we make 174; other
	// UnixFS importers use up to a few thousand).
	maxNodeLinks = 8192
	// maxDepth is the deepest a file's DAG may be: 174-link nodes reach
	// 2^64 bytes well before.
	maxDepth = 32
	// maxBlock is the largest block the format reads (bitswap's limit).
	maxBlock = 2 << 20
)

// fileNode is a decoded UnixFS file node: inline data, then its children
// in order, each holding sizes[i] bytes of the file.
type fileNode struct {
	data  []byte
	links []cid.Cid
	sizes []uint64
	total uint64 // len(data) + sum(sizes)
}

// decodeFileNode decodes a block of a file's DAG: a raw leaf, or a dag-pb
// UnixFS node of type File or Raw whose block sizes add up. Errors wrap
// ErrMalformed (ErrIsDir for a directory).
func decodeFileNode(b blockformat.Block) (*fileNode, error) {
	raw := b.RawData()
	if len(raw) > maxBlock {
		return nil, fmt.Errorf("block %s of %d bytes: %w", b.Cid(), len(raw), ErrMalformed)
	}
	switch b.Cid().Type() {
	case cid.Raw:
		return &fileNode{data: raw, total: uint64(len(raw))}, nil
	case cid.DagProtobuf:
	default:
		return nil, fmt.Errorf("block %s: codec %#x: %w", b.Cid(), b.Cid().Type(), ErrMalformed)
	}
	pn, err := dag.DecodeProtobuf(raw)
	if err != nil {
		return nil, fmt.Errorf("block %s: dag-pb: %v: %w", b.Cid(), err, ErrMalformed)
	}
	fsn, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil {
		return nil, fmt.Errorf("block %s: unixfs: %v: %w", b.Cid(), err, ErrMalformed)
	}
	switch fsn.Type() {
	case ft.TFile, ft.TRaw:
	case ft.TDirectory, ft.THAMTShard:
		return nil, fmt.Errorf("block %s: %w", b.Cid(), ErrIsDir)
	default:
		return nil, fmt.Errorf("block %s: unixfs type %v: %w", b.Cid(), fsn.Type(), ErrMalformed)
	}
	links := pn.Links()
	sizes := fsn.BlockSizes()
	if len(links) != len(sizes) || len(links) > maxNodeLinks {
		return nil, fmt.Errorf("block %s: %d links, %d block sizes: %w", b.Cid(), len(links), len(sizes), ErrMalformed)
	}
	n := &fileNode{data: fsn.Data(), links: make([]cid.Cid, len(links)), sizes: sizes}
	n.total = uint64(len(n.data))
	for i, l := range links {
		n.links[i] = l.Cid
		if sizes[i] > math.MaxInt64-n.total {
			return nil, fmt.Errorf("block %s: sizes overflow: %w", b.Cid(), ErrMalformed)
		}
		n.total += sizes[i]
	}
	if len(links) > 0 || fsn.Type() == ft.TFile {
		// A file node states its size; it must be what its parts add up to.
		if fs := fsn.FileSize(); fs != n.total {
			return nil, fmt.Errorf("block %s: file size %d, parts %d: %w", b.Cid(), fs, n.total, ErrMalformed)
		}
	}
	return n, nil
}

// Children returns the links of a dag-pb node in order, or nil for a raw
// leaf. Errors wrap ErrMalformed.
func Children(b blockformat.Block) ([]cid.Cid, error) {
	switch b.Cid().Type() {
	case cid.Raw:
		return nil, nil
	case cid.DagProtobuf:
	default:
		return nil, fmt.Errorf("block %s: codec %#x: %w", b.Cid(), b.Cid().Type(), ErrMalformed)
	}
	if len(b.RawData()) > maxBlock {
		return nil, fmt.Errorf("block %s of %d bytes: %w", b.Cid(), len(b.RawData()), ErrMalformed)
	}
	pn, err := dag.DecodeProtobuf(b.RawData())
	if err != nil {
		return nil, fmt.Errorf("block %s: dag-pb: %v: %w", b.Cid(), err, ErrMalformed)
	}
	ls := pn.Links()
	if len(ls) > maxNodeLinks {
		return nil, fmt.Errorf("block %s: %d links: %w", b.Cid(), len(ls), ErrMalformed)
	}
	out := make([]cid.Cid, len(ls))
	for i, l := range ls {
		out[i] = l.Cid
	}
	return out, nil
}
