package contact

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Caps on a device list, checked by Sign, Verify and the decoder.
const (
	// MaxDevices is the most devices a device list names (a cell's
	// roster holds at most 1024 members; a contact needs far fewer).
	MaxDevices = 64
	// MaxPeerIDLen is the longest peer ID in bytes (an Ed25519 peer ID
	// is 38).
	MaxPeerIDLen = 64
	// MailboxKeyLen is the length of a cell's mailbox key (X25519).
	MailboxKeyLen = 32
	// MaxDeviceListLen is the longest encoded device list.
	MaxDeviceListLen = 5 + ed25519.PublicKeySize + 10 + 2 + MaxDevices*(1+MaxPeerIDLen) + 1 + MailboxKeyLen + 1 + ed25519.SignatureSize
)

// deviceListMagic starts a device list's encoding, deviceListMagic2 one
// with a mailbox key; deviceListContext starts the message its signature
// covers (domain separation from the roster's and every other use of the
// cell key), for both versions: the signed body starts with the magic.
const (
	deviceListMagic   = "EXD1"
	deviceListMagic2  = "EXD2"
	deviceListContext = "exopeer contact device list v1\x00"
)

// Errors of device lists.
var (
	ErrBadDeviceList = errors.New("contact: malformed device list")
	ErrBadSignature  = errors.New("contact: device list signature does not verify")
	ErrOtherCell     = errors.New("contact: device list of another cell")
	ErrStale         = errors.New("contact: device list is older than the one held")
	ErrConflict      = errors.New("contact: two different device lists with the same version (the cell key signed both)")
	ErrNoMailbox     = errors.New("contact: device list has no mailbox key")
)

// DeviceList is a cell's signed list of the devices (peer IDs) that take
// messages for it. The cell key signs it; its version is the version of
// the roster it was made from, so it only grows.
type DeviceList struct {
	Cell    ed25519.PublicKey
	Version uint64
	Devices []peer.ID // sorted by bytes, unique
	// Mailbox is the cell's X25519 mailbox public key of its current key
	// epoch (cell/core Secret.MailboxKey; package message/mailbox), 32
	// bytes, or nil: a list without one encodes as version 1.
	Mailbox []byte
	Sig     []byte // Ed25519 by Cell over deviceListContext || body
}

// NewDeviceList returns the unsigned list of devices, sorted and
// deduplicated; devices is not retained.
func NewDeviceList(cell ed25519.PublicKey, version uint64, devices []peer.ID) *DeviceList {
	ds := slices.Clone(devices)
	slices.Sort(ds)
	ds = slices.Compact(ds)
	return &DeviceList{Cell: slices.Clone(cell), Version: version, Devices: ds}
}

// Has reports whether id is on the list.
func (l *DeviceList) Has(id peer.ID) bool {
	_, ok := slices.BinarySearch(l.Devices, id)
	return ok
}

// MailboxKey returns the cell's mailbox public key, or ErrNoMailbox for
// a version 1 list.
func (l *DeviceList) MailboxKey() (*ecdh.PublicKey, error) {
	if l.Mailbox == nil {
		return nil, ErrNoMailbox
	}
	k, err := ecdh.X25519().NewPublicKey(l.Mailbox)
	if err != nil {
		return nil, fmt.Errorf("%w: mailbox key: %w", ErrBadDeviceList, err)
	}
	return k, nil
}

// body encodes everything the signature covers: version 1 without a
// mailbox key, version 2 with one.
func (l *DeviceList) body() []byte {
	b := make([]byte, 0, 100+len(l.Devices)*40)
	if l.Mailbox == nil {
		b = append(b, deviceListMagic...)
	} else {
		b = append(b, deviceListMagic2...)
	}
	b = appendBytes(b, l.Cell)
	b = binary.AppendUvarint(b, l.Version)
	b = binary.AppendUvarint(b, uint64(len(l.Devices)))
	for _, d := range l.Devices {
		b = appendBytes(b, []byte(d))
	}
	if l.Mailbox != nil {
		b = appendBytes(b, l.Mailbox)
	}
	return b
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// Encode returns the list's wire form: the signed body, then the
// signature (doc.go has the layout).
func (l *DeviceList) Encode() []byte { return appendBytes(l.body(), l.Sig) }

// Sign checks the list's form and signs it with the cell's private key.
func (l *DeviceList) Sign(key ed25519.PrivateKey) error {
	if !bytes.Equal(key.Public().(ed25519.PublicKey), l.Cell) {
		return fmt.Errorf("%w: signing key is not the list's cell key", ErrBadDeviceList)
	}
	if err := l.check(); err != nil {
		return err
	}
	l.Sig = ed25519.Sign(key, append([]byte(deviceListContext), l.body()...))
	return nil
}

// Verify checks the list's form and its signature by its own cell key.
// Whether that is the expected cell is the caller's check.
func (l *DeviceList) Verify() error {
	if err := l.check(); err != nil {
		return err
	}
	if len(l.Sig) != ed25519.SignatureSize || !ed25519.Verify(l.Cell, append([]byte(deviceListContext), l.body()...), l.Sig) {
		return ErrBadSignature
	}
	return nil
}

// check validates everything but the signature.
func (l *DeviceList) check() error {
	if len(l.Cell) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: cell key of %d bytes, want %d", ErrBadDeviceList, len(l.Cell), ed25519.PublicKeySize)
	}
	if len(l.Devices) == 0 {
		return fmt.Errorf("%w: no devices", ErrBadDeviceList)
	}
	if l.Mailbox != nil && len(l.Mailbox) != MailboxKeyLen {
		return fmt.Errorf("%w: mailbox key of %d bytes, want %d", ErrBadDeviceList, len(l.Mailbox), MailboxKeyLen)
	}
	if len(l.Devices) > MaxDevices {
		return fmt.Errorf("%w: %d devices, more than %d", ErrBadDeviceList, len(l.Devices), MaxDevices)
	}
	for i, d := range l.Devices {
		if len(d) > MaxPeerIDLen {
			return fmt.Errorf("%w: device %d: peer ID of %d bytes, more than %d", ErrBadDeviceList, i, len(d), MaxPeerIDLen)
		}
		if err := d.Validate(); err != nil {
			return fmt.Errorf("%w: device %d: %w", ErrBadDeviceList, i, err)
		}
		if _, err := peer.IDFromBytes([]byte(d)); err != nil {
			return fmt.Errorf("%w: device %d: not a peer ID", ErrBadDeviceList, i)
		}
		if i > 0 && l.Devices[i-1] >= d {
			return fmt.Errorf("%w: devices not sorted or not unique", ErrBadDeviceList)
		}
	}
	return nil
}

