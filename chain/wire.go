package chain

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/growbuf"
)

// Sync messages. The package documentation describes them.
const (
	// MaxFrame bounds the body of one frame of a sync answer.
	MaxFrame = 4 << 20
	// maxDoneFrame bounds the body of a FrameDone: one uvarint.
	maxDoneFrame = binary.MaxVarintLen64
	// MaxVectorLen bounds the authors of a Vector on the wire.
	MaxVectorLen = 8192
	// MaxRequest bounds an encoded Request.
	MaxRequest = 16 + MaxVectorLen*(maxAuthorLen+12+len(Digest{}))
	// MaxAnnounce bounds an encoded Announce: it travels in one gossip
	// broadcast.
	MaxAnnounce = 7 << 10
	// maxBroadcast is gossip's limit: no announce is larger.
	maxBroadcast = 8 << 10
)

var (
	magicAnnounce = []byte("EXCA")
	magicRequest  = []byte("EXCQ")
)

// Frame kinds of a sync answer.
const (
	FrameEntries byte = 'E' // a batch of entry blocks
	FrameDone    byte = 'D' // the end: the sender's chain length
)

// Announce is what a node tells its cell about its chain, in gossip
// broadcasts and push/pull exchanges: its length and Vector. When the
// Vector does not fit in MaxAnnounce, it holds the authors with the latest
// entries and Partial is set.
type Announce struct {
	From    peer.ID
	Len     uint64
	Partial bool
	Vector  Vector
	Digests Digests // for the authors of Vector
}

// Request asks a member for the entries a node lacks: it sends its Vector
// (see State.Missing).
type Request struct {
	Len     uint64
	Vector  Vector
	Digests Digests // for the authors of Vector
}

type writer struct{ b []byte }

func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) bytes(v []byte)   { w.uvarint(uint64(len(v))); w.b = append(w.b, v...) }

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w sync message: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(limit int) []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(r.b)) {
		r.fail("field of %d bytes", n)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) magic(m []byte) {
	if !bytes.HasPrefix(r.b, m) {
		r.fail("not a %s message", m)
		return
	}
	r.b = r.b[len(m):]
}

func (r *reader) end() error {
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}

func (w *writer) vector(v Vector, d Digests, authors []peer.ID) {
	w.uvarint(uint64(len(authors)))
	for _, a := range authors {
		w.bytes([]byte(a))
		w.uvarint(v[a])
		dig := d[a]
		w.b = append(w.b, dig[:]...)
	}
}

// vector reads a Vector and its Digests: authors sorted and unique,
// sequence numbers >= 1.
func (r *reader) vector() (Vector, Digests) {
	n := r.uvarint()
	if n > MaxVectorLen || n > uint64(len(r.b)) {
		r.fail("vector of %d authors", n)
		return nil, nil
	}
	v := make(Vector, n)
	d := make(Digests, n)
	var last []byte
	for range n {
		a := r.bytes(maxAuthorLen)
		seq := r.uvarint()
		var dig Digest
		if r.err == nil && len(r.b) < len(dig) {
			r.fail("truncated digest")
		}
		if r.err != nil {
			return nil, nil
		}
		r.b = r.b[copy(dig[:], r.b):]
		if len(a) == 0 || seq == 0 || seq > maxCounter {
			r.fail("vector entry %d for an author of %d bytes", seq, len(a))
			return nil, nil
		}
		if last != nil && bytes.Compare(last, a) >= 0 {
			r.fail("vector authors not sorted or not unique")
			return nil, nil
		}
		last = a
		v[peer.ID(a)] = seq
		if dig != (Digest{}) {
			d[peer.ID(a)] = dig
		}
	}
	return v, d
}

func sortedAuthors(v Vector) []peer.ID {
	return slices.Sorted(maps.Keys(v))
}

