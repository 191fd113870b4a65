package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/message/mailbox"
)

// Bounds of blind mailboxes (doc.go, "Blind mailboxes").
const (
	// MailboxWriteMax bounds the messages to one contact a device seals
	// into slots in one courier pass.
	MailboxWriteMax = 16
	// MailboxReadMax bounds the slot records a reader reads per contact
	// and key of its cell in one poll: every slot doc.go allows (8 a day,
	// 8 days), no more.
	MailboxReadMax = mailbox.SlotsPerEpoch * 8
	// MailboxReadBytes bounds the values' bytes a reader reads per
	// contact and key of its cell in one poll (1 MiB).
	MailboxReadBytes = MailboxReadMax * mailbox.MaxValue
	// MaxMailboxKeys bounds the keys of this cell a reader polls with.
	MaxMailboxKeys = 4
	// MaxRePuts bounds the records this device remembers to put again.
	MaxRePuts = 1024
	// MaxRefusedFrames bounds the frame entries refused by the receive
	// path that this device remembers (record key, sequence number,
	// entry ID), not to hand them to it again while their slot could not
	// be written back without them.
	MaxRefusedFrames = 1024
)

// MailboxDHT is what blind mailboxes need of the DHT: *dht.DHT has it.
// Each method blocks until done or ctx ends.
type MailboxDHT interface {
	PutSigned(ctx context.Context, key string, record []byte) error
	// GetSigned returns dht.ErrNotFound when no valid record is held.
	GetSigned(ctx context.Context, key string) (dht.Record, error)
}

// MailboxKeys gives this cell's mailbox keys (cell/core
// Secret.MailboxKey of its key epochs) with when its device lists
// carried each: *contact/service.Service has it.
type MailboxKeys interface {
	// MailboxKeys returns the keys of every epoch of this cell whose
	// secret the node holds; which one a writer uses, and which a reader
	// polls with, is this package's rule (pickKeys). The slice and the
	// keys are the caller's. It may block on the store; it is safe for
	// concurrent use.
	MailboxKeys(ctx context.Context) ([]contactservice.MailboxKey, error)
}

// MailboxStats counts blind mailbox work since Start.
type MailboxStats struct {
	// Reads and Writes are the slot records looked up and put (re-puts
	// included).
	Reads, Writes int64
	// Stored is the messages this device left in a slot; Received the
	// frames from slots recorded (duplicates included); Acked the
	// messages of this cell a contact's ack made delivered.
	Stored, Received, Acked int64
	// Dropped is the frame entries for this device that the receive
	// path refused for a reason other than the quotas, removed from
	// their slot; Skipped those not handed to it again because it
	// refused them before at the same record and sequence number (the
	// slot was not written back).
	Dropped, Skipped int64
	// Refused counts what was refused, by reason: "record" (a record
	// that does not verify: not signed by the slot's key, malformed),
	// "value" (a record whose value does not open or is malformed), "frame" (an entry's
	// frame that does not decode or the receive path refused), "device"
	// (a frame from a device not on the contact's list), "ack" (an ack
	// whose signature does not verify, or signed by a device not on the
	// contact's list), "bound" (a
	// poll stopped at MailboxReadMax or MailboxReadBytes), "dht" (a
	// lookup or put that failed).
	Refused map[string]int64
}

// refusal reasons of MailboxStats.Refused.
var refusalReasons = []string{"value", "frame", "device", "bound", "dht", "record", "ack"}

// dhtReason is the index of "dht" in refusalReasons.
const dhtReason = 4

// mailboxCounts are the counts of MailboxStats.
type mailboxCounts struct {
	reads, writes, stored, received, acked atomic.Int64
	dropped, skipped                       atomic.Int64
	refused                                [7]atomic.Int64 // refusalReasons
}

func (c *mailboxCounts) refuse(reason string) {
	for i, r := range refusalReasons {
		if r == reason {
			c.refused[i].Add(1)
		}
	}
}

