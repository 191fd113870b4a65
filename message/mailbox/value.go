package mailbox

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/exopeer/exopeer/message"
)

const (
	// MaxValue is the largest sealed value: a DHT record's value
	// (dht.MaxValueSize).
	MaxValue = 16 << 10

	// overhead is the AEAD's nonce and tag around the plaintext.
	overhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

	// MaxPlaintext is the largest entry list, padding included.
	MaxPlaintext = MaxValue - overhead

	// MaxEntries bounds the entries of one slot, frames and acks.
	MaxEntries = 64

	// MaxPeerID bounds the length of a device's peer ID in an entry (an
	// Ed25519 peer ID is 38 bytes).
	MaxPeerID = 64

	// entryHeader is what every entry starts with: kind and message ID.
	entryHeader = 1 + message.IDSize

	// MaxAck is the largest ack entry: kind, message ID, the
	// length-prefixed peer ID of MaxPeerID bytes of the acknowledging
	// device, its Ed25519 signature. With a 38-byte Ed25519 peer ID an
	// ack is 120 bytes: 64 (MaxEntries) fit an 8 KiB value.
	MaxAck = entryHeader + 1 + MaxPeerID + ed25519.SignatureSize

	// frameHeader is a frame entry's length without its frame, with both
	// peer IDs of MaxPeerID bytes: kind, message ID, two length-prefixed
	// peer IDs, the frame's length.
	frameHeader = 1 + message.IDSize + 1 + MaxPeerID + 1 + MaxPeerID + 2

	// listHeader is the list's version and count.
	listHeader = 2

	// MaxFrame is the largest frame one entry may hold: the whole list
	// with that entry alone, its peer IDs of MaxPeerID bytes.
	MaxFrame = MaxPlaintext - listHeader - frameHeader

	listVersion = 3
	adLabel     = "exopeer mailbox ad v1"
	ackLabel    = "exopeer mailbox ack v1"
)

// Buckets are the sealed value's possible lengths: the plaintext is padded
// with zeros to the smallest that holds it, so a value's length tells only
// which bucket its entries fell in.
var Buckets = [...]int{1 << 10, 2 << 10, 4 << 10, 8 << 10, MaxValue}

var (
	// ErrOpen means a value does not open under the slot's key and the
	// given sequence number: tampered, sealed for another slot or
	// sequence number, or not a value at all. It says nothing more.
	ErrOpen = errors.New("mailbox: value does not open")
	// ErrMalformed means an entry list is not in canonical form, or an
	// entry is not well formed. Only a holder of the pair's secret can
	// seal one that opens.
	ErrMalformed = errors.New("mailbox: malformed entry list")
	// ErrFull means entries do not fit one slot: more than MaxEntries, or
	// more than MaxPlaintext bytes. The writer uses the next index.
	ErrFull = errors.New("mailbox: entries do not fit a slot")
	// ErrBadAck means an ack entry is not signed by the device it names,
	// for the cells and message given (VerifyAck).
	ErrBadAck = errors.New("mailbox: ack not signed by its device")
)

// Kind says what an entry is.
type Kind byte

const (
	// KindFrame is an envelope: a frame one device of the writing cell
	// sealed for one device of the reading cell.
	KindFrame Kind = 1
	// KindAck says a device of the writing cell recorded the message of
	// that ID, which the reading cell sent, and signed so: its sender
	// records it delivered.
	KindAck Kind = 2
)

// Entry is one item left in a slot. A frame entry (KindFrame) holds the
// message's ID, the device that sealed it (From) and the device it is for
// (To), both of the cells of the slot's direction, and the frame
// (message.Frame's encoding, initial or session) From would have delivered
// to To directly, opaque here, 1 to MaxFrame bytes. An ack entry (KindAck)
// holds the ID of a message the writing cell recorded, the device of
// that cell that acknowledges it (From) and that device's Ed25519
// signature (Sig, Ack and VerifyAck); To and Frame are empty.
type Entry struct {
	Kind  Kind
	ID    message.ID
	From  peer.ID
	To    peer.ID
	Frame []byte
	Sig   []byte
}

// Frame returns a frame entry.
func Frame(id message.ID, from, to peer.ID, frame []byte) Entry {
	return Entry{Kind: KindFrame, ID: id, From: from, To: to, Frame: frame}
}

