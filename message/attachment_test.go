package message

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var rewriteAttachment = flag.Bool("rewrite-attachment", false, "rewrite testdata/attachment.hex")

// sampleFile is a blob capability's text form (blob/testdata's first
// vector's shape) with a name, size and media type.
func sampleFile() *Attachment {
	return &Attachment{
		Cap:   "exo://blob/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
		Name:  "holiday photo.jpg",
		Size:  3_141_592,
		Media: "image/jpeg",
	}
}

// TestAttachmentKnownAnswer: the sample envelope with the sample
// attachment encodes to the bytes in testdata/attachment.hex (the layout
// of doc.go, # Shared files: version 5, version 2's fields, then the
// attachment), and they decode back to it.
func TestAttachmentKnownAnswer(t *testing.T) {
	e := sample(t, false)
	e.File = sampleFile()
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "attachment.hex")
	if *rewriteAttachment {
		if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding\n%x\nwant\n%x", b, want)
	}
	plain, err := sample(t, false).Encode()
	if err != nil {
		t.Fatal(err)
	}
	a := e.File
	tail := 1 + len(a.Cap) + 1 + len(a.Name) + 8 + 1 + len(a.Media)
	if b[0] != EnvelopeVersionFile || len(b) != len(plain)+tail || !bytes.Equal(b[1:len(plain)], plain[1:]) {
		t.Fatalf("layout: version %d, %d bytes, not version 2's fields then %d bytes", b[0], len(b), tail)
	}
	got, err := DecodeEnvelope(want)
	if err != nil {
		t.Fatal(err)
	}
	e.Author = e.Device
	if diff := cmp.Diff(e, got); diff != "" {
		t.Fatalf("decoded (-want +got):\n%s", diff)
	}
}

// TestAttachmentCourier: a courier's envelope with an attachment is
// version 6 and decodes back with its author and file.
func TestAttachmentCourier(t *testing.T) {
	e := sample(t, true)
	e.Author = deviceID(t, 11)
	e.File = sampleFile()
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != EnvelopeVersionFileCourier {
		t.Fatalf("version %d, want %d", b[0], EnvelopeVersionFileCourier)
	}
	got, err := DecodeEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Author != e.Author || !cmp.Equal(got.File, e.File) || got.Devices == nil {
		t.Fatalf("decoded author %s, file %+v, list %v", got.Author, got.File, got.Devices != nil)
	}
}

// TestAttachmentRefused: an attachment that breaks a rule is refused by
// Encode, and its bytes by DecodeEnvelope, as a malformed envelope.
func TestAttachmentRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(a *Attachment)
	}{
		{"no capability", func(a *Attachment) { a.Cap = "" }},
		{"not a blob capability", func(a *Attachment) { a.Cap = "https://example.com/x" }},
		{"capability with a space", func(a *Attachment) { a.Cap += " x" }},
		{"capability too long", func(a *Attachment) { a.Cap = capPrefix + strings.Repeat("a", MaxCapability) }},
		{"no name", func(a *Attachment) { a.Name = "" }},
		{"path", func(a *Attachment) { a.Name = "../etc/passwd" }},
		{"backslash", func(a *Attachment) { a.Name = `a\b` }},
		{"dot dot", func(a *Attachment) { a.Name = ".." }},
		{"control", func(a *Attachment) { a.Name = "a\nb" }},
		{"not UTF-8", func(a *Attachment) { a.Name = "a\xffb" }},
		{"name too long", func(a *Attachment) { a.Name = strings.Repeat("é", 128) }},
		{"negative size", func(a *Attachment) { a.Size = -1 }},
		{"size too large", func(a *Attachment) { a.Size = MaxFileSize + 1 }},
		{"media with a tab", func(a *Attachment) { a.Media = "text/plain;\tcharset=utf-8" }},
		{"media too long", func(a *Attachment) { a.Media = strings.Repeat("a", MaxMediaType+1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := sample(t, false)
			e.File = sampleFile()
			tc.edit(e.File)
			if _, err := e.Encode(); !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("Encode: %v, want ErrBadEnvelope", err)
			}
			// The same bytes built by hand are refused by the decoder.
			good := sample(t, false)
			good.File = sampleFile()
			b, err := good.Encode()
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := sample(t, false).Encode()
			if len(e.File.Cap) > 255 || len(e.File.Name) > 255 || len(e.File.Media) > 255 {
				return // a length byte cannot say it
			}
			b = e.File.appendTo(b[:len(plain)])
			if _, err := DecodeEnvelope(b); !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("DecodeEnvelope: %v, want ErrBadEnvelope", err)
			}
		})
	}
}

// TestAttachmentTruncated: every prefix of an envelope with an
// attachment, and the envelope with a byte more, are refused; a version
// 2 envelope relabelled 5 (no attachment) is too.
func TestAttachmentTruncated(t *testing.T) {
	e := sample(t, true)
	e.File = sampleFile()
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(b) {
		if _, err := DecodeEnvelope(b[:n]); err == nil {
			t.Fatalf("a prefix of %d of %d bytes decoded", n, len(b))
		}
	}
	if _, err := DecodeEnvelope(append(bytes.Clone(b), 0)); err == nil {
		t.Fatal("a byte more decoded")
	}
	plain, _ := sample(t, true).Encode()
	plain[0] = EnvelopeVersionFile
	if _, err := DecodeEnvelope(plain); err == nil {
		t.Fatal("version 5 without an attachment decoded")
	}
}
