package service

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message/mailbox"
)

// Poll periods of the reader (Config.MailboxPoll, MailboxPollMax,
// MailboxFullPoll).
const (
	defaultMailboxPoll     = time.Minute
	defaultMailboxPollMax  = 16 * time.Minute
	defaultMailboxFullPoll = time.Hour
)

// MaxSeenDevices bounds the devices remembered between two polls as
// connected to this host (each brings its contacts' steady poll back to
// Config.MailboxPoll); past it, the others are not remembered (fresh
// peer IDs are free: a flood of them is no sign a contact is back), and
// the next round takes as back the contacts with a device connected to
// this host by a connection it opened (a contact's device among the
// flood is not lost).
const MaxSeenDevices = 256

// pollEvent is what happened to a contact, for its steady poll (step).
type pollEvent uint8

const (
	// polledEmpty: a poll of the contact's slots found nothing new of
	// the contact's (takeSlot: no frame recorded now, no ack believed).
	polledEmpty pollEvent = iota
	// polledNews: a poll found something new of the contact's.
	polledNews
	// contactLost: a courier pass found no device of the contact
	// acknowledging (it may be writing to this cell's slots too, and it
	// may ack there what this device just stored).
	contactLost
	// contactBack: a device of the contact connected to this host (it
	// may have written to the slots while it could not reach this cell).
	contactBack
)

// pollState is one contact's steady poll: its interval now and when it
// is due. The zero value is due at once, at Config.MailboxPoll.
type pollState struct {
	every time.Duration
	due   time.Time
	// conn: every is the ceiling because a device of the contact was
	// connected at the last poll; ramp is the interval doubling gave
	// then, taken again when none is (left).
	conn bool
	ramp time.Duration
}

// step is the rule of the steady poll (doc.go, "Blind mailboxes",
// Reading): a contact writes to this cell's slots only when its courier
// reached no device of this cell, so a poll that found nothing doubles
// the interval, from base up to ceiling; a poll that found something, a
// courier pass that found the contact unreachable and a device of the
// contact connecting bring it back to base (the last two due at once);
// a poll that found nothing while connected (a device of the contact
// connected to this host, whose courier then reaches this cell
// directly) sets it to ceiling, until no device of the contact is
// connected at a round (left). It is pure: now is the caller's clock.
func (st pollState) step(ev pollEvent, now time.Time, connected bool, base, ceiling time.Duration) pollState {
	switch ev {
	case polledNews:
		return pollState{every: base, due: now.Add(base)}
	case contactLost, contactBack:
		return pollState{every: base, due: now}
	}
	every := min(2*max(st.every, base), ceiling)
	if connected {
		return pollState{every: ceiling, due: now.Add(ceiling), conn: true, ramp: every}
	}
	return pollState{every: every, due: now.Add(every)}
}

// left is st once no device of the contact is connected: an interval at
// the ceiling for a connection goes back to the one doubling gave at
// that poll (the contact writes to the slots again when its devices
// cannot reach this cell). It is pure.
func (st pollState) left() pollState {
	if !st.conn {
		return st
	}
	at := st.due.Add(-st.every)
	return pollState{every: st.ramp, due: at.Add(st.ramp)}
}

