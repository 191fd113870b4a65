package blob

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// ExportCAR writes the DAG under root to w as a CARv1 file: the header
// (dag-cbor {"roots": [root], "version": 1}) then, for each block of the
// DAG in Walk's order (the root first, each block once), a section uvarint
// length ‖ CID bytes ‖ block bytes. `ipfs dag import` reads it. It returns
// the blocks and bytes (of block data) written. Errors of g pass through.
func ExportCAR(ctx context.Context, w io.Writer, g BlockGetter, root cid.Cid) (blocks int, bytes int64, err error) {
	return exportCAR(ctx, w, root, func(visit func(blockformat.Block) error) error {
		return Walk(ctx, g, root, visit)
	})
}

// ExportTree is ExportCAR of the blob c with, for an encrypted directory,
// every block of the blobs it lists, recursively (WalkTree's blocks: a
// listing links its entries only in its ciphertext, so that the export of
// its DAG alone holds none of them). The root is c's.
func ExportTree(ctx context.Context, w io.Writer, g BlockGetter, c Capability) (blocks int, bytes int64, err error) {
	return exportCAR(ctx, w, c.Root, func(visit func(blockformat.Block) error) error {
		return WalkTree(ctx, g, c, visit)
	})
}

func exportCAR(ctx context.Context, w io.Writer, root cid.Cid, walk func(visit func(blockformat.Block) error) error) (blocks int, bytes int64, err error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.Write(carHeader(root)); err != nil {
		return 0, 0, fmt.Errorf("blob: car: %w", err)
	}
	var sec [binary.MaxVarintLen64]byte
	err = walk(func(b blockformat.Block) error {
		c, data := b.Cid().Bytes(), b.RawData()
		n := binary.PutUvarint(sec[:], uint64(len(c)+len(data)))
		for _, p := range [][]byte{sec[:n], c, data} {
			if _, err := bw.Write(p); err != nil {
				return fmt.Errorf("blob: car: %w", err)
			}
		}
		blocks++
		bytes += int64(len(data))
		return nil
	})
	if err != nil {
		return blocks, bytes, err
	}
	if err := bw.Flush(); err != nil {
		return blocks, bytes, fmt.Errorf("blob: car: %w", err)
	}
	return blocks, bytes, nil
}

// carHeader is the CARv1 header for one root: uvarint length, then the
// dag-cbor map {"roots": [root], "version": 1} in canonical order (shorter
// key first), the CID as tag 42 over its bytes with a 0x00 prefix.
func carHeader(root cid.Cid) []byte {
	c := append([]byte{0}, root.Bytes()...)
	var h []byte
	h = append(h, 0xa2)          // map of 2
	h = append(h, 0x65)          // text of 5
	h = append(h, "roots"...)    //
	h = append(h, 0x81)          // array of 1
	h = append(h, 0xd8, 0x2a)    // tag 42
	h = cborBytesHead(h, len(c)) // bytes
	h = append(h, c...)          //
	h = append(h, 0x67)          // text of 7
	h = append(h, "version"...)  //
	h = append(h, 0x01)          // 1
	out := binary.AppendUvarint(nil, uint64(len(h)))
	return append(out, h...)
}

// cborBytesHead appends the head of a CBOR byte string of n bytes.
func cborBytesHead(b []byte, n int) []byte {
	switch {
	case n < 24:
		return append(b, 0x40|byte(n))
	case n < 256:
		return append(b, 0x58, byte(n))
	default:
		return append(b, 0x59, byte(n>>8), byte(n))
	}
}
