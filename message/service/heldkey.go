package service

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message/mailbox"
)

// The mailbox key of this cell that each contact holds (doc.go, # Blind
// mailboxes): /messages/mailboxkey/<cell key hex> holds version (1) = 1,
// the contact's Added time (8, Unix ms, two's complement: a contact
// removed and added again, from a new card, starts afresh) and the
// X25519 public key (32) of the newest of this cell's device lists the
// contact's cell was seen to hold.
const (
	heldKeyPrefix  = "/messages/mailboxkey"
	heldKeyVersion = 1
	heldKeyLen     = 1 + 8 + 32
)

var (
	errBadHeldKey   = errors.New("message: corrupt stored mailbox key")
	errNoMailboxKey = errors.New("message: this cell has no mailbox key")
)

// heldKey is a contact's record: when the contact was added, and the
// public key.
type heldKey struct {
	added int64
	key   [32]byte
}

func encodeHeldKey(h heldKey) []byte {
	b := append(make([]byte, 0, heldKeyLen), heldKeyVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(h.added))
	return append(b, h.key[:]...)
}

func decodeHeldKey(b []byte) (heldKey, error) {
	if len(b) != heldKeyLen || b[0] != heldKeyVersion {
		return heldKey{}, errBadHeldKey
	}
	return heldKey{added: int64(binary.BigEndian.Uint64(b[1:9])), key: [32]byte(b[9:])}, nil
}

func newHeldKeys() *contactRecords[heldKey] {
	return newContactRecords(heldKeyPrefix, "mailbox key held", decodeHeldKey, encodeHeldKey)
}

// heldKeyOf returns the public key of this cell's that c is known to
// hold, nil if none is (a record of another adding of c is none).
func (s *Service) heldKeyOf(ctx context.Context, c contactservice.Contact) []byte {
	h, ok := s.hkeys.get(ctx, s, hex.EncodeToString(c.Cell()))
	if !ok || h.added != c.Added.UnixMilli() {
		return nil
	}
	return h.key[:]
}

// noteHeldKey records that c's cell holds a device list of this cell's
// carrying the mailbox public key pub: only forward (pub of a newer
// epoch than the key recorded, by ks, this cell's keys, read again when
// the key recorded is not one of ks: ks may be older than it), and only
// a key of this cell's. A record not written is logged: the next sign of
// it writes it.
func (s *Service) noteHeldKey(ctx context.Context, c contactservice.Contact, pub []byte, ks []contactservice.MailboxKey) {
	if bytes.Equal(s.heldKeyOf(ctx, c), pub) {
		return
	}
	if ks == nil {
		var err error
		if ks, err = s.mkeys.MailboxKeys(ctx); err != nil {
			s.log.Debug("mailbox keys not read", "err", err)
			return
		}
	}
	e, ok := epochOf(ks, pub)
	if !ok {
		return
	}
	added := c.Added.UnixMilli()
	wrote, err := s.hkeys.update(ctx, s, hex.EncodeToString(c.Cell()), func(cur heldKey, ok bool) (heldKey, bool) {
		if ok && cur.added == added {
			ce, known := epochOf(ks, cur.key[:])
			if !known {
				// ks may be from before cur's epoch was made (a read's,
				// taken at its start): look again at the cell's keys.
				fresh, err := s.mkeys.MailboxKeys(ctx)
				if err != nil {
					return cur, false
				}
				ce, known = epochOf(fresh, cur.key[:])
			}
			if known && ce >= e {
				return cur, false
			}
		}
		return heldKey{added: added, key: [32]byte(pub)}, true
	})
	if err != nil {
		s.log.Warn("mailbox key held by the contact not recorded", "contact", c.Name, "err", err)
		return
	}
	if wrote {
		s.log.Debug("the contact holds a newer mailbox key of this cell", "contact", c.Name, "epoch", e)
	}
}

// epochOf returns the epoch of ks whose public key is pub.
func epochOf(ks []contactservice.MailboxKey, pub []byte) (uint64, bool) {
	for _, k := range ks {
		if k.Private != nil && bytes.Equal(k.Private.PublicKey().Bytes(), pub) {
			return k.Epoch, true
		}
	}
	return 0, false
}

// pickKeys is message/mailbox doc.go's rule (Use) for a contact that
// holds this cell's key held (nil: not known): first the key a writer of
// this cell uses, held's (if one of ks), else the newest a list carried
// (the current epoch's if none did yet: a new contact has the card,
// whose list is the newest); then the others a contact may write with,
// newest first: those a list carried of epochs after the writer's (the
// contact may hold a newer list than it was seen to), and those in
// force within the last mailbox.Retention (not replaced by a newer
// one's list before); at most MaxMailboxKeys in all. ks is not changed.
func pickKeys(ks []contactservice.MailboxKey, now time.Time, held []byte) ([]contactservice.MailboxKey, error) {
	ks = slices.Clone(ks)
	slices.SortStableFunc(ks, func(a, b contactservice.MailboxKey) int {
		switch {
		case a.Epoch > b.Epoch:
			return -1
		case a.Epoch < b.Epoch:
			return 1
		}
		return 0
	})
	ks = slices.DeleteFunc(ks, func(k contactservice.MailboxKey) bool { return k.Private == nil })
	w := -1
	if held != nil {
		w = slices.IndexFunc(ks, func(k contactservice.MailboxKey) bool { return bytes.Equal(k.Private.PublicKey().Bytes(), held) })
	}
	if w < 0 {
		w = slices.IndexFunc(ks, func(k contactservice.MailboxKey) bool { return !k.Since.IsZero() })
	}
	if w < 0 {
		w = slices.IndexFunc(ks, func(k contactservice.MailboxKey) bool { return k.Current })
	}
	if w < 0 {
		return nil, errNoMailboxKey
	}
	out := []contactservice.MailboxKey{ks[w]}
	for i, k := range ks {
		if len(out) >= MaxMailboxKeys {
			break
		}
		if i == w || k.Since.IsZero() {
			continue
		}
		if k.Epoch > ks[w].Epoch || k.Until.IsZero() || !k.Until.Before(now.Add(-mailbox.Retention)) {
			out = append(out, k)
		}
	}
	return out, nil
}

// contactOf returns the contact of cell key cell as held now.
func (s *Service) contactOf(ctx context.Context, cell []byte) (contactservice.Contact, error) {
	cs, err := s.cons.List(ctx)
	if err != nil {
		return contactservice.Contact{}, err
	}
	for _, c := range cs {
		if c.Devices != nil && bytes.Equal(c.Cell(), cell) {
			return c, nil
		}
	}
	return contactservice.Contact{}, contactservice.ErrNoContact
}