// Mailbox returns the blind mailboxes' counts since Start.
func (s *Service) Mailbox() MailboxStats {
	st := MailboxStats{
		Reads: s.mcount.reads.Load(), Writes: s.mcount.writes.Load(), Stored: s.mcount.stored.Load(),
		Received: s.mcount.received.Load(), Acked: s.mcount.acked.Load(),
		Dropped: s.mcount.dropped.Load(), Skipped: s.mcount.skipped.Load(), Refused: map[string]int64{},
	}
	for i, r := range refusalReasons {
		if n := s.mcount.refused[i].Load(); n > 0 {
			st.Refused[r] = n
		}
	}
	return st
}

// mailboxState is what the mailbox shell keeps: the records this device
// put, to put again before the DHT drops them (at most MaxRePuts), and
// each contact's steady poll.
type mailboxState struct {
	mu   sync.Mutex
	puts map[string]rePut
	// wake makes the poller poll the contacts due soon.
	wake chan struct{}
	// polls is each contact's steady poll (mailbox_poll.go), by cell
	// key (hex): at most MaxContactRecords.
	polls map[string]pollState
	// seen are the devices connected to this host since the last round
	// (at most MaxSeenDevices); seenAll, that more were (mailbox_poll.go,
	// backSeen).
	seen    map[peer.ID]struct{}
	seenAll bool
	// refused are the frame entries the receive path refused (at most
	// MaxRefusedFrames, the oldest forgotten first: order).
	refused map[refusedFrame]bool
	order   []refusedFrame
}

// refusedFrame names a frame entry in one record of one slot.
type refusedFrame struct {
	record string
	seq    uint64
	id     message.ID
}

type rePut struct {
	record []byte
	seq    uint64
	at     time.Time // put last
	expiry time.Time
}

// mailboxOn reports whether blind mailboxes are wired in.
func (s *Service) mailboxOn() bool { return s.mdht != nil && s.mkeys != nil }

// pairWith returns the pair secrets of this cell with the contact c,
// one per key of this cell pickKeys gives for c (the writer's first),
// with those keys, or an error if c's list has no mailbox key.
func (s *Service) pairWith(ctx context.Context, c contactservice.Contact, now time.Time) ([]mailbox.Pair, []contactservice.MailboxKey, error) {
	own, err := s.cellKey()
	if err != nil {
		return nil, nil, err
	}
	theirs, err := c.Devices.MailboxKey()
	if err != nil {
		return nil, nil, err
	}
	all, err := s.mkeys.MailboxKeys(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("message: mailbox keys: %w", err)
	}
	keys, err := pickKeys(all, now, s.heldKeyOf(ctx, c))
	if err != nil {
		return nil, nil, err
	}
	var out []mailbox.Pair
	for _, k := range keys {
		p, err := mailbox.PairSecret(k.Private, own, c.Cell(), theirs)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, p)
	}
	return out, keys, nil
}

// readSlot returns the entries of slot's record and its sequence number;
// found is false when no valid record is held. A value that does not
// open is counted and given as no entries, found, at its sequence number
// (its writer is not of the pair: a writer may write over it).
func (s *Service) readSlot(ctx context.Context, slot mailbox.Slot) (es []mailbox.Entry, seq uint64, size int, found bool, err error) {
	s.mcount.reads.Add(1)
	r, err := s.mdht.GetSigned(ctx, slot.RecordKey())
	switch {
	case errors.Is(err, dht.ErrNotFound), errors.Is(err, dht.ErrExpired):
		return nil, 0, 0, false, nil
	case badRecord(err):
		// Not the pair's: as if none were there (the DHT keeps the
		// valid record of the highest sequence number, not this).
		s.mcount.refuse("record")
		s.log.Warn("mailbox record refused", "slot", slot.Peer(), "err", err)
		return nil, 0, 0, false, nil
	case err != nil:
		s.mcount.refuse("dht")
		return nil, 0, 0, false, fmt.Errorf("message: mailbox get: %w", err)
	}
	es, err = slot.Open(r.Value, r.Seq)
	if err != nil {
		s.mcount.refuse("value")
		s.log.Warn("mailbox value refused", "slot", slot.Peer(), "err", err)
		return nil, r.Seq, len(r.Value), true, nil
	}
	return es, r.Seq, len(r.Value), true, nil
}