// ackSigned returns what an ack's signature covers (doc.go): the label,
// the acknowledging cell, the cell the message came from and its ID.
func ackSigned(acking, from ed25519.PublicKey, id message.ID) ([]byte, error) {
	if len(acking) != ed25519.PublicKeySize || len(from) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: cell keys of %d and %d bytes", ErrBadAck, len(acking), len(from))
	}
	b := make([]byte, 0, len(ackLabel)+1+2*ed25519.PublicKeySize+message.IDSize)
	b = append(append(b, ackLabel...), 0)
	b = append(append(append(b, acking...), from...), id[:]...)
	return b, nil
}

// Ack returns the ack entry of the message id that the cell from sent
// and the cell acking recorded, signed by key, the libp2p (Ed25519) key
// of the acknowledging device of acking, whose peer ID it names.
func Ack(key ed25519.PrivateKey, acking, from ed25519.PublicKey, id message.ID) (Entry, error) {
	if len(key) != ed25519.PrivateKeySize {
		return Entry{}, fmt.Errorf("%w: a device key of %d bytes", ErrBadAck, len(key))
	}
	msg, err := ackSigned(acking, from, id)
	if err != nil {
		return Entry{}, err
	}
	pub, err := crypto.UnmarshalEd25519PublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return Entry{}, fmt.Errorf("mailbox: device key: %w", err)
	}
	dev, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return Entry{}, fmt.Errorf("mailbox: device peer ID: %w", err)
	}
	return Entry{Kind: KindAck, ID: id, From: dev, Sig: ed25519.Sign(key, msg)}, nil
}

// VerifyAck checks that the ack entry e is signed by the Ed25519 key of
// the device it names (e.From), for the acknowledging cell acking, the
// cell from the message came from and e.ID; else ErrBadAck. Whether that
// device is one of acking's is the caller's to check.
func VerifyAck(e Entry, acking, from ed25519.PublicKey) error {
	if e.Kind != KindAck || len(e.Sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: not a signed ack", ErrBadAck)
	}
	msg, err := ackSigned(acking, from, e.ID)
	if err != nil {
		return err
	}
	pub, err := e.From.ExtractPublicKey()
	if err != nil || pub.Type() != crypto.Ed25519 {
		return fmt.Errorf("%w: the device's peer ID holds no Ed25519 key", ErrBadAck)
	}
	if ok, err := pub.Verify(msg, e.Sig); err != nil || !ok {
		return ErrBadAck
	}
	return nil
}

// size returns the entry's encoded length, or an error if it is not well
// formed (ErrMalformed) or its frame no slot holds (ErrFull).
func (e Entry) size() (int, error) {
	switch e.Kind {
	case KindAck:
		if e.To != "" || len(e.Frame) != 0 {
			return 0, fmt.Errorf("%w: an ack with a frame or a target device", ErrMalformed)
		}
		if err := checkPeer(e.From); err != nil {
			return 0, err
		}
		if len(e.Sig) != ed25519.SignatureSize {
			return 0, fmt.Errorf("%w: an ack signature of %d bytes", ErrMalformed, len(e.Sig))
		}
		return entryHeader + 1 + len(e.From) + ed25519.SignatureSize, nil
	case KindFrame:
		if len(e.Sig) != 0 {
			return 0, fmt.Errorf("%w: a frame with a signature", ErrMalformed)
		}
		for _, id := range []peer.ID{e.From, e.To} {
			if err := checkPeer(id); err != nil {
				return 0, err
			}
		}
		if len(e.Frame) == 0 || len(e.Frame) > MaxFrame {
			return 0, fmt.Errorf("%w: a frame of %d bytes, not within [1, %d]", ErrFull, len(e.Frame), MaxFrame)
		}
		return 1 + message.IDSize + 1 + len(e.From) + 1 + len(e.To) + 2 + len(e.Frame), nil
	default:
		return 0, fmt.Errorf("%w: entry kind %d", ErrMalformed, e.Kind)
	}
}

// checkPeer refuses a peer ID that is empty, over MaxPeerID bytes or not a
// peer ID's multihash.
func checkPeer(id peer.ID) error {
	if len(id) == 0 || len(id) > MaxPeerID {
		return fmt.Errorf("%w: a peer ID of %d bytes, not within [1, %d]", ErrMalformed, len(id), MaxPeerID)
	}
	if _, err := peer.IDFromBytes([]byte(id)); err != nil {
		return fmt.Errorf("%w: peer ID: %w", ErrMalformed, err)
	}
	return nil
}

