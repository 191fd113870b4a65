package message

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
)

// Caps and versions of the envelope (doc.go has the layout).
const (
	// EnvelopeVersion is the version byte of an envelope delivered by
	// the device that wrote it; EnvelopeVersionCourier that of one
	// delivered by another device of its cell (it names its author).
	EnvelopeVersion        = 2
	EnvelopeVersionCourier = 3
	// IDSize is the size of a message ID.
	IDSize = 16
	// MaxText is the longest text of a message, in bytes of UTF-8.
	MaxText = 4096
	// MaxEnvelope is the longest encoded envelope.
	MaxEnvelope = 1 + IDSize + 2*ed25519.PublicKeySize + 2*(1+contact.MaxPeerIDLen) + 8 + 8 + 2 + MaxText + 1 + 2 + contact.MaxDeviceListLen + maxAttachment
)

// Errors of envelopes.
var (
	// ErrBadEnvelope is an envelope that does not decode or breaks a rule.
	ErrBadEnvelope = errors.New("message: malformed envelope")
	// ErrTooLong is a text over MaxText.
	ErrTooLong = errors.New("message: text too long")
	// ErrBadID is a message ID that does not parse.
	ErrBadID = errors.New("message: bad message id")
)

// ID names a message: 16 random bytes the sending device draws.
type ID [IDSize]byte

// String returns the ID's 32 lowercase hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses what String makes.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return ID{}, fmt.Errorf("%q is not 32 hex digits: %w", s, ErrBadID)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("%q: %w", s, ErrBadID)
	}
	return id, nil
}

// Envelope is what a message carries inside the ratchet: who sent it,
// when, where it goes in the conversation's order, its text, and the
// sender cell's device list when it changed.
type Envelope struct {
	ID ID
	// Cell is the sender's cell key; Device the sending device (the
	// courier: the stream's device, on the cell's current list).
	Cell   ed25519.PublicKey
	Device peer.ID
	// Author is the device of the cell that wrote the message, which
	// its order key names: Device, or another device of the cell that
	// Device delivers for (it may have left the cell since). Empty means
	// Device; DecodeEnvelope always sets it.
	Author peer.ID
	// To is the key of the cell the message is for: a device may be on
	// the lists of more than one cell (any cell can sign a list naming
	// any peer ID), so the receiver checks it is its own.
	To ed25519.PublicKey
	// Sent is the sending device's time, Unix milliseconds (>= 0), never
	// lower than that of its previous message; Seq the device's counter
	// of the messages it sent. Together with Author they are the order key.
	Sent int64
	Seq  uint64
	// Text is 1 to MaxText bytes of UTF-8.
	Text string
	// Devices is the sender cell's signed device list, or nil: sent when
	// it changed since the last message to the receiving device. It is
	// the sender's cell's and names Device.
	Devices *contact.DeviceList
	// File is the file the message shares, or nil (versions 5 and 6).
	File *Attachment
}

// check validates e's fields.
func (e *Envelope) check() error {
	switch {
	case len(e.Text) > MaxText:
		return fmt.Errorf("%w: %d bytes, the most is %d", ErrTooLong, len(e.Text), MaxText)
	case e.Text == "":
		return fmt.Errorf("%w: no text", ErrBadEnvelope)
	case !utf8.ValidString(e.Text):
		return fmt.Errorf("%w: text is not UTF-8", ErrBadEnvelope)
	case len(e.Cell) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: cell key of %d bytes", ErrBadEnvelope, len(e.Cell))
	case len(e.To) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: recipient cell key of %d bytes", ErrBadEnvelope, len(e.To))
	case len(e.Device) == 0 || len(e.Device) > contact.MaxPeerIDLen:
		return fmt.Errorf("%w: device ID of %d bytes", ErrBadEnvelope, len(e.Device))
	case e.Sent < 0:
		return fmt.Errorf("%w: negative time", ErrBadEnvelope)
	}
	if _, err := peer.IDFromBytes([]byte(e.Device)); err != nil {
		return fmt.Errorf("%w: device is not a peer ID", ErrBadEnvelope)
	}
	if e.Author != "" && e.Author != e.Device {
		if len(e.Author) > contact.MaxPeerIDLen {
			return fmt.Errorf("%w: author ID of %d bytes", ErrBadEnvelope, len(e.Author))
		}
		if _, err := peer.IDFromBytes([]byte(e.Author)); err != nil {
			return fmt.Errorf("%w: author is not a peer ID", ErrBadEnvelope)
		}
	}
	if e.File != nil {
		if err := e.File.Check(); err != nil {
			return err
		}
	}
	if l := e.Devices; l != nil {
		if !bytes.Equal(l.Cell, e.Cell) {
			return fmt.Errorf("%w: device list of another cell", ErrBadEnvelope)
		}
		if !l.Has(e.Device) {
			return fmt.Errorf("%w: device list without the sending device", ErrBadEnvelope)
		}
	}
	return nil
}

