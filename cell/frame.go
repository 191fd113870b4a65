package cell

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/exopeer/exopeer/cell/core"
	"github.com/exopeer/exopeer/internal/growbuf"
)

// Frames carry the messages of the join and roster protocols (package
// cell/core encodes them): a uvarint length, then that many bytes.

func writeFrame(w io.Writer, b []byte) error {
	buf := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen64), uint64(len(b)))
	_, err := w.Write(append(buf, b...))
	return err
}

// readFrame reads one frame of at most limit bytes (one of core's
// Max*Frame caps). A longer frame is refused from its length alone; the
// buffer grows as the bytes arrive, so a peer that announces a large frame
// and sends nothing costs next to no memory.
func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: frame length: %w", core.ErrBadMessage, err)
	}
	if n == 0 || n > uint64(limit) {
		return nil, fmt.Errorf("%w: frame of %d bytes, limit %d", core.ErrBadMessage, n, limit)
	}
	b, err := growbuf.ReadFull(r, int(n), nil)
	if err != nil {
		return nil, fmt.Errorf("cell: read frame: %w", err)
	}
	return b, nil
}