// Size returns the length of entries' encoding before padding, or
// ErrFull if they do not fit a slot (ErrMalformed if an entry is not well
// formed). A writer appends an entry only if the list with it still fits.
func Size(entries []Entry) (int, error) {
	if len(entries) > MaxEntries {
		return 0, fmt.Errorf("%w: %d entries, the most is %d", ErrFull, len(entries), MaxEntries)
	}
	n := listHeader
	for _, e := range entries {
		m, err := e.size()
		if err != nil {
			return 0, err
		}
		n += m
	}
	if n > MaxPlaintext {
		return 0, fmt.Errorf("%w: %d bytes, the most is %d", ErrFull, n, MaxPlaintext)
	}
	return n, nil
}

// bucket returns the padded plaintext length for n bytes of entries.
func bucket(n int) int {
	for _, b := range Buckets {
		if n <= b-overhead {
			return b - overhead
		}
	}
	return -1
}

// EncodeEntries returns the padded plaintext of entries (doc.go). Entries
// must have distinct IDs, be well formed and fit (Size).
func EncodeEntries(entries []Entry) ([]byte, error) {
	n, err := Size(entries)
	if err != nil {
		return nil, err
	}
	seen := make(map[message.ID]bool, len(entries))
	for _, e := range entries {
		if seen[e.ID] {
			return nil, fmt.Errorf("%w: message %s twice", ErrMalformed, e.ID)
		}
		seen[e.ID] = true
	}
	b := make([]byte, 0, bucket(n))
	b = append(b, listVersion, byte(len(entries)))
	for _, e := range entries {
		b = append(b, byte(e.Kind))
		b = append(b, e.ID[:]...)
		b = append(append(b, byte(len(e.From))), e.From...)
		if e.Kind == KindAck {
			b = append(b, e.Sig...)
			continue
		}
		b = append(append(b, byte(len(e.To))), e.To...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.Frame)))
		b = append(b, e.Frame...)
	}
	return b[:cap(b)], nil // zero padding
}

// DecodeEntries parses a padded plaintext strictly: known version, at
// most MaxEntries, known kinds, every length checked against what is left
// before it is read, valid peer IDs, distinct IDs, a length that is a
// bucket's and zero padding. It does not verify the acks' signatures
// (VerifyAck). The frames and signatures alias b.
func DecodeEntries(b []byte) ([]Entry, error) {
	if bucket(len(b)) != len(b) {
		return nil, fmt.Errorf("%w: %d bytes is no bucket's length", ErrMalformed, len(b))
	}
	if b[0] != listVersion {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, b[0])
	}
	count := int(b[1])
	if count > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries, the most is %d", ErrMalformed, count, MaxEntries)
	}
	rest := b[listHeader:]
	entries := make([]Entry, 0, count)
	seen := make(map[message.ID]bool, count)
	for range count {
		if len(rest) < entryHeader {
			return nil, fmt.Errorf("%w: truncated entry", ErrMalformed)
		}
		e := Entry{Kind: Kind(rest[0])}
		copy(e.ID[:], rest[1:])
		rest = rest[entryHeader:]
		if e.Kind != KindAck && e.Kind != KindFrame {
			return nil, fmt.Errorf("%w: entry kind %d", ErrMalformed, e.Kind)
		}
		var err error
		if e.From, rest, err = decodePeer(rest); err != nil {
			return nil, err
		}
		switch e.Kind {
		case KindAck:
			if len(rest) < ed25519.SignatureSize {
				return nil, fmt.Errorf("%w: truncated ack signature", ErrMalformed)
			}
			e.Sig, rest = rest[:ed25519.SignatureSize:ed25519.SignatureSize], rest[ed25519.SignatureSize:]
		case KindFrame:
			if e.To, rest, err = decodePeer(rest); err != nil {
				return nil, err
			}
			if len(rest) < 2 {
				return nil, fmt.Errorf("%w: truncated entry", ErrMalformed)
			}
			n := int(binary.BigEndian.Uint16(rest))
			rest = rest[2:]
			if n == 0 || n > len(rest) {
				return nil, fmt.Errorf("%w: frame of %d bytes, %d left", ErrMalformed, n, len(rest))
			}
			e.Frame, rest = rest[:n:n], rest[n:]
		}
		if seen[e.ID] {
			return nil, fmt.Errorf("%w: message %s twice", ErrMalformed, e.ID)
		}
		seen[e.ID] = true
		entries = append(entries, e)
	}
	for _, c := range rest {
		if c != 0 {
			return nil, fmt.Errorf("%w: padding is not zero", ErrMalformed)
		}
	}
	if bucket(len(b)-len(rest)) != len(b) {
		return nil, fmt.Errorf("%w: padded past the smallest bucket", ErrMalformed)
	}
	return entries, nil
}