// Encode returns e's encoding, or an error if a field breaks a rule
// (ErrTooLong for a long text, ErrBadEnvelope otherwise).
func (e *Envelope) Encode() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 192+len(e.Text))
	courier := e.Author != "" && e.Author != e.Device
	switch {
	case courier && e.File != nil:
		b = append(b, EnvelopeVersionFileCourier)
	case e.File != nil:
		b = append(b, EnvelopeVersionFile)
	case courier:
		b = append(b, EnvelopeVersionCourier)
	default:
		b = append(b, EnvelopeVersion)
	}
	b = append(b, e.ID[:]...)
	b = append(b, e.Cell...)
	b = append(b, e.To...)
	b = append(b, byte(len(e.Device)))
	b = append(b, e.Device...)
	if courier {
		b = append(b, byte(len(e.Author)))
		b = append(b, e.Author...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(e.Sent))
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Text)))
	b = append(b, e.Text...)
	if e.Devices == nil {
		b = append(b, 0)
	} else {
		l := e.Devices.Encode()
		b = append(b, 1)
		b = binary.BigEndian.AppendUint16(b, uint16(len(l)))
		b = append(b, l...)
	}
	if e.File != nil {
		b = e.File.appendTo(b)
	}
	return b, nil
}

// DecodeEnvelope parses an envelope and checks its rules, the device
// list's signature included. Every error wraps ErrBadEnvelope (or
// ErrTooLong). b is not retained.
func DecodeEnvelope(b []byte) (*Envelope, error) {
	if len(b) > MaxEnvelope {
		return nil, fmt.Errorf("%w: %d bytes, the most is %d", ErrBadEnvelope, len(b), MaxEnvelope)
	}
	d := decoder{b: b}
	v := d.u8()
	var courier, file bool
	switch v {
	case EnvelopeVersion:
	case EnvelopeVersionCourier:
		courier = true
	case EnvelopeVersionFile:
		file = true
	case EnvelopeVersionFileCourier:
		courier, file = true, true
	default:
		return nil, fmt.Errorf("%w: unknown version", ErrBadEnvelope)
	}
	e := &Envelope{}
	copy(e.ID[:], d.take(IDSize))
	e.Cell = ed25519.PublicKey(bytes.Clone(d.take(ed25519.PublicKeySize)))
	e.To = ed25519.PublicKey(bytes.Clone(d.take(ed25519.PublicKeySize)))
	e.Device = peer.ID(d.take(d.u8()))
	e.Author = e.Device
	if courier {
		e.Author = peer.ID(d.take(d.u8()))
		if e.Author == e.Device {
			// One encoding per envelope: a device's own message is version 2 (5).
			return nil, fmt.Errorf("%w: courier version naming the courier as author", ErrBadEnvelope)
		}
	}
	e.Sent = int64(d.u64())
	e.Seq = d.u64()
	n := d.u16()
	if n > MaxText {
		return nil, fmt.Errorf("%w: text of %d bytes", ErrTooLong, n)
	}
	e.Text = string(d.take(n))
	switch d.u8() {
	case 0:
	case 1:
		raw := d.take(d.u16())
		if d.bad {
			break
		}
		l, err := contact.DecodeDeviceList(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadEnvelope, err)
		}
		e.Devices = l
	default:
		return nil, fmt.Errorf("%w: bad device list flag", ErrBadEnvelope)
	}
	if file && !d.bad {
		e.File = readAttachment(&d)
	}
	if d.bad || len(d.b) != 0 {
		return nil, fmt.Errorf("%w: wrong length", ErrBadEnvelope)
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	if len(e.Author) == 0 {
		return nil, fmt.Errorf("%w: no author", ErrBadEnvelope)
	}
	return e, nil
}

// Writer returns the device that wrote the message: Author, or Device
// if Author is empty.
func (e *Envelope) Writer() peer.ID {
	if e.Author != "" {
		return e.Author
	}
	return e.Device
}

// decoder reads big-endian fields; a short read sets bad and returns
// zeros, so one check at the end covers every field.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) take(n int) []byte {
	if d.bad || n > len(d.b) {
		d.bad = true
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() int     { return int(d.take(1)[0]) }
func (d *decoder) u16() int    { return int(binary.BigEndian.Uint16(d.take(2))) }
func (d *decoder) u64() uint64 { return binary.BigEndian.Uint64(d.take(8)) }
