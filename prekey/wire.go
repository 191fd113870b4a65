package prekey

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/internal/growbuf"
	"github.com/exopeer/exopeer/ratchet"
)

// Protocol is the protocol on which a peer asks a connected device for
// its current prekey bundle (doc.go has the bytes).
const Protocol protocol.ID = "/exopeer/prekeys/1.0.0"

// RecordName is the name of the DHT record that carries a device's
// bundle, under its peer ID: "/exo/<peer ID>/prekeys".
const RecordName = "prekeys"

const (
	// wireVersion is the first byte of a request and of an answer.
	wireVersion = 1
	// RequestSize is a request's size: its version byte.
	RequestSize = 1
	// answerHeader is an answer's version byte and its bundle's length.
	answerHeader = 1 + 2
	// MaxAnswerSize is the largest answer: its header and the largest
	// bundle.
	MaxAnswerSize = answerHeader + ratchet.MaxBundleSize
)

// ErrProtocol is the error of a request or an answer that breaks the
// protocol's framing.
var ErrProtocol = errors.New("prekey: protocol violation")

// writeRequest writes a request to w.
func writeRequest(w io.Writer) error {
	_, err := w.Write([]byte{wireVersion})
	return err
}

// readRequest reads a whole request from r, which must end after it (the
// asker closes its side once it has written it).
func readRequest(r io.Reader) error {
	var b [RequestSize + 1]byte
	n, err := io.ReadFull(r, b[:])
	switch {
	case n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF):
		return fmt.Errorf("empty request: %w", ErrProtocol)
	case n == RequestSize && err == io.ErrUnexpectedEOF:
	case err == nil:
		return fmt.Errorf("request longer than %d byte: %w", RequestSize, ErrProtocol)
	default:
		return err
	}
	if b[0] != wireVersion {
		return fmt.Errorf("request version %d: %w", b[0], ErrProtocol)
	}
	return nil
}

// encodeAnswer is the answer carrying bundle, an encoded bundle of at most
// ratchet.MaxBundleSize bytes.
func encodeAnswer(bundle []byte) []byte {
	out := make([]byte, 0, answerHeader+len(bundle))
	out = append(out, wireVersion)
	out = binary.BigEndian.AppendUint16(out, uint16(len(bundle)))
	return append(out, bundle...)
}

// readAnswer reads a whole answer from r, which must end after it, and
// returns the bundle's bytes (not decoded). It refuses a length over
// ratchet.MaxBundleSize before reading the bundle, and grows its buffer
// only as the bytes arrive.
func readAnswer(r io.Reader) ([]byte, error) {
	var h [answerHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("answer header cut short: %w", ErrProtocol)
		}
		return nil, err
	}
	if h[0] != wireVersion {
		return nil, fmt.Errorf("answer version %d: %w", h[0], ErrProtocol)
	}
	n := int(binary.BigEndian.Uint16(h[1:]))
	if n == 0 || n > ratchet.MaxBundleSize {
		return nil, fmt.Errorf("answer of %d bytes, want 1 to %d: %w", n, ratchet.MaxBundleSize, ErrProtocol)
	}
	b, err := growbuf.ReadFull(r, n, nil)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("answer cut short: %w", ErrProtocol)
		}
		return nil, err
	}
	var extra [1]byte
	switch k, err := io.ReadFull(r, extra[:]); {
	case k > 0:
		return nil, fmt.Errorf("bytes after the answer: %w", ErrProtocol)
	case err == io.EOF:
		return b, nil
	default:
		return nil, err
	}
}
