package message

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
)

// ReceiptVersion is the version byte of a read receipt: what the ratchet
// seals in place of an envelope (doc.go, # Receipts). An envelope
// decoder of an earlier version refuses it as an unknown version.
const ReceiptVersion = 4

// MaxReceipt is the longest encoded receipt.
const MaxReceipt = 1 + IDSize + 2*ed25519.PublicKeySize + 2*(1+contact.MaxPeerIDLen) + 8 + 8

// ErrBadReceipt is a receipt that does not decode or breaks a rule.
var ErrBadReceipt = errors.New("message: malformed receipt")

// ErrBadOrderKey is an order key that does not parse.
var ErrBadOrderKey = errors.New("message: bad order key")

// Receipt tells a cell that the conversation with it was read, up to a
// place in its order: every message of that cell at or before the
// order key Sent, Author, Seq. It is not a message: it has no text,
// makes no record of its own, and its ID names only the delivery (the
// acknowledgement names it).
type Receipt struct {
	// ID is random, drawn by the sending device, for the acknowledgement.
	ID ID
	// Cell is the reading cell's key; Device the sending device (the
	// stream's, on the cell's current list).
	Cell   ed25519.PublicKey
	Device peer.ID
	// To is the key of the cell whose messages were read.
	To ed25519.PublicKey
	// Sent, Author, Seq are the order key read up to (OrderKey).
	Sent   int64
	Author peer.ID
	Seq    uint64
}

// UpTo returns the order key the receipt reads up to.
func (r *Receipt) UpTo() string { return orderKey(r.Sent, r.Author, r.Seq) }

// check validates r's fields.
func (r *Receipt) check() error {
	switch {
	case len(r.Cell) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: cell key of %d bytes", ErrBadReceipt, len(r.Cell))
	case len(r.To) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: recipient cell key of %d bytes", ErrBadReceipt, len(r.To))
	case r.Sent < 0:
		return fmt.Errorf("%w: negative time", ErrBadReceipt)
	}
	for _, id := range []peer.ID{r.Device, r.Author} {
		if len(id) == 0 || len(id) > contact.MaxPeerIDLen {
			return fmt.Errorf("%w: device ID of %d bytes", ErrBadReceipt, len(id))
		}
		if _, err := peer.IDFromBytes([]byte(id)); err != nil {
			return fmt.Errorf("%w: not a peer ID", ErrBadReceipt)
		}
	}
	return nil
}

// Encode returns r's encoding, or an error wrapping ErrBadReceipt if a
// field breaks a rule.
func (r *Receipt) Encode() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, MaxReceipt)
	b = append(b, ReceiptVersion)
	b = append(b, r.ID[:]...)
	b = append(b, r.Cell...)
	b = append(b, r.To...)
	b = append(b, byte(len(r.Device)))
	b = append(b, r.Device...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Sent))
	b = append(b, byte(len(r.Author)))
	b = append(b, r.Author...)
	return binary.BigEndian.AppendUint64(b, r.Seq), nil
}

// DecodeReceipt parses a receipt and checks its rules. Every error wraps
// ErrBadReceipt. b is not retained.
func DecodeReceipt(b []byte) (*Receipt, error) {
	if len(b) > MaxReceipt {
		return nil, fmt.Errorf("%w: %d bytes, the most is %d", ErrBadReceipt, len(b), MaxReceipt)
	}
	d := decoder{b: b}
	if d.u8() != ReceiptVersion {
		return nil, fmt.Errorf("%w: not a receipt", ErrBadReceipt)
	}
	r := &Receipt{}
	copy(r.ID[:], d.take(IDSize))
	r.Cell = ed25519.PublicKey(bytes.Clone(d.take(ed25519.PublicKeySize)))
	r.To = ed25519.PublicKey(bytes.Clone(d.take(ed25519.PublicKeySize)))
	r.Device = peer.ID(d.take(d.u8()))
	r.Sent = int64(d.u64())
	r.Author = peer.ID(d.take(d.u8()))
	r.Seq = d.u64()
	if d.bad || len(d.b) != 0 {
		return nil, fmt.Errorf("%w: wrong length", ErrBadReceipt)
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

// IsReceipt reports whether the opened plaintext b is a receipt (its
// version byte), not an envelope.
func IsReceipt(b []byte) bool { return len(b) > 0 && b[0] == ReceiptVersion }

// ParseOrderKey splits an order key (OrderKey) into its sent time,
// author device and seq; it is the inverse of OrderKey, so that a key
// that parses prints back the same.
func ParseOrderKey(s string) (sent int64, author peer.ID, seq uint64, err error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 16 || len(parts[2]) != 16 {
		return 0, "", 0, fmt.Errorf("%q: %w", s, ErrBadOrderKey)
	}
	u, err1 := strconv.ParseUint(parts[0], 16, 64)
	seq, err2 := strconv.ParseUint(parts[2], 16, 64)
	author, err3 := peer.Decode(parts[1])
	if err := errors.Join(err1, err2, err3); err != nil || int64(u) < 0 {
		return 0, "", 0, fmt.Errorf("%q: %w", s, ErrBadOrderKey)
	}
	if orderKey(int64(u), author, seq) != s {
		return 0, "", 0, fmt.Errorf("%q: not in its one form: %w", s, ErrBadOrderKey)
	}
	return int64(u), author, seq, nil
}
