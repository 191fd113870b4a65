package service

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/exopeer/exopeer/blob"
	blobservice "github.com/exopeer/exopeer/blob/service"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message"
)

// Files is what the service needs of the cell's files to share them
// with contacts (doc.go, # Shared files). *blob/service.Service has it.
// Both methods block on the store and are safe for concurrent use.
type Files interface {
	// ShareWith records that the cell shares c's blob with the contact
	// of cell key contact: every device of the cell serves it to the
	// contact's devices.
	ShareWith(ctx context.Context, contact ed25519.PublicKey, c blob.Capability) error
	// Received records a file the contact of cell key from shared as a
	// file of the cell (idempotent), fetched from the contact's devices.
	Received(ctx context.Context, from ed25519.PublicKey, c blob.Capability, name, media string, size int64) (blobservice.File, error)
}

// ErrNoFiles is a share on a node without the files part.
var ErrNoFiles = errors.New("message: this node shares no files")

// File is a shared file as a message records it (Message.File): the
// attachment of its envelope.
type File struct {
	Cap   string `json:"cap"`
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	Media string `json:"media,omitempty"`
}

// attachment returns f as an envelope's attachment; nil for nil.
func (f *File) attachment() *message.Attachment {
	if f == nil {
		return nil
	}
	return &message.Attachment{Cap: f.Cap, Name: f.Name, Size: f.Size, Media: f.Media}
}

// fileOf returns a as a record's File; nil for nil.
func fileOf(a *message.Attachment) *File {
	if a == nil {
		return nil
	}
	return &File{Cap: a.Cap, Name: a.Name, Size: a.Size, Media: a.Media}
}

// checkAttachment checks a's rules and that its capability parses (a
// private blob's: a public one needs no share).
func checkAttachment(a *message.Attachment) (blob.Capability, error) {
	if err := a.Check(); err != nil {
		return blob.Capability{}, err
	}
	c, err := blob.ParseCapability(a.Cap)
	if err != nil {
		return blob.Capability{}, fmt.Errorf("%w: %w", message.ErrBadEnvelope, err)
	}
	return c, nil
}

// SendFile shares the file f (one of the cell's: its capability, name,
// size and media type) with the contact named name: it records the
// share in the cell's store, so that every device of the cell serves
// the blob to the contact's devices, then sends a message whose
// envelope carries the file, with text (the file's name if empty), as
// Send does: recorded in both chains, pending and delivered by the
// courier like any message. The error of an undelivered message wraps
// ErrUnreachable; the message is recorded and the share stands.
func (s *Service) SendFile(ctx context.Context, name string, f File, text string) (Message, error) {
	if s.files == nil {
		return Message{}, ErrNoFiles
	}
	if err := s.enter(); err != nil {
		return Message{}, err
	}
	defer s.wg.Done()
	a := f.attachment()
	c, err := checkAttachment(a)
	if err != nil {
		return Message{}, err
	}
	if text == "" {
		text = f.Name
	}
	// Shared once send's pending quota let the message through, so that
	// a message it refuses shares nothing.
	share := func(ctx context.Context, ct contactservice.Contact) error {
		if c.Public {
			return nil
		}
		return s.files.ShareWith(ctx, ct.Cell(), c)
	}
	return s.send(ctx, name, text, a, share)
}

// received records the file a message from the contact of cell key from
// shared (env.File), if any: after the message, before its
// acknowledgement, so that a failure has the message sent again (but
// for a contact past its number of files: the message is taken, the
// file listed in it only).
func (s *Service) received(ctx context.Context, from ed25519.PublicKey, a *message.Attachment) error {
	if a == nil || s.files == nil {
		return nil
	}
	c, err := checkAttachment(a)
	if err != nil {
		return err
	}
	_, err = s.files.Received(ctx, from, c, a.Name, a.Media, a.Size)
	if errors.Is(err, blobservice.ErrTooManyFiles) {
		// The contact shared too many: the message stands, its file is
		// in its record only (sending it again would not change that).
		s.log.Warn("shared file not listed: too many from the contact", "name", a.Name, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("message: record the shared file %q: %w", a.Name, err)
	}
	return nil
}
