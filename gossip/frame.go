package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/exopeer/exopeer/internal/growbuf"
)

// Wire constants; the package documentation describes the format.
const (
	// headerVersion is the first byte of every stream: the format's magic
	// and version in one.
	headerVersion byte = 0xE1
	// headerSize is the stream header: version byte and cell tag.
	headerSize = 1 + 8
	// MaxPacketSize is the largest packet payload accepted or sent.
	MaxPacketSize = 64 << 10
	// packetLenSize is the size of a packet's length prefix.
	packetLenSize = 4
	// MaxStreamSize bounds what is read from one memberlist stream, after
	// its header. A stream carries one push/pull state exchange or one
	// fallback ping each way; a push/pull of a full cell (1,024 members of
	// about 450 bytes each, the application state, encryption) is about
	// 0.5 MiB. memberlist itself would buffer up to 20 MiB.
	MaxStreamSize = 2 << 20
)

// Errors of the frame readers.
var (
	ErrBadHeader      = errors.New("gossip: bad stream header")
	ErrPacketTooLarge = errors.New("gossip: packet too large")
	ErrStreamTooLarge = errors.New("gossip: stream too large")
)

// appendHeader appends the stream header for tag to b.
func appendHeader(b []byte, tag [8]byte) []byte {
	b = append(b, headerVersion)
	return append(b, tag[:]...)
}

// readHeader reads a stream header and checks it against tag.
func readHeader(r io.Reader, tag [8]byte) error {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return fmt.Errorf("gossip: read stream header: %w", err)
	}
	if h[0] != headerVersion {
		return fmt.Errorf("%w: version byte %#x", ErrBadHeader, h[0])
	}
	if [8]byte(h[1:]) != tag {
		return fmt.Errorf("%w: another cell's tag", ErrBadHeader)
	}
	return nil
}

// appendPacket appends a whole packet stream (header, length, payload) to
// b. The payload must not be longer than MaxPacketSize.
func appendPacket(b []byte, tag [8]byte, payload []byte) []byte {
	b = appendHeader(b, tag)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// readPacket reads a packet stream: its header, checked against tag, and
// its payload of 1 to MaxPacketSize bytes. It reads nothing past the
// payload.
func readPacket(r io.Reader, tag [8]byte) ([]byte, error) {
	if err := readHeader(r, tag); err != nil {
		return nil, err
	}
	return readPacketBody(r)
}

// readPacketBody reads what follows a packet stream's header: the length
// and the payload. The payload's buffer grows as its bytes arrive, not
// from the length alone.
func readPacketBody(r io.Reader) ([]byte, error) {
	var l [packetLenSize]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, fmt.Errorf("gossip: read packet length: %w", err)
	}
	n := binary.BigEndian.Uint32(l[:])
	switch {
	case n == 0:
		return nil, fmt.Errorf("%w: empty packet", ErrBadHeader)
	case n > MaxPacketSize:
		return nil, fmt.Errorf("%w: %d bytes", ErrPacketTooLarge, n)
	}
	buf, err := growbuf.ReadFull(r, int(n), nil)
	if err != nil {
		return nil, fmt.Errorf("gossip: read packet: %w", err)
	}
	return buf, nil
}