// EncodeAnnounce encodes a, leaving out the authors that do not fit in
// MaxAnnounce: those of the lowest keep(author) first, and setting Partial.
// keep may be nil when a's Vector surely fits.
func EncodeAnnounce(a Announce, keep func(peer.ID) uint64) []byte {
	authors := sortedAuthors(a.Vector)
	const per = 12 + len(Digest{})
	size := 32 + len(a.From)
	for _, id := range authors {
		size += len(id) + per
	}
	partial := a.Partial
	if size > MaxAnnounce && keep != nil {
		slices.SortFunc(authors, func(x, y peer.ID) int { return cmp.Compare(keep(y), keep(x)) })
		n := 0
		for size = 32 + len(a.From); n < len(authors) && size+len(authors[n])+per <= MaxAnnounce; n++ {
			size += len(authors[n]) + per
		}
		authors = authors[:n]
		slices.Sort(authors)
		partial = true
	}
	w := writer{b: append(make([]byte, 0, size), magicAnnounce...)}
	w.bytes([]byte(a.From))
	w.uvarint(a.Len)
	if partial {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
	w.vector(a.Vector, a.Digests, authors)
	return w.b
}

// DecodeAnnounce parses what EncodeAnnounce made.
func DecodeAnnounce(b []byte) (Announce, error) {
	if len(b) > maxBroadcast {
		return Announce{}, fmt.Errorf("%w sync message: announce of %d bytes", ErrMalformed, len(b))
	}
	r := reader{b: b}
	r.magic(magicAnnounce)
	var a Announce
	from := r.bytes(maxAuthorLen)
	a.Len = r.uvarint()
	switch r.byte() {
	case 0:
	case 1:
		a.Partial = true
	default:
		r.fail("bad partial flag")
	}
	a.Vector, a.Digests = r.vector()
	if err := r.end(); err != nil {
		return Announce{}, err
	}
	if len(from) == 0 {
		return Announce{}, fmt.Errorf("%w sync message: announce from nobody", ErrMalformed)
	}
	a.From = peer.ID(from)
	return a, nil
}

// EncodeRequest encodes q.
func EncodeRequest(q Request) []byte {
	w := writer{b: append([]byte(nil), magicRequest...)}
	w.uvarint(q.Len)
	w.vector(q.Vector, q.Digests, sortedAuthors(q.Vector))
	return w.b
}

// DecodeRequest parses what EncodeRequest made.
func DecodeRequest(b []byte) (Request, error) {
	if len(b) > MaxRequest {
		return Request{}, fmt.Errorf("%w sync message: request of %d bytes", ErrMalformed, len(b))
	}
	r := reader{b: b}
	r.magic(magicRequest)
	q := Request{Len: r.uvarint()}
	q.Vector, q.Digests = r.vector()
	if err := r.end(); err != nil {
		return Request{}, err
	}
	return q, nil
}

// AppendFrame appends a frame: its kind, the body's length as a uvarint,
// the body.
func AppendFrame(b []byte, kind byte, body []byte) []byte {
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// EntriesBody encodes a batch of entry blocks as the body of a
// FrameEntries frame.
func EntriesBody(blocks [][]byte) []byte {
	n := 8
	for _, b := range blocks {
		n += len(b) + 4
	}
	w := writer{b: make([]byte, 0, n)}
	w.uvarint(uint64(len(blocks)))
	for _, b := range blocks {
		w.bytes(b)
	}
	return w.b
}

// DoneBody encodes the body of a FrameDone frame: the sender's chain
// length.
func DoneBody(length uint64) []byte { return binary.AppendUvarint(nil, length) }

// ErrFrameTooLarge is a frame over MaxFrame: the sender is cut off.
var ErrFrameTooLarge = errors.New("chain: sync frame too large")

// FrameReader is what ReadFrame reads from: a *bufio.Reader, say.
type FrameReader interface {
	io.Reader
	io.ByteReader
}

// ReadFrame reads one frame from r into buf (grown if need be) and returns
// its kind and body, which aliases buf. A body over its kind's limit is
// refused from its length alone, and buf grows only as the body's bytes
// arrive: a sender that announces a large frame and stalls costs a few KiB.
func ReadFrame(r FrameReader, buf []byte) (kind byte, body []byte, err error) {
	kind, err = r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	if kind != FrameEntries && kind != FrameDone {
		return 0, nil, fmt.Errorf("%w sync message: frame kind %q", ErrMalformed, kind)
	}
	n, err := ReadLength(r)
	if err == io.EOF {
		err = cutShort("frame length", io.ErrUnexpectedEOF)
	}
	if err != nil {
		return 0, nil, err
	}
	limit := uint64(MaxFrame)
	if kind == FrameDone {
		limit = maxDoneFrame
	}
	if n > limit {
		return 0, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, limit)
	}
	body, err = growbuf.ReadFull(r, int(n), buf)
	if err != nil {
		return 0, nil, cutShort("frame body", err)
	}
	return kind, body, nil
}

// ReadLength reads a uvarint length prefix. io.EOF: the stream ended
// before it. A varint longer than 64 bits, or a stream that ends inside
// it, is ErrMalformed; a failed read is returned as it is.
func ReadLength(r io.ByteReader) (uint64, error) {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i == 0 && err == io.EOF {
				return 0, io.EOF
			}
			return 0, cutShort("length", err)
		}
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w sync message: length overflows 64 bits", ErrMalformed)
}

// cutShort is the error of a read that failed in the middle of a frame:
// ErrMalformed if the sender ended its stream there, the read's own error
// if the stream failed (a reset, a closed connection, a deadline), which
// is no fault of the sender's.
func cutShort(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w sync message: %s: %v", ErrMalformed, what, err)
	}
	return fmt.Errorf("chain: sync message: %s: %w", what, err)
}

// DecodeEntries splits a FrameEntries body into entry blocks (aliasing
// body). It does not decode the entries.
func DecodeEntries(body []byte) ([][]byte, error) {
	r := reader{b: body}
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.fail("%d entries in %d bytes", n, len(r.b))
	}
	var out [][]byte
	for i := uint64(0); i < n && r.err == nil; i++ {
		out = append(out, r.bytes(MaxEntrySize))
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return out, nil
}

// DecodeDone parses a FrameDone body.
func DecodeDone(body []byte) (uint64, error) {
	r := reader{b: body}
	n := r.uvarint()
	return n, r.end()
}
