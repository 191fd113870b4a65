package service

import (
	"context"
	"encoding/hex"
	"errors"

	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/message/mailbox"
	"github.com/exopeer/exopeer/store"
)

// mailboxRead reads the slots of the contact c → this cell, for each key
// of this cell a contact may write with, of the current epoch (and the
// one before it within Config.MailboxPollMax of midnight) or (full)
// of every epoch of mailbox.ReadEpochs from oldest on, at most MailboxReadMax records
// and MailboxReadBytes per key. Of each slot it takes the frames for
// this device, which it hands to the receive path as if they came on a
// stream from their sealing device, and the acks, whose messages it
// records delivered; it writes the slot back without what it took, and
// leaves an ack of the frames recorded in this cell → c. Frames for
// another device of this cell are left for it; a frame the receive path
// refuses is left (counted), to expire. It reports whether it found
// something new of c's (takeSlot).
func (s *Service) mailboxRead(ctx context.Context, c contactservice.Contact, full bool, oldest uint64) bool {
	now := s.cfg.Now()
	own, err := s.cellKey()
	if err != nil {
		return false
	}
	pairs, keys, err := s.pairWith(ctx, c, now)
	if err != nil {
		return false
	}
	first, last := mailbox.ReadEpochs(now)
	if !full {
		// The epoch of the contact's previous steady poll too (at most
		// MailboxPollMax ago): the contact may have written there after it.
		first = max(first, mailbox.Epoch(now.Add(-s.cfg.MailboxPollMax)))
	}
	first = max(first, min(oldest, last))
	var acks []mailbox.Entry
	var seen []byte // the newest key of this cell under which c wrote
	var seenEpoch uint64
	anyNews := false
	for k, pair := range pairs {
		records, bytes := 0, 0
	epochs:
		for epoch := first; epoch <= last; epoch++ {
			for i := range mailbox.SlotsPerEpoch {
				if records >= MailboxReadMax || bytes >= MailboxReadBytes {
					s.mcount.refuse("bound")
					break epochs
				}
				slot, err := mailbox.NewSlot(pair, c.Cell(), own, epoch, i)
				if err != nil {
					break epochs
				}
				es, seq, n, found, err := s.readSlot(ctx, slot)
				records, bytes = records+1, bytes+n
				if err != nil || ctx.Err() != nil {
					break epochs
				}
				if !found {
					if mailbox.ReadEveryIndex(epoch, now) {
						continue
					}
					break
				}
				// A record of c's direction with something of c's in it (a
				// frame newly recorded, an ack c's device signed): c's cell
				// holds this key (heldkey.go). The record alone is not
				// enough: a device removed from this cell holds the pair of
				// an older key and can write one.
				a, news := s.takeSlot(ctx, c, own, slot, es, seq)
				anyNews = anyNews || news
				if news && (seen == nil || keys[k].Epoch > seenEpoch) {
					seen, seenEpoch = keys[k].Private.PublicKey().Bytes(), keys[k].Epoch
				}
				acks = append(acks, a...)
			}
		}
	}
	if seen != nil {
		s.noteHeldKey(ctx, c, seen, keys)
	}
	if len(acks) == 0 {
		return anyNews
	}
	// The frames taken may have brought c's newer list (a new key of
	// c's): the acks go under the pair c reads now, so that c, finding
	// them there, knows this cell holds that list.
	if c2, err := s.contactOf(ctx, c.Cell()); err == nil {
		c = c2
	}
	if pairs, _, err = s.pairWith(ctx, c, now); err == nil {
		_, err := s.mailboxAppend(ctx, pairs[0], own, c.Cell(), func(present map[message.ID]bool) []mailbox.Entry {
			var out []mailbox.Entry
			for _, a := range acks {
				if !present[a.ID] {
					out = append(out, a)
				}
			}
			return out
		})
		if err != nil {
			s.log.Debug("mailbox ack not written", "contact", c.Name, "err", err)
		}
	}
	return anyNews
}

// takeSlot takes from es, the entries of slot at seq, the frames for
// this device (recorded through the receive path) and the acks (their
// messages recorded delivered), writes the slot back without them and
// without the frames for this device the receive path refused for a
// reason other than the quotas (only this device can open them, and
// their sender sends again what no ack covers), and returns the acks to
// leave for the contact, and whether es held something of c's: a frame
// the receive path recorded now (one recorded before may be an old
// frame of c's written again), or an ack of a message out to c signed
// by a device of c's (ackedOut). A frame
// refused at this record and sequence number before (its slot not
// written back) is not handed again.
func (s *Service) takeSlot(ctx context.Context, c contactservice.Contact, own []byte, slot mailbox.Slot, es []mailbox.Entry, seq uint64) ([]mailbox.Entry, bool) {
	taken := map[message.ID]bool{}
	dropped, news := 0, false
	var acks []mailbox.Entry
	for _, e := range es {
		switch e.Kind {
		case mailbox.KindAck:
			done, believed := s.ackedOut(ctx, own, c, e)
			if done {
				taken[e.ID] = true
			}
			news = news || believed
		case mailbox.KindFrame:
			if e.To != s.self {
				continue // another device's
			}
			key := refusedFrame{record: slot.RecordKey(), seq: seq, id: e.ID}
			if s.refusedBefore(key) {
				s.mcount.skipped.Add(1)
				taken[e.ID] = true
				dropped++
				continue
			}
			switch r := s.frameIn(ctx, c, e); r {
			case frameRecorded, frameRecordedBefore:
				news = news || r == frameRecorded
				taken[e.ID] = true
				a, err := mailbox.Ack(s.signer, own, c.Cell(), e.ID)
				if err != nil {
					s.log.Warn("mailbox ack not signed", "err", err)
					continue
				}
				acks = append(acks, a)
			case frameRefused:
				s.rememberRefused(key)
				taken[e.ID] = true
				dropped++
			}
		}
	}
	if len(taken) > 0 && seq < ^uint64(0) {
		rest := mailbox.Without(es, func(id message.ID) bool { return taken[id] })
		if err := s.putSlot(ctx, slot, rest, seq+1); err != nil {
			s.log.Debug("mailbox slot not emptied", "contact", c.Name, "err", err)
		} else {
			s.mcount.dropped.Add(int64(dropped))
		}
	}
	return acks, news
}

