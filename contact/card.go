package contact

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/exopeer/exopeer/cell/core"
)

// Caps on a card.
const (
	// MaxNameLen is the longest chosen name, in bytes (a roster's).
	MaxNameLen = core.MaxNameLen
	// MaxCardLen is the longest binary card.
	MaxCardLen = len(cardMagic) + 1 + MaxNameLen + MaxDeviceListLen
	// MaxCardText is the longest card text accepted (with room for white
	// space a mail or a chat may have put in).
	MaxCardText = 2 * (len(TextPrefix) + 4 + (MaxCardLen+checksumLen)*8/5 + 8)
)

// TextPrefix starts a card's text form; TextVersion follows it.
const (
	TextPrefix  = "exo-card:"
	TextVersion = "1"
	cardMagic   = "EXC1"
	checksumLen = 4
	checksumCtx = "exopeer card checksum v1\x00"
)

// Errors of cards.
var (
	ErrBadCard     = errors.New("contact: malformed card")
	ErrCardText    = errors.New("contact: not a card (a card is text starting with " + TextPrefix + TextVersion + ":)")
	ErrCardVersion = errors.New("contact: card of an unknown version (made by a newer exopeer?)")
	ErrChecksum    = errors.New("contact: card checksum does not match (mistyped or cut short?)")
	ErrBadName     = errors.New("contact: bad name (1 to 64 bytes of printable UTF-8)")
)

// Card is what one cell gives another so that it can be a contact: the
// cell's public key (the device list's), a name its owner chose, and the
// cell's signed list of the devices that take messages.
type Card struct {
	Name    string
	Devices *DeviceList
}

// Cell returns the cell's public key.
func (c *Card) Cell() ed25519.PublicKey { return c.Devices.Cell }

// ValidName reports whether s can name a card or a contact: 1 to
// MaxNameLen bytes of UTF-8 with no control or bidi-control characters
// (cell/core.ValidName's rules), no leading or trailing space.
func ValidName(s string) bool {
	return core.ValidName(s) && strings.TrimSpace(s) == s
}

// Encode returns the card's binary form (doc.go has the layout).
func (c *Card) Encode() []byte {
	b := []byte(cardMagic)
	b = appendBytes(b, []byte(c.Name))
	return append(b, c.Devices.Encode()...)
}

// DecodeCard parses a card's binary form and checks its name and its
// device list's signature. Every error wraps ErrBadCard, ErrBadName,
// ErrBadDeviceList or ErrBadSignature.
func DecodeCard(b []byte) (*Card, error) {
	if len(b) > MaxCardLen {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadCard, len(b), MaxCardLen)
	}
	d := decoder{b: b, what: ErrBadCard}
	if string(d.raw(len(cardMagic))) != cardMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrBadCard)
	}
	name := string(d.bytes(MaxNameLen))
	if d.err != nil {
		return nil, d.err
	}
	if !ValidName(name) {
		return nil, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	l, err := DecodeDeviceList(d.b)
	if err != nil {
		return nil, err
	}
	return &Card{Name: name, Devices: l}, nil
}

// b32 is the text form's alphabet: RFC 4648 base32, lower case, no
// padding (case-insensitive when read; QR codes carry it compactly).
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func checksum(b []byte) []byte {
	h := sha256.New()
	h.Write([]byte(checksumCtx))
	h.Write(b)
	return h.Sum(nil)[:checksumLen]
}

// Text returns the card's text form: "exo-card:1:" and the base32 of the
// binary card followed by its 4-byte checksum.
func (c *Card) Text() string {
	b := c.Encode()
	return TextPrefix + TextVersion + ":" + b32.EncodeToString(append(b, checksum(b)...))
}

// ParseCard reads a card's text form. White space anywhere is ignored
// (a card wrapped by a mail program still reads), and so is case. A
// mistyped card fails its checksum (ErrChecksum); other errors wrap
// ErrCardText, ErrCardVersion, or DecodeCard's.
func ParseCard(s string) (*Card, error) {
	if len(s) > MaxCardText {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrCardText, len(s), MaxCardText)
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
	rest, ok := strings.CutPrefix(s, TextPrefix)
	if !ok {
		return nil, ErrCardText
	}
	ver, body, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, ErrCardText
	}
	if ver != TextVersion {
		return nil, fmt.Errorf("%w: version %.8q, this build reads %s", ErrCardVersion, ver, TextVersion)
	}
	raw, err := b32.DecodeString(body)
	if err != nil {
		var ce base32.CorruptInputError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("%w: character %d of the card's body is not base32 (a-z, 2-7)", ErrCardText, int64(ce)+1)
		}
		return nil, fmt.Errorf("%w: %w", ErrCardText, err)
	}
	if len(raw) <= checksumLen {
		return nil, fmt.Errorf("%w: too short", ErrCardText)
	}
	b, sum := raw[:len(raw)-checksumLen], raw[len(raw)-checksumLen:]
	if !bytes.Equal(sum, checksum(b)) {
		return nil, ErrChecksum
	}
	return DecodeCard(b)
}
