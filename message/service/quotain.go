package service

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/message"
)

// MaxQuotaEntries bounds the contacts whose quota state is held in
// memory; past it, the one looked at least recently is dropped (its
// buckets start full again, its day's count is read back from its
// record, which is never below it).
const MaxQuotaEntries = 4096

// quotaRecordSize is a quota record's size: the day (8, Unix days) and
// the bytes leased for it (8).
const quotaRecordSize = 16

// errQuota is a message refused by the quotas (wrapped with the reason).
var errQuota = errors.New("message: over the contact's quota")

// Datastore keys of the quotas' records.
var (
	quotaContactKey = ds.NewKey("/messages/quota/contact")
	quotaNodeKey    = ds.NewKey("/messages/quota/node")
)

// QuotaStats counts what the quotas did since Start: the messages in
// slowed (answered late) and refused, per reason, and the Sends refused
// for too many pending messages.
type QuotaStats struct {
	// Slowed is the messages whose answer was delayed: over the
	// contact's rate by less than Config.MaxSlow.
	Slowed int64
	// RefusedRate: over the contact's rate by more than Config.MaxSlow.
	RefusedRate int64
	// RefusedContactDay: over Config.MaxInBytesPerContactPerDay.
	RefusedContactDay int64
	// RefusedNodeDay: over Config.MaxInBytesPerDay, all contacts.
	RefusedNodeDay int64
	// RefusedStore: the quota's record could not be read or written.
	RefusedStore int64
	// RefusedNotContact: frames or streams of a peer on no contact's
	// current device list.
	RefusedNotContact int64
	// PendingRefused: Sends refused with ErrTooManyPending.
	PendingRefused int64
}

// quotas is the inbound quotas' state: per contact cell, a rate and a
// daily count of bytes, and the node's daily count; mu guards entries
// and node (held across the reads and writes of their records, which
// happen once per contact and day, and once per lease).
type quotas struct {
	lim     quotaLimits
	mu      sync.Mutex
	entries map[string]*quotaEntry
	node    daily

	slow slowing

	slowed, rate, contactDay, nodeDay, storeErr, notContact, pending atomic.Int64
}

func newQuotas(c Config) *quotas {
	return &quotas{
		lim: quotaLimits{
			rate: c.InRate, burst: float64(c.InBurst),
			bytesRate: float64(c.InBytesRate), bytesBurst: float64(c.InBytesBurst),
			maxSlow: c.MaxSlow, perContactDay: c.MaxInBytesPerContactPerDay, perNodeDay: c.MaxInBytesPerDay,
		},
		entries: map[string]*quotaEntry{},
		slow:    slowing{max: cmp.Or(max(c.MaxFramesIn, 0), MaxFramesIn), per: map[string]int{}, limit: MaxSlowedPerContact},
	}
}

// leaseChunk is how far past the bytes counted a lease goes: a 64th of
// the budget, at least 64 KiB, so that the records are written about 64
// times a day at most, and a restart over-counts at most that.
func leaseChunk(budget int64) int64 { return max(budget/64, 64<<10) }

// Quota returns the quotas' counts since Start.
func (s *Service) Quota() QuotaStats {
	q := s.quota
	return QuotaStats{
		Slowed: q.slowed.Load(), RefusedRate: q.rate.Load(), RefusedContactDay: q.contactDay.Load(),
		RefusedNodeDay: q.nodeDay.Load(), RefusedStore: q.storeErr.Load(), RefusedNotContact: q.notContact.Load(),
		PendingRefused: q.pending.Load(),
	}
}

// admit decides on a message of n bytes from the contact whose cell key
// is conv (hex), counts it, and charges it when admitted: ok false with
// the reason when refused; when slowed, delay is how long its answer is
// to wait (at most Config.MaxSlow). The bytes are counted durably (a
// lease on disk ahead of them) before it returns ok. Safe for
// concurrent use; it blocks on the datastore at most twice a lease.
// The blind mailbox's reader consults it for each record it reads.
func (s *Service) admit(ctx context.Context, conv string, n int) (ok bool, delay time.Duration, reason string) {
	q := s.quota
	now, day := ambient.Now(), unixDay(s.cfg.Now())
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := s.quotaEntryLocked(ctx, conv)
	if err == nil {
		err = s.loadDaily(ctx, &q.node, quotaNodeKey)
	}
	if err != nil {
		s.log.Warn("message quota not read", "contact", conv, "err", err)
		q.storeErr.Add(1)
		return false, 0, reasonStore
	}
	e.seen = now
	v := q.lim.judge(e, &q.node, int64(n), now, day)
	switch v.reason {
	case reasonRate:
		q.rate.Add(1)
	case reasonContactDay:
		q.contactDay.Add(1)
	case reasonNodeDay:
		q.nodeDay.Add(1)
	}
	if v.reason != "" {
		return false, 0, v.reason
	}
	before := *e
	node := q.node
	q.lim.take(e, &q.node, int64(n), now, day)
	err = s.lease(ctx, &e.day, quotaContactKey.ChildString(conv), q.lim.perContactDay)
	if err == nil {
		err = s.lease(ctx, &q.node, quotaNodeKey, q.lim.perNodeDay)
	}
	if err != nil {
		*e, q.node = before, node
		s.log.Warn("message quota not written", "contact", conv, "err", err)
		q.storeErr.Add(1)
		return false, 0, reasonStore
	}
	if v.delay > 0 {
		q.slowed.Add(1)
	}
	return true, v.delay, ""
}