// runMailbox is the reader's goroutine (started by Start when mailboxes
// are wired in, waited for by Close): a poll of the window at start
// (again at the next poll while all its lookups fail: the DHT may have
// no peers yet), the whole window (mailbox.ReadEpochs) when this device
// last read it whole Config.MailboxFullPoll ago or more (wholeKey, on
// disk: across restarts), else the epochs since the one before it last
// did; the whole window every MailboxFullPoll; in between, every
// Config.MailboxPoll and at each wake-up (a courier pass that found a
// contact unreachable), a poll of the current epoch (mailboxRead: and
// the one before near midnight) of the contacts
// whose steady poll is due (step); each round also puts again the
// records due (rePutDue).
func (s *Service) runMailbox() {
	defer s.wg.Done()
	ctx := s.ctx
	full := true
	whole := s.readWhole(ctx)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.mstate.wake:
		}
		now := s.cfg.Now()
		all := whole.IsZero() || now.Sub(whole) >= s.cfg.MailboxFullPoll || now.Before(whole)
		full = full || all
		var oldest uint64 // the window's first
		if full && !all {
			oldest = max(mailbox.Epoch(whole), 1) - 1
		}
		failed, reads := s.mcount.refused[dhtReason].Load(), s.mcount.reads.Load()
		s.mailboxPoll(ctx, full, oldest)
		// A poll whose every lookup failed (a DHT with no peers yet, at
		// start) does not count as the full one: the next is full. One
		// that failed for some slots only counts (else one slot that
		// never answers would make every poll full).
		failed, reads = s.mcount.refused[dhtReason].Load()-failed, s.mcount.reads.Load()-reads
		done := full && !(reads > 0 && failed >= reads)
		full = full && !done
		if done && all && ctx.Err() == nil {
			whole = now
			s.writeWhole(ctx, now)
		}
		s.rePutDue(ctx)
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timer.Reset(s.cfg.MailboxPoll)
	}
}

// wholeKey holds when this device last read the whole window of every
// contact (runMailbox): version (1) = 1, Unix ms (8, two's complement).
var wholeKey = ds.NewKey("/messages/mailboxwhole")

const wholeVersion = 1

// encodeWhole is the record of wholeKey for t.
func encodeWhole(t time.Time) []byte {
	return binary.BigEndian.AppendUint64([]byte{wholeVersion}, uint64(t.UnixMilli()))
}

// decodeWhole reads a record of wholeKey.
func decodeWhole(b []byte) (time.Time, error) {
	if len(b) != 9 || b[0] != wholeVersion {
		return time.Time{}, fmt.Errorf("message: whole poll record of %d bytes, version %d: %w", len(b), firstByte(b), errCorruptWhole)
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[1:]))), nil
}

var errCorruptWhole = errors.New("message: corrupt whole poll record")

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// readWhole returns when this device last read the whole window; zero
// when it never did, or the record cannot be read or does not decode
// (logged): then the next poll reads it whole.
func (s *Service) readWhole(ctx context.Context) time.Time {
	b, err := s.ds.Get(ctx, wholeKey)
	if errors.Is(err, ds.ErrNotFound) {
		return time.Time{}
	}
	if err != nil {
		s.log.Warn("whole poll record not read", "err", err)
		return time.Time{}
	}
	t, err := decodeWhole(b)
	if err != nil {
		s.log.Warn("whole poll record refused", "err", err)
		return time.Time{}
	}
	return t
}

// writeWhole records that this device read the whole window at t.
func (s *Service) writeWhole(ctx context.Context, t time.Time) {
	if err := s.ds.Put(ctx, wholeKey, encodeWhole(t)); err != nil {
		s.log.Warn("whole poll record not written", "err", err)
	}
}

// mailboxPoll reads the slots of every contact with a mailbox key whose
// steady poll is due, or of all of them (full: from the epoch oldest, or
// the window's first if later), and steps each one read (mailboxRead,
// step).
func (s *Service) mailboxPoll(ctx context.Context, full bool, oldest uint64) {
	if _, err := s.cellKey(); err != nil {
		return
	}
	cs, err := s.cons.List(ctx)
	if err != nil {
		s.log.Warn("contacts not read", "err", err)
		return
	}
	s.backSeen(ctx, cs)
	s.pollKeep(cs)
	for _, c := range cs {
		if ctx.Err() != nil {
			return
		}
		if _, err := c.Devices.MailboxKey(); err != nil {
			continue
		}
		conv := hex.EncodeToString(c.Cell())
		connected := slices.ContainsFunc(c.Devices.Devices, s.connected)
		if !connected {
			s.pollLeft(conv)
		}
		if !full && !s.pollDue(conv, s.cfg.Now()) {
			continue
		}
		ev := polledEmpty
		if s.mailboxRead(ctx, c, full, oldest) {
			ev = polledNews
		}
		if ctx.Err() != nil {
			return
		}
		s.pollStep(conv, ev, slices.ContainsFunc(c.Devices.Devices, s.connected))
	}
}

