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
//
// Only a length that overflows is a malformed message: a stream that
// fails while the length arrives (a deadline, a reset) fails the read
// with its own error.
func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	lr := lengthReader{r: r}
	n, err := binary.ReadUvarint(&lr)
	if err != nil {
		switch {
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		case lr.err != nil:
			return nil, fmt.Errorf("cell: read frame length: %w", err)
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

// lengthReader reads a frame's length and keeps the stream's error, which
// tells a failed read from a length that overflows.
type lengthReader struct {
	r   *bufio.Reader
	err error
}

func (l *lengthReader) ReadByte() (byte, error) {
	c, err := l.r.ReadByte()
	if err != nil {
		l.err = err
	}
	return c, err
}