// quotaEntryLocked returns conv's entry, made (its day's count read
// from its record) if not held, dropping the one looked at least
// recently past MaxQuotaEntries. q.mu must be held.
func (s *Service) quotaEntryLocked(ctx context.Context, conv string) (*quotaEntry, error) {
	q := s.quota
	if e, ok := q.entries[conv]; ok {
		return e, nil
	}
	e := &quotaEntry{}
	if err := s.loadDaily(ctx, &e.day, quotaContactKey.ChildString(conv)); err != nil {
		return nil, err
	}
	if len(q.entries) >= MaxQuotaEntries {
		var old string
		var at time.Time
		for k, o := range q.entries {
			if old == "" || o.seen.Before(at) {
				old, at = k, o.seen
			}
		}
		delete(q.entries, old)
	}
	q.entries[conv] = e
	return e, nil
}

// loadDaily reads d's record at key once: the day's count resumes from
// the bytes leased. A record that does not decode is logged and
// counted from 0 (it is rewritten at the next lease).
func (s *Service) loadDaily(ctx context.Context, d *daily, key ds.Key) error {
	if d.loaded {
		return nil
	}
	b, err := s.ds.Get(ctx, key)
	switch {
	case errors.Is(err, ds.ErrNotFound):
	case err != nil:
		return fmt.Errorf("message: read %s: %w", key, err)
	default:
		day, leased, err := decodeQuotaRecord(b)
		if err != nil {
			s.log.Warn("message quota record dropped", "key", key.String(), "err", err)
			break
		}
		d.day, d.used, d.leased = day, leased, leased
	}
	d.loaded = true
	return nil
}

// lease writes d's record ahead of its count when the count passed the
// bytes leased: up to a leaseChunk further, within budget.
func (s *Service) lease(ctx context.Context, d *daily, key ds.Key, budget int64) error {
	if d.used <= d.leased {
		return nil
	}
	l := min(max(budget, d.used), d.used+leaseChunk(budget))
	if err := s.ds.Put(ctx, key, encodeQuotaRecord(d.day, l)); err != nil {
		return fmt.Errorf("message: write %s: %w", key, err)
	}
	d.leased = l
	return nil
}

func encodeQuotaRecord(day, leased int64) []byte {
	b := make([]byte, quotaRecordSize)
	binary.BigEndian.PutUint64(b, uint64(day))
	binary.BigEndian.PutUint64(b[8:], uint64(leased))
	return b
}

// decodeQuotaRecord reads a quota record: its day and the bytes leased.
func decodeQuotaRecord(b []byte) (day, leased int64, err error) {
	if len(b) != quotaRecordSize {
		return 0, 0, fmt.Errorf("message: quota record of %d bytes, want %d", len(b), quotaRecordSize)
	}
	day, leased = int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:]))
	if leased < 0 {
		return 0, 0, fmt.Errorf("message: quota record with %d bytes leased", leased)
	}
	return day, leased, nil
}

// MaxSlowedPerContact bounds the frames of one contact cell (all its
// devices) that the quotas are slowing at once: message.Window. Past it,
// or past Config.MaxFramesIn slowed frames of all contacts, a frame
// that would be slowed is answered busy at once (counted refused for
// the rate): a slowed frame holds its body (16 KiB at most) and none of
// the node's MaxFramesIn places while it waits, so these bound the
// memory it holds (MaxFramesIn × 16 KiB more, 16 MiB) and one contact's
// share of it (32 × 16 KiB = 512 KiB), and the slowed frames' map.
const MaxSlowedPerContact = message.Window

// slowing is the frames being slowed: per contact cell and in all,
// guarded by mu (a map with an entry per contact with one at least).
type slowing struct {
	mu    sync.Mutex
	max   int
	n     int
	per   map[string]int
	limit int // per contact
}

// take takes a slowed place for a frame charged to convs: false when
// the node's bound or one of the contacts' is reached.
func (sl *slowing) take(convs []string) (release func(), ok bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.n >= sl.max {
		return nil, false
	}
	for _, c := range convs {
		if sl.per[c] >= sl.limit {
			return nil, false
		}
	}
	sl.n++
	for _, c := range convs {
		sl.per[c]++
	}
	return sync.OnceFunc(func() {
		sl.mu.Lock()
		defer sl.mu.Unlock()
		sl.n--
		for _, c := range convs {
			if sl.per[c]--; sl.per[c] <= 0 {
				delete(sl.per, c)
			}
		}
	}), true
}

// admitIn admits a message of n bytes from a device that the lists of
// the contacts convs name (usually one), charging each of them, and
// waits out the longest delay when it is slowed (or until ctx ends): a
// refusal by any is errQuota with its reason (the charges taken before
// it stay). A slowed frame takes a slowed place first (slowing), or is
// refused for the rate when there is none; slowing, when not nil, is
// given the place's release before the wait, for the caller to call
// once the frame is handled (else admitIn releases it when it returns).
func (s *Service) admitIn(ctx context.Context, convs []string, n int, slowing func(release func())) error {
	var delay time.Duration
	for _, conv := range convs {
		ok, d, reason := s.admit(ctx, conv, n)
		if !ok {
			return fmt.Errorf("%w: %s", errQuota, reason)
		}
		delay = max(delay, d)
	}
	if delay <= 0 {
		return nil
	}
	release, ok := s.quota.slow.take(convs)
	if !ok {
		s.quota.slowed.Add(-1) // not slowed after all: refused
		s.quota.rate.Add(1)
		return fmt.Errorf("%w: %s (%d frames slowed at most, %d per contact)", errQuota, reasonRate, s.quota.slow.max, MaxSlowedPerContact)
	}
	if slowing != nil {
		slowing(release)
	} else {
		defer release()
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
