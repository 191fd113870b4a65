package service

import (
	"context"
	"errors"
	"fmt"
	"sync"

	ds "github.com/ipfs/go-datastore"
)

// MaxContactRecords bounds the per-contact records (a contact's highest
// read receipt key, the mailbox key it holds: receiptkey.go,
// heldkey.go) each kind keeps in memory; past it, one held is dropped
// and read again from disk when needed.
const MaxContactRecords = 1024

// contactRecords is one kind of small per-contact record, kept on disk
// under prefix/<contact's cell key, hex> and in memory (at most
// MaxContactRecords). dec decodes a stored value: an error is a record
// written wrong, which reads as none (logged): the caller's rule then
// falls back to what it does for a contact with no record.
type contactRecords[V any] struct {
	prefix ds.Key
	dec    func([]byte) (V, error)
	enc    func(V) []byte
	what   string // for the log and errors

	// mu makes a record's read, compare and write one step (update);
	// it guards m.
	mu sync.Mutex
	m  map[string]heldRecord[V]
}

// heldRecord is a record in memory; ok false: none on disk.
type heldRecord[V any] struct {
	v  V
	ok bool
}

func newContactRecords[V any](prefix string, what string, dec func([]byte) (V, error), enc func(V) []byte) *contactRecords[V] {
	return &contactRecords[V]{prefix: ds.NewKey(prefix), dec: dec, enc: enc, what: what, m: map[string]heldRecord[V]{}}
}

// get returns the record of the contact of cell key conv (hex); false
// when there is none, it does not decode, or it cannot be read.
func (r *contactRecords[V]) get(ctx context.Context, s *Service, conv string) (V, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, _ := r.getLocked(ctx, s, conv)
	return h.v, h.ok
}

// getLocked is get with r.mu held; the error is a read that failed
// (not cached: the next call reads again).
func (r *contactRecords[V]) getLocked(ctx context.Context, s *Service, conv string) (heldRecord[V], error) {
	if h, ok := r.m[conv]; ok {
		return h, nil
	}
	var h heldRecord[V]
	b, err := s.ds.Get(ctx, r.prefix.ChildString(conv))
	switch {
	case errors.Is(err, ds.ErrNotFound):
	case err != nil:
		return h, fmt.Errorf("message: read %s: %w", r.what, err)
	default:
		v, err := r.dec(b)
		if err != nil {
			s.log.Warn("stored record refused", "what", r.what, "contact", conv, "err", err)
		} else {
			h = heldRecord[V]{v: v, ok: true}
		}
	}
	r.keepLocked(conv, h)
	return h, nil
}

// keepLocked holds h as conv's, dropping another past MaxContactRecords.
func (r *contactRecords[V]) keepLocked(conv string, h heldRecord[V]) {
	if _, ok := r.m[conv]; !ok && len(r.m) >= MaxContactRecords {
		for k := range r.m {
			delete(r.m, k)
			break
		}
	}
	r.m[conv] = h
}

// update replaces the contact's record by next(cur, ok) when it says
// so (its second result), on disk then in memory, as one step; a record
// that cannot be read or written is an error, and nothing is changed.
func (r *contactRecords[V]) update(ctx context.Context, s *Service, conv string, next func(cur V, ok bool) (V, bool)) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.getLocked(ctx, s, conv)
	if err != nil {
		return false, err
	}
	v, ok := next(h.v, h.ok)
	if !ok {
		return false, nil
	}
	if err := s.ds.Put(ctx, r.prefix.ChildString(conv), r.enc(v)); err != nil {
		return false, fmt.Errorf("message: write %s: %w", r.what, err)
	}
	r.keepLocked(conv, heldRecord[V]{v: v, ok: true})
	return true, nil
}