// connected reports whether the device id is connected to this host.
func (s *Service) connected(id peer.ID) bool {
	return s.h.Network().Connectedness(id) == network.Connected
}

// pollDue reports whether the steady poll of the contact of cell key
// conv (hex) is due at now; one with no state is.
func (s *Service) pollDue(conv string, now time.Time) bool {
	s.mstate.mu.Lock()
	defer s.mstate.mu.Unlock()
	st, ok := s.mstate.polls[conv]
	return !ok || !now.Before(st.due)
}

// pollStep steps the steady poll of the contact of cell key conv (hex)
// on ev, at the clock's now. At most MaxContactRecords contacts have a
// state: past it one is dropped (it is then polled as one with none:
// at once, then at Config.MailboxPoll).
func (s *Service) pollStep(conv string, ev pollEvent, connected bool) {
	now := s.cfg.Now()
	s.mstate.mu.Lock()
	defer s.mstate.mu.Unlock()
	st, ok := s.mstate.polls[conv]
	if !ok && len(s.mstate.polls) >= MaxContactRecords {
		for k := range s.mstate.polls {
			delete(s.mstate.polls, k)
			break
		}
	}
	s.mstate.polls[conv] = st.step(ev, now, connected, s.cfg.MailboxPoll, s.cfg.MailboxPollMax)
}

// pollLeft steps the steady poll of the contact of cell key conv (hex)
// when none of its devices is connected to this host (left).
func (s *Service) pollLeft(conv string) {
	s.mstate.mu.Lock()
	defer s.mstate.mu.Unlock()
	if st, ok := s.mstate.polls[conv]; ok {
		s.mstate.polls[conv] = st.left()
	}
}

// pollKeep forgets the steady poll of every contact not in cs.
func (s *Service) pollKeep(cs []contactservice.Contact) {
	keep := make(map[string]bool, len(cs))
	for _, c := range cs {
		keep[hex.EncodeToString(c.Cell())] = true
	}
	s.mstate.mu.Lock()
	defer s.mstate.mu.Unlock()
	for k := range s.mstate.polls {
		if !keep[k] {
			delete(s.mstate.polls, k)
		}
	}
}

// wakeMailbox makes the poller poll the contact of cell key conv (hex)
// soon, at Config.MailboxPoll again after (contactLost); it never
// blocks.
func (s *Service) wakeMailbox(conv string) {
	s.pollStep(conv, contactLost, false)
	select {
	case s.mstate.wake <- struct{}{}:
	default:
	}
}

// seenDevice notes that the device id connected to this host: at the
// next round, the steady poll of its contacts is due (contactBack). At
// most MaxSeenDevices are remembered between two rounds; past it, the
// next round looks at every contact's connections (backSeen).
func (s *Service) seenDevice(id peer.ID) {
	s.mstate.mu.Lock()
	defer s.mstate.mu.Unlock()
	if _, ok := s.mstate.seen[id]; ok || len(s.mstate.seen) < MaxSeenDevices {
		s.mstate.seen[id] = struct{}{}
	} else {
		s.mstate.seenAll = true
	}
}

// backSeen steps the contacts of the devices seen since the last round
// (contactBack); when more were than MaxSeenDevices, also each contact
// of cs with a device connected by a connection it opened.
func (s *Service) backSeen(ctx context.Context, cs []contactservice.Contact) {
	s.mstate.mu.Lock()
	seen, all := s.mstate.seen, s.mstate.seenAll
	s.mstate.seen, s.mstate.seenAll = map[peer.ID]struct{}{}, false
	s.mstate.mu.Unlock()
	if all {
		for _, c := range cs {
			if slices.ContainsFunc(c.Devices.Devices, s.inbound) {
				s.pollStep(hex.EncodeToString(c.Cell()), contactBack, true)
			}
		}
	}
	for id := range seen {
		cs, err := s.cons.ByDevice(ctx, id)
		if err != nil {
			continue
		}
		for _, c := range cs {
			s.pollStep(hex.EncodeToString(c.Cell()), contactBack, true)
		}
	}
}