// decodePeer reads a length-prefixed peer ID off b.
func decodePeer(b []byte) (peer.ID, []byte, error) {
	if len(b) < 1 || int(b[0]) > len(b)-1 {
		return "", nil, fmt.Errorf("%w: truncated peer ID", ErrMalformed)
	}
	id := peer.ID(b[1 : 1+int(b[0])])
	if err := checkPeer(id); err != nil {
		return "", nil, err
	}
	return id, b[1+len(id):], nil
}

// errZeroSlot is a Slot not made by NewSlot: its value key is all zeros,
// which anyone can compute.
var errZeroSlot = fmt.Errorf("%w: not made by NewSlot", ErrBadSlot)

// ad is the associated data of a slot's value: the record key and the
// record's sequence number.
func (s Slot) ad(seq uint64) []byte {
	b := append([]byte(adLabel), 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.key)))
	b = append(b, s.key...)
	return binary.BigEndian.AppendUint64(b, seq)
}

// Seal returns the value of the slot's record of sequence number seq
// holding entries: XChaCha20-Poly1305 under the slot's key, a nonce read
// from rand, the record key and seq as associated data, the entries padded
// to a bucket (doc.go). An empty list is a slot emptied by its reader.
// It does not keep entries. A Slot not made by NewSlot is ErrBadSlot.
func (s Slot) Seal(entries []Entry, seq uint64, rand io.Reader) ([]byte, error) {
	if s.owner == nil {
		return nil, errZeroSlot
	}
	pt, err := EncodeEntries(entries)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(s.aead[:])
	if err != nil {
		return nil, fmt.Errorf("mailbox: aead: %w", err)
	}
	out := make([]byte, chacha20poly1305.NonceSizeX, len(pt)+overhead)
	if _, err := io.ReadFull(rand, out); err != nil {
		return nil, fmt.Errorf("mailbox: nonce: %w", err)
	}
	return aead.Seal(out, out, pt, s.ad(seq)), nil
}

// Open returns the entries of the slot's value found in a record of
// sequence number seq (dht.OpenRecord gives both). Anything that does not
// authenticate is ErrOpen, whatever the reason; a value over MaxValue is
// refused before anything is read. The frames are new slices. A Slot not
// made by NewSlot is ErrBadSlot.
func (s Slot) Open(value []byte, seq uint64) ([]Entry, error) {
	if s.owner == nil {
		return nil, errZeroSlot
	}
	if len(value) > MaxValue || len(value) < overhead+listHeader {
		return nil, ErrOpen
	}
	aead, err := chacha20poly1305.NewX(s.aead[:])
	if err != nil {
		return nil, fmt.Errorf("mailbox: aead: %w", err)
	}
	n := chacha20poly1305.NonceSizeX
	pt, err := aead.Open(nil, value[:n], value[n:], s.ad(seq))
	if err != nil {
		return nil, ErrOpen
	}
	return DecodeEntries(pt)
}

// Append returns held with the entries of add appended, in order, skipping
// those whose ID held (or an earlier entry of add) already has, while the
// list still fits a slot; left is what did not fit, for the next index,
// in order, without those skipped.
// An entry whose frame no slot can hold (empty, or over MaxFrame) is
// ErrFull, one not well formed ErrMalformed. Neither held nor add is changed; the frames are shared.
func Append(held []Entry, add ...Entry) (out, left []Entry, err error) {
	out = slices.Clone(held)
	n, err := Size(out)
	if err != nil {
		return nil, nil, err
	}
	have := make(map[message.ID]bool, len(out)+len(add))
	for _, e := range out {
		have[e.ID] = true
	}
	full := false
	for _, e := range add {
		m, err := e.size()
		if err != nil {
			return nil, nil, err
		}
		if have[e.ID] {
			continue
		}
		have[e.ID] = true
		// Once one entry does not fit, the rest go to left, in order.
		if full = full || len(out) == MaxEntries || n+m > MaxPlaintext; full {
			left = append(left, e)
			continue
		}
		out = append(out, e)
		n += m
	}
	return out, left, nil
}

// Without returns the entries of held that taken does not report, in
// order: what a reader writes back once it recorded the others. held is
// not changed.
func Without(held []Entry, taken func(message.ID) bool) []Entry {
	var out []Entry
	for _, e := range held {
		if !taken(e.ID) {
			out = append(out, e)
		}
	}
	return out
}
