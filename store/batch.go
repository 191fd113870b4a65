package store

import (
	"encoding/binary"
	"fmt"
)

// A batch: several transactions in one chain entry, each decoded, checked
// and applied (or skipped) on its own, as if each were an entry of its
// own at the batch entry's position, in the batch's order. A node's group
// commit writes one, so that concurrent writes share one entry (one
// signature, one seal, one block) without sharing their fate: a device
// whose schemas refuse one transaction's document skips that transaction
// alone.
const (
	// BatchVersion is the version byte of a batch.
	BatchVersion byte = 2
	// MaxBatch is the largest number of transactions in one batch.
	MaxBatch = 1024
)

// OpPlace numbers operation op of transaction tx of an entry: an
// operation's place in the chain's order is its entry's Pos, then
// OpPlace(tx, op), that is its transaction's index in the entry, then its
// index in the transaction (op < MaxOps). A single-transaction entry's
// operations are 0, 1, 2, ... as they always were. State and the index
// both order operations by it.
func OpPlace(tx, op int) int { return tx*MaxOps + op }

// EncodeBatch returns the payload of a chain entry that holds the
// transactions txs, each the encoding of one transaction (Encode or
// EncodeChecked, which it does not decode again):
//
//	magic 0xE5, version 2, uvarint count of transactions (2 to MaxBatch),
//	then each transaction: uvarint length + its encoding (magic 0xE5,
//	version 1, ...: a batch is never nested).
//
// It refuses fewer than 2 transactions (one is written as it is), more
// than MaxBatch, one that is not a single transaction's encoding (by its
// first two bytes), and a batch whose encoding is over MaxPayload (an
// error wrapping ErrTooLarge: BatchHeader and BatchPart tell before). txs is not
// retained.
func EncodeBatch(txs [][]byte) ([]byte, error) {
	if len(txs) < 2 {
		return nil, fmt.Errorf("store: encode batch: %d transactions, want at least 2: %w", len(txs), ErrMalformed)
	}
	if len(txs) > MaxBatch {
		return nil, fmt.Errorf("store: encode batch: %d transactions, over %d: %w", len(txs), MaxBatch, ErrTooLarge)
	}
	n := 2 + uvarintLen(uint64(len(txs)))
	for i, p := range txs {
		if len(p) < 2 || p[0] != Magic || p[1] != Version {
			return nil, fmt.Errorf("store: encode batch: transaction %d is not one transaction's encoding: %w", i, ErrMalformed)
		}
		n += BatchPart(len(p))
	}
	if n > MaxPayload {
		return nil, fmt.Errorf("store: encode batch: %d bytes, over %d: %w", n, MaxPayload, ErrTooLarge)
	}
	b := make([]byte, 0, n)
	b = append(b, Magic, BatchVersion)
	b = binary.AppendUvarint(b, uint64(len(txs)))
	for _, p := range txs {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b, nil
}

// BatchHeader is the largest size of a batch's header (magic, version,
// count up to MaxBatch); a batch's encoding is BatchHeader at most plus
// BatchPart of each of its transactions.
const BatchHeader = 4

// BatchPart returns what a transaction's encoding of m bytes adds to a
// batch: its length prefix and itself.
func BatchPart(m int) int { return uvarintLen(uint64(m)) + m }

func uvarintLen(v uint64) int { return len(binary.AppendUvarint(nil, v)) }

// Split returns the encodings of the transactions of a store payload, in
// their order: p itself for a single transaction (version 1, not decoded
// here), each transaction of a batch (version 2), as subslices of p. Each
// is then decoded alone (Decode), and one that does not decode is skipped
// alone. Split refuses, with an error wrapping ErrMalformed, ErrTooLarge
// or ErrVersion, a payload over MaxPayload, one that is not a store
// payload, another version, and a batch whose framing is wrong: a count
// below 2 or over MaxBatch or over what the bytes can hold (checked
// before allocating), a non-minimal varint, a length past the end, a
// transaction that is not version 1 (a nested batch), trailing bytes.
// Such a payload is skipped whole.
func Split(p []byte) ([][]byte, error) {
	parts, err := split(p)
	if err != nil {
		return nil, fmt.Errorf("store: decode: %w", err)
	}
	return parts, nil
}

func split(p []byte) ([][]byte, error) {
	if len(p) > MaxPayload {
		return nil, fmt.Errorf("%d bytes, over %d: %w", len(p), MaxPayload, ErrTooLarge)
	}
	if len(p) < 2 || p[0] != Magic {
		return nil, fmt.Errorf("no magic byte: %w", ErrMalformed)
	}
	switch p[1] {
	case Version:
		return [][]byte{p}, nil
	case BatchVersion:
	default:
		return nil, fmt.Errorf("version %d: %w", p[1], ErrVersion)
	}
	d := decoder{b: p[2:]}
	n, err := d.uvarint()
	if err != nil {
		return nil, fmt.Errorf("batch count: %w", err)
	}
	if n < 2 {
		return nil, fmt.Errorf("batch of %d transactions: %w", n, ErrMalformed)
	}
	if n > MaxBatch {
		return nil, fmt.Errorf("batch of %d transactions, over %d: %w", n, MaxBatch, ErrTooLarge)
	}
	if n > uint64(len(d.b)/3) { // each takes a length byte and two more at least
		return nil, fmt.Errorf("batch of %d transactions in %d bytes: truncated: %w", n, len(d.b), ErrMalformed)
	}
	parts := make([][]byte, 0, n)
	for i := range int(n) {
		t, err := d.bytes("transaction", MaxPayload)
		if err != nil {
			return nil, fmt.Errorf("batch transaction %d: %w", i, err)
		}
		if len(t) < 2 || t[0] != Magic || t[1] != Version {
			return nil, fmt.Errorf("batch transaction %d: not a version %d transaction: %w", i, Version, ErrMalformed)
		}
		parts = append(parts, t)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("batch: %d trailing bytes: %w", len(d.b), ErrMalformed)
	}
	return parts, nil
}
