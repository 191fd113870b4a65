package message

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Protocol is the libp2p protocol of message delivery (a protocol.ID in
// the shell).
const Protocol = "/exopeer/msg/1.0.0"

// FrameVersion is the version byte of every frame.
const FrameVersion = 1

// The kinds of frame.
const (
	// KindInitial: a ratchet initial header, then the first Double
	// Ratchet message (ratchet.ParseInitialHeader splits them).
	KindInitial byte = 1
	// KindSession: a Double Ratchet message of a session under way.
	KindSession byte = 2
	// KindAck: the message ID (16 bytes) recorded.
	KindAck byte = 3
	// KindRefusal: refused, with no detail.
	KindRefusal byte = 4
	// KindBusy: not now: the receiver's quotas turned the frame away
	// before opening it; nothing was recorded and the session is fine.
	KindBusy byte = 5
)

// MaxFrameBody bounds a frame's body: the largest initial header with
// PQXDH (1743 bytes) plus the ratchet's overhead (85) plus the largest
// envelope, rounded up.
const MaxFrameBody = 16 << 10

// Window is the most frames a stream of Protocol carries unanswered: a
// sender writes no more before an answer comes, and a receiver reads no
// more ahead of its answers (see the package doc, # Frames).
const Window = 32

// FrameHeader is the size of a frame's header: version (1), kind (1),
// body length (4).
const FrameHeader = 6

// ErrBadFrame is a frame that breaks the protocol.
var ErrBadFrame = errors.New("message: bad frame")

// Frame is one frame of Protocol.
type Frame struct {
	Kind byte
	Body []byte
}

// Ack returns the acknowledgement of the message id.
func Ack(id ID) Frame { return Frame{Kind: KindAck, Body: id[:]} }

// Refusal returns the refusal frame.
func Refusal() Frame { return Frame{Kind: KindRefusal} }

// Busy returns the busy frame.
func Busy() Frame { return Frame{Kind: KindBusy} }

// AckID returns the message ID an acknowledgement names.
func (f Frame) AckID() (ID, bool) {
	if f.Kind != KindAck || len(f.Body) != IDSize {
		return ID{}, false
	}
	return ID(f.Body), true
}

// check validates the kind and the body's length for it.
func (f Frame) check() error {
	n := len(f.Body)
	switch {
	case n > MaxFrameBody:
		return fmt.Errorf("%w: body of %d bytes, the most is %d", ErrBadFrame, n, MaxFrameBody)
	case f.Kind == KindInitial || f.Kind == KindSession:
		if n == 0 {
			return fmt.Errorf("%w: empty message", ErrBadFrame)
		}
	case f.Kind == KindAck:
		if n != IDSize {
			return fmt.Errorf("%w: acknowledgement of %d bytes", ErrBadFrame, n)
		}
	case f.Kind == KindRefusal || f.Kind == KindBusy:
		if n != 0 {
			return fmt.Errorf("%w: answer of kind %d with a body", ErrBadFrame, f.Kind)
		}
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrBadFrame, f.Kind)
	}
	return nil
}

// Encode returns f's encoding, or ErrBadFrame if it breaks the rules.
func (f Frame) Encode() ([]byte, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, FrameHeader+len(f.Body))
	b = append(b, FrameVersion, f.Kind)
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Body)))
	return append(b, f.Body...), nil
}

// DecodeHeader reads a frame's header (FrameHeader bytes) and returns its
// kind and the length of the body that follows, refusing (ErrBadFrame)
// another version, an unknown kind and a length over MaxFrameBody before
// anything is allocated for the body.
func DecodeHeader(h []byte) (kind byte, n int, err error) {
	if len(h) != FrameHeader {
		return 0, 0, fmt.Errorf("%w: header of %d bytes", ErrBadFrame, len(h))
	}
	if h[0] != FrameVersion {
		return 0, 0, fmt.Errorf("%w: version %d", ErrBadFrame, h[0])
	}
	size := binary.BigEndian.Uint32(h[2:])
	if size > MaxFrameBody {
		return 0, 0, fmt.Errorf("%w: body of %d bytes, the most is %d", ErrBadFrame, size, MaxFrameBody)
	}
	if h[1] < KindInitial || h[1] > KindBusy {
		return 0, 0, fmt.Errorf("%w: unknown kind %d", ErrBadFrame, h[1])
	}
	return h[1], int(size), nil
}

// NewFrame checks a frame read (its header decoded by DecodeHeader, then
// its body) and returns it; body is retained.
func NewFrame(kind byte, body []byte) (Frame, error) {
	f := Frame{Kind: kind, Body: body}
	if err := f.check(); err != nil {
		return Frame{}, err
	}
	return f, nil
}

// DecodeFrame decodes one whole frame, b exactly.
func DecodeFrame(b []byte) (Frame, error) {
	if len(b) < FrameHeader {
		return Frame{}, fmt.Errorf("%w: truncated header", ErrBadFrame)
	}
	kind, n, err := DecodeHeader(b[:FrameHeader])
	if err != nil {
		return Frame{}, err
	}
	if len(b)-FrameHeader != n {
		return Frame{}, fmt.Errorf("%w: body of %d bytes, the header says %d", ErrBadFrame, len(b)-FrameHeader, n)
	}
	return NewFrame(kind, b[FrameHeader:])
}
