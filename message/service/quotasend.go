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
// to one contact are bounded by the count.
//
// Counting is a store query (IDs only, a page at a time, stopping at
// the bound), too dear for every Send (it was more than half of a
// sender's CPU at 2,000 messages a second): the count is kept per
// contact with the Sends allowed since it was taken, and taken again
// only when the two together reach the bound. Deliveries lower the
// real count, which the next count sees; another device's pending
// messages are seen at that count too, so each device holds the bound
// for what it writes and the cell is over it by at most what other
// devices wrote since this one's count.
func (s *Service) checkPending(ctx context.Context, conv string) error {
	limit := s.cfg.MaxPendingPerContact
	s.pmu.Lock()
	if e, ok := s.pend[conv]; ok && e.count+e.since < limit {
		e.since++
		s.pend[conv] = e
		s.pmu.Unlock()
		return nil
	}
	s.pmu.Unlock()
	n, err := s.countPending(ctx, conv, limit)
	if err != nil {
		return err
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if s.pend == nil || len(s.pend) >= maxPendingCounts {
		s.pend = map[string]pendingCount{} // counted again at need
	}
	if n >= limit {
		s.pend[conv] = pendingCount{count: n}
		s.quota.pending.Add(1)
		return fmt.Errorf("%w (%d to %s)", ErrTooManyPending, n, conv)
	}
	s.pend[conv] = pendingCount{count: n, since: 1}
	return nil
}

// pendingCount is a contact's pending messages as last counted, and
// the Sends checkPending allowed since.
type pendingCount struct{ count, since int }

// maxPendingCounts bounds the contacts whose counts are kept (only
// this cell's Sends add one: at most its contacts).
const maxPendingCounts = 4096

// countPending counts the pending messages to conv, stopping at limit.
func (s *Service) countPending(ctx context.Context, conv string, limit int) (int, error) {
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
				return 0, fmt.Errorf("message: count pending messages: %w", err)
			}
			n += len(pg.Hits)
			if n >= limit {
				return n, nil
			}
			if pg.Next == "" || len(pg.Hits) == 0 {
				break
			}
			q.After = pg.Next
		}
	}
	return n, nil
}
