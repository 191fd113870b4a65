package service

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"
)

// The device's counter is handed out from memory under a lease written
// to disk first: a high-water mark of seq and a floor of sent times.
const (
	// leaseSeqs is how many seqs one lease covers.
	leaseSeqs = 1000
	// leaseMillis is how far past the clock a lease's time floor is.
	leaseMillis = 1000
)

// counter is the device's (sent, seq), under Service.cmu.
type counter struct {
	loaded bool
	sent   int64  // the last sent time handed out, Unix ms
	seq    uint64 // the last seq handed out
	// maxSent and maxSeq are the lease on disk: every sent handed out is
	// at most maxSent, every seq at most maxSeq; a restart resumes from
	// them.
	maxSent int64
	maxSeq  uint64
}

// nextLocked takes the device's next (sent, seq): sent is now in Unix
// milliseconds, or the previous one if the clock went back; seq counts
// up. When the lease does not cover them, a new one is written (durably)
// before they are returned: seq up to seq+leaseSeqs-1, sent up to the
// clock plus leaseMillis (or sent, if that is later). After a restart both resume from the lease, so
// seq never repeats and sent never goes back. cmu must be held.
func (s *Service) nextLocked(ctx context.Context) (int64, uint64, error) {
	c := &s.counter
	if !c.loaded {
		b, err := s.ds.Get(ctx, counterKey)
		switch {
		case err == nil && len(b) == 16:
			c.sent, c.seq = int64(binary.BigEndian.Uint64(b)), binary.BigEndian.Uint64(b[8:])
		case err == nil:
			// seq goes on above any it handed out (a device sends far
			// fewer than a thousand messages a millisecond of its life);
			// sent resumes from the clock.
			c.seq = uint64(max(s.cfg.Now().UnixMilli(), 0)) * 1000
			s.log.Warn("stored message counter corrupt: restarted from the clock", "seq", c.seq)
		case !errors.Is(err, ds.ErrNotFound):
			return 0, 0, fmt.Errorf("message: load counter: %w", err)
		}
		// seq resumes no lower than the clock's milliseconds × 1,000: a
		// counter restored from an older copy of the datastore
		// (restore.go) would hand out again the seqs of the messages
		// sent after the copy, with sent times from the same lease
		// floor: the same order keys. Every seq handed out before was
		// below the clock's value × 1,000 at its run's start plus the
		// messages sent since, so above it now unless a run sent more
		// than 1,000 messages a millisecond or the clock went back.
		c.seq = max(c.seq, uint64(max(s.cfg.Now().UnixMilli(), 0))*1000)
		c.maxSent, c.maxSeq, c.loaded = c.sent, c.seq, true
	}
	sent := max(s.cfg.Now().UnixMilli(), c.sent, 0)
	seq := c.seq + 1
	if sent > c.maxSent || seq > c.maxSeq {
		// The time floor is the clock's plus leaseMillis, not sent's: after
		// a restart sent resumes from the last floor, ahead of the clock,
		// and a floor from it would carry sent further ahead at each
		// restart (TestCounterNoDriftOnRestarts).
		maxSent, maxSeq := max(s.cfg.Now().UnixMilli()+leaseMillis, sent, c.maxSent), seq+leaseSeqs-1
		out := binary.BigEndian.AppendUint64(nil, uint64(maxSent))
		out = binary.BigEndian.AppendUint64(out, maxSeq)
		if err := s.ds.Put(ctx, counterKey, out); err != nil {
			return 0, 0, fmt.Errorf("message: store counter: %w", err)
		}
		if err := s.ds.Sync(ctx, counterKey); err != nil {
			return 0, 0, fmt.Errorf("message: store counter: %w", err)
		}
		c.maxSent, c.maxSeq = maxSent, maxSeq
	}
	c.sent, c.seq = sent, seq
	return sent, seq, nil
}
