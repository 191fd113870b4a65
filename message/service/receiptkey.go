package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/exopeer/exopeer/message"
)

// The highest read receipt key of each contact (doc.go, # Receipts):
// /messages/receipt/<cell key hex> holds version (1) = 1, the length of
// the order key (1), the order key (message.OrderKey) up to which the
// contact's last receipt applied said it read this cell's messages.
const (
	receiptKeyPrefix  = "/messages/receipt"
	receiptKeyVersion = 1
)

var errBadReceiptKey = errors.New("message: corrupt stored receipt key")

func encodeReceiptKey(upTo string) []byte {
	return append([]byte{receiptKeyVersion, byte(len(upTo))}, upTo...)
}

// decodeReceiptKey reads a stored receipt key: it must be of version 1,
// of its length exactly, and parse as an order key.
func decodeReceiptKey(b []byte) (string, error) {
	if len(b) < 2 || b[0] != receiptKeyVersion || len(b) != 2+int(b[1]) {
		return "", errBadReceiptKey
	}
	k := string(b[2:])
	if _, _, _, err := message.ParseOrderKey(k); err != nil {
		return "", fmt.Errorf("%w: %w", errBadReceiptKey, err)
	}
	return k, nil
}

func newReceiptKeys() *contactRecords[string] {
	return newContactRecords(receiptKeyPrefix, "receipt key", decodeReceiptKey, encodeReceiptKey)
}

// noteReceipt records, before the receipt of the contact of cell key
// conv (hex) is acknowledged, that it read this cell's messages up to
// upTo: only forward (a receipt up to an earlier key changes nothing).
// An error (the record not written) refuses the receipt, which is sent
// again.
func (s *Service) noteReceipt(ctx context.Context, conv, upTo string) error {
	_, err := s.rkeys.update(ctx, s, conv, func(cur string, ok bool) (string, bool) {
		return upTo, !ok || upTo > cur
	})
	return err
}

// readBefore reports whether m, a message out going delivered, is at or
// before the key of the last receipt its contact sent (noteReceipt):
// the contact read it, and its acknowledgement came after the receipt
// (a message stored, acknowledged through the mailbox), so it is
// recorded read. No record (or one that does not read) is no receipt.
func (s *Service) readBefore(ctx context.Context, m Message) bool {
	if m.Direction != Out {
		return false
	}
	upTo, ok := s.rkeys.get(ctx, s, m.Conversation)
	return ok && m.Order <= upTo
}