// badRecord reports whether err is a record that does not verify.
func badRecord(err error) bool {
	for _, e := range []error{dht.ErrBadRecord, dht.ErrWrongOwner, dht.ErrBadSignature, dht.ErrTooFarAhead, dht.ErrTooLarge, dht.ErrBadName} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// putSlot seals es into slot's record of sequence number seq, valid for
// mailbox.Retention, and puts it; a non-empty one is remembered to put
// again (rePut).
func (s *Service) putSlot(ctx context.Context, slot mailbox.Slot, es []mailbox.Entry, seq uint64) error {
	now := s.cfg.Now()
	v, err := slot.Seal(es, seq, lockedRand{s})
	if err != nil {
		return err
	}
	expiry := now.Add(mailbox.Retention)
	key, rec, err := dht.SealRecord(slot.Owner(), mailbox.RecordName, v, seq, expiry)
	if err != nil {
		return err
	}
	s.mcount.writes.Add(1)
	if err := s.mdht.PutSigned(ctx, key, rec); err != nil {
		s.mcount.refuse("dht")
		return fmt.Errorf("message: mailbox put: %w", err)
	}
	s.mstate.mu.Lock()
	defer s.mstate.mu.Unlock()
	if len(es) == 0 {
		delete(s.mstate.puts, key)
		return nil
	}
	if _, ok := s.mstate.puts[key]; !ok && len(s.mstate.puts) >= MaxRePuts {
		// The oldest put goes: its record is the nearest to expiry.
		var oldest string
		for k, p := range s.mstate.puts {
			if oldest == "" || p.at.Before(s.mstate.puts[oldest].at) {
				oldest = k
			}
		}
		delete(s.mstate.puts, oldest)
	}
	s.mstate.puts[key] = rePut{record: rec, seq: seq, at: now, expiry: expiry}
	return nil
}

// rePutGap is how long after its put this device puts a record again:
// kad-dht servers drop a value dht.MaxRecordAge (48 h) after they got it.
const rePutGap = 24 * time.Hour

// rePutDue puts again, as they are, the records this device put more
// than rePutGap ago that have not expired and that the slot still holds
// at the sequence number put (a later write is its writer's to keep).
func (s *Service) rePutDue(ctx context.Context) {
	now := s.cfg.Now()
	s.mstate.mu.Lock()
	due := map[string]rePut{}
	for k, p := range s.mstate.puts {
		switch {
		case !now.Before(p.expiry):
			delete(s.mstate.puts, k)
		case now.Sub(p.at) >= rePutGap:
			due[k] = p
		}
	}
	s.mstate.mu.Unlock()
	for k, p := range due {
		s.mcount.reads.Add(1)
		r, err := s.mdht.GetSigned(ctx, k)
		switch {
		case errors.Is(err, dht.ErrNotFound):
		case err != nil:
			s.mcount.refuse("dht")
			continue
		case r.Seq != p.seq:
			s.mstate.mu.Lock()
			delete(s.mstate.puts, k)
			s.mstate.mu.Unlock()
			continue
		}
		s.mcount.writes.Add(1)
		if err := s.mdht.PutSigned(ctx, k, p.record); err != nil {
			s.mcount.refuse("dht")
			continue
		}
		s.mstate.mu.Lock()
		if cur, ok := s.mstate.puts[k]; ok && cur.seq == p.seq {
			cur.at = now
			s.mstate.puts[k] = cur
		}
		s.mstate.mu.Unlock()
	}
}