// DecodeDeviceList parses a device list's wire form and checks its form
// and its signature. Every error wraps ErrBadDeviceList or
// ErrBadSignature.
func DecodeDeviceList(b []byte) (*DeviceList, error) {
	if len(b) > MaxDeviceListLen {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadDeviceList, len(b), MaxDeviceListLen)
	}
	l, rest, err := decodeDeviceList(b)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the end", ErrBadDeviceList, len(rest))
	}
	return l, nil
}

// decodeDeviceList parses a device list at the start of b and returns
// what follows it.
func decodeDeviceList(b []byte) (*DeviceList, []byte, error) {
	d := decoder{b: b, what: ErrBadDeviceList}
	magic := string(d.raw(len(deviceListMagic)))
	if magic != deviceListMagic && magic != deviceListMagic2 {
		return nil, nil, fmt.Errorf("%w: not a device list (bad magic)", ErrBadDeviceList)
	}
	l := &DeviceList{Cell: ed25519.PublicKey(d.bytes(ed25519.PublicKeySize))}
	l.Version = d.uvarint()
	n := d.uvarint()
	if d.err == nil && n > MaxDevices {
		d.fail("%d devices, more than %d", n, MaxDevices)
	}
	for i := uint64(0); d.err == nil && i < n; i++ {
		l.Devices = append(l.Devices, peer.ID(d.bytes(MaxPeerIDLen)))
	}
	if magic == deviceListMagic2 {
		l.Mailbox = d.bytes(MailboxKeyLen)
		if d.err == nil && len(l.Mailbox) != MailboxKeyLen {
			d.fail("mailbox key of %d bytes, want %d", len(l.Mailbox), MailboxKeyLen)
		}
	}
	l.Sig = d.bytes(ed25519.SignatureSize)
	if d.err != nil {
		return nil, nil, d.err
	}
	if err := l.Verify(); err != nil {
		return nil, nil, err
	}
	return l, d.b, nil
}

// Newer says whether next replaces old, a list held for the same cell:
// a higher version does; the same version changes nothing if the two are
// byte for byte the same, replaces a version 1 list by the version 2 list
// with the same devices (the cell added its mailbox key), is ErrStale
// for that version 1 list once the version 2 one is held, and is
// ErrConflict otherwise; a lower one is ErrStale; another cell's list is
// ErrOtherCell. Both must have been verified.
func Newer(old, next *DeviceList) (bool, error) {
	if !bytes.Equal(old.Cell, next.Cell) {
		return false, ErrOtherCell
	}
	switch {
	case next.Version > old.Version:
		return true, nil
	case next.Version < old.Version:
		return false, fmt.Errorf("%w: version %d, the one held is %d", ErrStale, next.Version, old.Version)
	case bytes.Equal(old.Encode(), next.Encode()):
		return false, nil
	case old.Mailbox == nil && next.Mailbox != nil && slices.Equal(old.Devices, next.Devices):
		return true, nil
	case old.Mailbox != nil && next.Mailbox == nil && slices.Equal(old.Devices, next.Devices):
		// The list the held one replaced, without the mailbox key: a
		// device that has not seen the upgrade still sends it.
		return false, fmt.Errorf("%w: version %d without the mailbox key the one held has", ErrStale, next.Version)
	}
	return false, fmt.Errorf("%w: version %d", ErrConflict, next.Version)
}

// decoder reads the wire forms; the first error sticks and wraps what.
type decoder struct {
	b    []byte
	err  error
	what error
}

func (d *decoder) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", d.what, fmt.Sprintf(format, a...))
	}
}

func (d *decoder) raw(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("truncated")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes reads a length-prefixed field of at most max bytes, copied.
func (d *decoder) bytes(max int) []byte {
	n := d.uvarint()
	if d.err == nil && n > uint64(max) {
		d.fail("field of %d bytes, more than %d", n, max)
		return nil
	}
	return bytes.Clone(d.raw(int(n)))
}
