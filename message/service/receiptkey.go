package service

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message"
)

// The highest read receipt key of each contact (doc.go, # Receipts):
// /messages/receipt/<cell key hex> holds version (1) = 2, the contact's
// Added time (8, Unix ms, two's complement: a contact removed and added
// again starts with no receipt, as heldkey.go's record), the length of
// the order key (1), the order key (message.OrderKey) up to which the
// contact's last receipt applied said it read this cell's messages.
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

// noteReceipt records, before the receipt of the contact c is
// acknowledged, that it read this cell's messages up to upTo: only
// forward within one adding of c (a receipt up to an earlier key changes
// nothing; a record of an earlier adding is replaced). An error (the
// record not written) refuses the receipt, which is sent again.
func (s *Service) noteReceipt(ctx context.Context, c contactservice.Contact, upTo string) error {
	added := c.Added.UnixMilli()
	_, err := s.rkeys.update(ctx, s, hex.EncodeToString(c.Cell()), func(cur receiptKey, ok bool) (receiptKey, bool) {
		return receiptKey{added: added, upTo: upTo}, !ok || cur.added != added || upTo > cur.upTo
	})
	return err
}

// readBefore reports whether m, a message out going delivered, is at or
// before the key of the last receipt its contact sent (noteReceipt):
// the contact read it, and its acknowledgement came after the receipt
// (a message stored, acknowledged through the mailbox), so it is
// recorded read. No record (or one that does not read, or one of
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
