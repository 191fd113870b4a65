package message

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Versions and caps of an envelope with an attachment (doc.go, # Shared
// files).
const (
	// EnvelopeVersionFile is the version byte of an envelope with an
	// attachment delivered by the device that wrote it (version 2's
	// fields, then the attachment); EnvelopeVersionFileCourier that of
	// one delivered by a courier (version 3's, then the attachment).
	// Version 4 is a read receipt's.
	EnvelopeVersionFile        = 5
	EnvelopeVersionFileCourier = 6
	// MaxCapability is the longest capability text an attachment
	// carries (blob's text form is about 120 bytes).
	MaxCapability = 256
	// MaxFileName is the longest file name, in bytes of UTF-8.
	MaxFileName = 255
	// MaxMediaType is the longest media type.
	MaxMediaType = 127
	// MaxFileSize is the largest size an attachment may announce (1 PiB).
	MaxFileSize = 1 << 50
	// maxAttachment is the longest encoded attachment.
	maxAttachment = 1 + MaxCapability + 1 + MaxFileName + 8 + 1 + MaxMediaType
)

// capPrefix is how a blob capability's text form starts (package blob,
// which this pure package does not import: message/service parses it
// whole).
const capPrefix = "exo://blob/"

// Attachment is a file a message shares: the blob's capability (its text
// form, package blob), the file's name, size and media type as the
// sender's cell lists it.
type Attachment struct {
	// Cap is the blob's capability, "exo://blob/...", 1 to MaxCapability
	// bytes of printable ASCII.
	Cap string
	// Name is the file's base name: 1 to MaxFileName bytes of UTF-8, no
	// "/", "\", NUL or control character, not "." or "..".
	Name string
	// Size is the file's size in bytes, 0 to MaxFileSize.
	Size int64
	// Media is its media type, 0 to MaxMediaType bytes of printable
	// ASCII, spaces allowed ("text/plain; charset=utf-8"; empty:
	// unknown).
	Media string
}

// Check validates a's fields; errors wrap ErrBadEnvelope.
func (a *Attachment) Check() error {
	switch {
	case len(a.Cap) == 0 || len(a.Cap) > MaxCapability || !strings.HasPrefix(a.Cap, capPrefix) || !printable(a.Cap):
		return fmt.Errorf("%w: attachment capability is not a blob capability of at most %d bytes", ErrBadEnvelope, MaxCapability)
	case len(a.Name) == 0 || len(a.Name) > MaxFileName:
		return fmt.Errorf("%w: attachment name of %d bytes (1 to %d)", ErrBadEnvelope, len(a.Name), MaxFileName)
	case !utf8.ValidString(a.Name) || a.Name == "." || a.Name == ".." || strings.ContainsFunc(a.Name, badNameRune):
		return fmt.Errorf("%w: attachment name %q is not a base name", ErrBadEnvelope, a.Name)
	case a.Size < 0 || a.Size > MaxFileSize:
		return fmt.Errorf("%w: attachment size %d", ErrBadEnvelope, a.Size)
	case len(a.Media) > MaxMediaType || !printable(strings.ReplaceAll(a.Media, " ", "!")):
		return fmt.Errorf("%w: attachment media type", ErrBadEnvelope)
	}
	return nil
}

// badNameRune is a rune a file name may not hold: a separator, a C0 or
// C1 control character, DEL.
func badNameRune(r rune) bool {
	return r == '/' || r == '\\' || r < 0x20 || (r >= 0x7f && r <= 0x9f)
}

// printable reports whether s is printable ASCII, no space.
func printable(s string) bool {
	for i := range len(s) {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// appendTo appends a's encoding (doc.go) to b; a is checked.
func (a *Attachment) appendTo(b []byte) []byte {
	b = append(b, byte(len(a.Cap)))
	b = append(b, a.Cap...)
	b = append(b, byte(len(a.Name)))
	b = append(b, a.Name...)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Size))
	b = append(b, byte(len(a.Media)))
	return append(b, a.Media...)
}

// readAttachment reads an attachment from d; the caller checks d.bad
// and the fields (Check).
func readAttachment(d *decoder) *Attachment {
	a := &Attachment{}
	a.Cap = string(d.take(d.u8()))
	a.Name = string(d.take(d.u8()))
	a.Size = int64(d.u64())
	a.Media = string(d.take(d.u8()))
	return a
}
