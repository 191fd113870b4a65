package service

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/store"
)

// The key each contact's read receipts cover (doc.go, # Receipts):
// /messages/receipt/<cell key hex> holds version (1) = 2, the contact's
// Added time (8, Unix ms, two's complement: a contact removed and added
// again starts with no receipt, as heldkey.go's record), the length of
// the order key (1), the order key (message.OrderKey) the contact's
// receipts cover: the highest, over the receipts applied, of the last
// message out to the contact pending at or before the receipt's key when
// it came (noteReceipt).
const (
	receiptKeyPrefix  = "/messages/receipt"
	receiptKeyVersion = 2
)

var errBadReceiptKey = errors.New("message: corrupt stored receipt key")

// receiptKey is a contact's record: when the contact was added, and the
// order key.
type receiptKey struct {
	added int64
	upTo  string
}

func encodeReceiptKey(r receiptKey) []byte {
	b := binary.BigEndian.AppendUint64([]byte{receiptKeyVersion}, uint64(r.added))
	return append(append(b, byte(len(r.upTo))), r.upTo...)
}

// decodeReceiptKey reads a stored receipt key: it must be of version 2,
// of its length exactly, and parse as an order key.
func decodeReceiptKey(b []byte) (receiptKey, error) {
	if len(b) < 10 || b[0] != receiptKeyVersion || len(b) != 10+int(b[9]) {
		return receiptKey{}, errBadReceiptKey
	}
	k := string(b[10:])
	if _, _, _, err := message.ParseOrderKey(k); err != nil {
		return receiptKey{}, fmt.Errorf("%w: %w", errBadReceiptKey, err)
	}
	return receiptKey{added: int64(binary.BigEndian.Uint64(b[1:9])), upTo: k}, nil
}

func newReceiptKeys() *contactRecords[receiptKey] {
	return newContactRecords(receiptKeyPrefix, "receipt key", decodeReceiptKey, encodeReceiptKey)
}

// noteReceipt records, before the receipt of the contact c that names
// the order key upTo is acknowledged, the key it covers (coveredKey):
// that of the last message out to c pending now at or before upTo, not
// upTo itself, since the receipt covers only messages that exist when it
// comes. Only forward within one adding of c (a key at or before the one
// held changes nothing; a record of an earlier adding is replaced); no
// such message records nothing new. An error (the messages not read, or
// the record not written) refuses the receipt, which is sent again.
func (s *Service) noteReceipt(ctx context.Context, c contactservice.Contact, upTo string) error {
	key, err := s.coveredKey(ctx, hex.EncodeToString(c.Cell()), upTo)
	if err != nil || key == "" {
		return err
	}
	added := c.Added.UnixMilli()
	_, err = s.rkeys.update(ctx, s, hex.EncodeToString(c.Cell()), func(cur receiptKey, ok bool) (receiptKey, bool) {
		return receiptKey{added: added, upTo: key}, !ok || cur.added != added || key > cur.upTo
	})
	return err
}

// coveredKey returns the order key of the last message out to the
// contact of cell key conv (hex) that is pending (sent or stored) and at
// or before upTo; "" if there is none. Only a pending message needs the
// key: one delivered is marked by the receipt itself (markRead), one
// read or undeliverable never goes delivered. Each pending state is one
// query of the conversation's messages in it, the last first, limit 1;
// a hit past upTo pages on, ReadPage a query, through this cell's own
// pending messages past upTo only (at most Config.MaxPendingPerContact:
// the contact cannot add any). The order key is not a range field of
// the index (a keyword), hence no "order <= upTo" predicate.
func (s *Service) coveredKey(ctx context.Context, conv, upTo string) (string, error) {
	var last string
	for _, st := range []string{Sent, Stored} {
		q := store.Query{
			Type: Type, Where: []store.Predicate{
				{Field: "conversation", Op: store.Eq, Value: conv},
				{Field: "state", Op: store.Eq, Value: st},
			},
			Order: "order", Desc: true, Limit: 1, Traits: []string{Type},
		}
	pages:
		for {
			pg, err := s.store.Query(ctx, q)
			if err != nil {
				return "", fmt.Errorf("message: pending messages to %s: %w", conv, err)
			}
			for _, h := range pg.Hits {
				if m, ok := decode(h.Entity); ok && m.Direction == Out && m.Order <= upTo {
					last = max(last, m.Order)
					break pages
				}
			}
			if pg.Next == "" || len(pg.Hits) == 0 {
				break
			}
			q.After, q.Limit = pg.Next, ReadPage
		}
	}
	return last, nil
}

// readBefore reports whether m, a message out going delivered, is at or
// before the key its contact's receipts cover (noteReceipt): the contact
// read it, and its acknowledgement came after the receipt (a message
// stored, acknowledged through the mailbox), so it is recorded read. A
// message written after the receipt came is at or before that key only
// if a device of this cell whose clock is behind wrote it below a
// message that was pending then: the edge left (doc.go, # Receipts). No record (or one that does not read, or one of
// another adding of the contact than the one held now) is no receipt.
func (s *Service) readBefore(ctx context.Context, m Message) bool {
	if m.Direction != Out {
		return false
	}
	r, ok := s.rkeys.get(ctx, s, m.Conversation)
	if !ok || m.Order > r.upTo {
		return false
	}
	cell, err := hex.DecodeString(m.Conversation)
	if err != nil {
		return false
	}
	c, err := s.contactOf(ctx, cell)
	return err == nil && c.Added.UnixMilli() == r.added
}
