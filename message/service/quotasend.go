package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/exopeer/exopeer/store"
)

// ErrTooManyPending: this cell already holds Config.MaxPendingPerContact
// messages to the contact not delivered yet; nothing was recorded. The
// API answers it 429 Too Many Requests.
var ErrTooManyPending = errors.New("message: too many messages to this contact are not delivered yet")

// checkPending returns ErrTooManyPending when this cell holds
// Config.MaxPendingPerContact pending messages (states Sent and Stored,
// written by any of its devices) to the contact conv (hex), or more. A
// message is at most message.MaxText bytes of text, so the bytes pending
// to one contact are bounded by the count. It reads the messages' IDs
// only, a page at a time, and stops at the bound.
func (s *Service) checkPending(ctx context.Context, conv string) error {
	limit := s.cfg.MaxPendingPerContact
	n := 0
	for _, state := range []string{Sent, Stored} {
		q := store.Query{
			Type: Type, Order: "order", Traits: []string{},
			Where: []store.Predicate{
				{Field: "state", Op: store.Eq, Value: state},
				{Field: "conversation", Op: store.Eq, Value: conv},
			},
		}
		for {
			q.Limit = min(store.MaxLimit, limit-n)
			pg, err := s.store.Query(ctx, q)
			if err != nil {
				return fmt.Errorf("message: count pending messages: %w", err)
			}
			n += len(pg.Hits)
			if n >= limit {
				s.quota.pending.Add(1)
				return fmt.Errorf("%w (%d to %s)", ErrTooManyPending, n, conv)
			}
			if pg.Next == "" || len(pg.Hits) == 0 {
				break
			}
			q.After = pg.Next
		}
	}
	return nil
}