// Outcomes of frameIn.
const (
	// frameLeft: the frame stays in its slot (another device's list
	// may come, the quotas may allow it later, or ctx ended).
	frameLeft = iota
	// frameRecorded: the message is recorded in this cell, now.
	frameRecorded
	// frameRecordedBefore: the message was recorded in this cell before
	// (the frame is not news of c's: it may be one c wrote long ago).
	frameRecordedBefore
	// frameRefused: the frame does not decode or the receive path
	// refused it for a reason other than the quotas.
	frameRefused
)

// frameIn hands the frame entry e of the contact c to the receive path
// as if it came on a stream from its sealing device, and says what
// became of it. A frame from a device not on the contact's list is left
// (not charged: the newer list may add it); one the quotas refuse is left
// to be tried later.
func (s *Service) frameIn(ctx context.Context, c contactservice.Contact, e mailbox.Entry) int {
	if !c.Devices.Has(e.From) {
		s.mcount.refuse("device")
		return frameLeft
	}
	// Recorded before (a slot not emptied after): its key is spent, so
	// the frame would not open again.
	ent := store.EntityID(message.EntityOf(c.Cell(), e.ID))
	if m, err := s.get(ctx, ent); err == nil && m.Direction == In {
		// Its file too: a failure to record it refused the frame before,
		// so that it came again (received).
		if err := s.received(ctx, c.Cell(), m.File.attachment()); err != nil {
			s.log.Warn("mailbox frame's file not recorded", "contact", c.Name, "err", err)
			return frameLeft
		}
		return frameRecordedBefore
	}
	f, err := message.DecodeFrame(e.Frame)
	if err != nil || (f.Kind != message.KindInitial && f.Kind != message.KindSession) {
		s.mcount.refuse("frame")
		return frameRefused
	}
	id, err := s.receive(ctx, e.From, []contactservice.Contact{c}, f, nil)
	if err != nil {
		s.mcount.refuse("frame")
		s.log.Warn("mailbox frame refused", "contact", c.Name, "peer", e.From, "err", err)
		if errors.Is(err, errQuota) || ctx.Err() != nil {
			return frameLeft
		}
		return frameRefused
	}
	s.mcount.received.Add(1)
	if id != e.ID {
		s.mcount.refuse("frame")
		s.log.Warn("mailbox frame of another ID than its entry's", "contact", c.Name, "peer", e.From)
		return frameRefused
	}
	return frameRecorded
}

// refusedBefore reports whether the frame entry key was refused before.
func (s *Service) refusedBefore(key refusedFrame) bool {
	s.mstate.mu.Lock()
	defer s.mstate.mu.Unlock()
	return s.mstate.refused[key]
}

// rememberRefused remembers the refused frame entry key, forgetting the
// oldest beyond MaxRefusedFrames.
func (s *Service) rememberRefused(key refusedFrame) {
	s.mstate.mu.Lock()
	defer s.mstate.mu.Unlock()
	if s.mstate.refused == nil {
		s.mstate.refused = map[refusedFrame]bool{}
	}
	if s.mstate.refused[key] {
		return
	}
	if len(s.mstate.order) >= MaxRefusedFrames {
		delete(s.mstate.refused, s.mstate.order[0])
		s.mstate.order = s.mstate.order[1:]
	}
	s.mstate.refused[key] = true
	s.mstate.order = append(s.mstate.order, key)
}

// ackedOut records delivered the message of this cell (own) to the
// contact c that c's ack entry e names, and reports whether the ack is
// done with: the message is delivered or read, this cell holds no such
// message out to c, or the ack's signature does not verify (nothing
// holds a pair key but the two cells and their devices, present or
// removed: a forgery, dropped). An ack is believed only when signed
// (mailbox.VerifyAck) by a device on c's current device list; one from
// a device not on it is left (the newer list may add it), counted. The
// second result is whether the ack was believed, of a message out to c.
func (s *Service) ackedOut(ctx context.Context, own []byte, c contactservice.Contact, e mailbox.Entry) (bool, bool) {
	if err := mailbox.VerifyAck(e, c.Cell(), own); err != nil {
		s.mcount.refuse("ack")
		s.log.Warn("mailbox ack refused", "contact", c.Name, "peer", e.From, "err", err)
		return true, false
	}
	if !c.Devices.Has(e.From) {
		s.mcount.refuse("ack")
		s.log.Warn("mailbox ack of a device not on the contact's list", "contact", c.Name, "peer", e.From)
		return false, false
	}
	ent := store.EntityID(message.EntityOf(own, e.ID))
	m, err := s.get(ctx, ent)
	if err != nil {
		return errors.Is(err, store.ErrNotFound), false
	}
	if m.Direction != Out || m.Conversation != hex.EncodeToString(c.Cell()) {
		return true, false
	}
	if s.advanceTo(ctx, ent, Delivered) {
		s.mcount.acked.Add(1)
	}
	return true, true
}
