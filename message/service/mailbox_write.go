package service

import (
	"context"
	"math"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/message/mailbox"
	"github.com/exopeer/exopeer/store"
)

// mailboxStore leaves ms, pending messages to the contact c that no
// device of c acknowledged (oldest first), in the slots of this cell →
// c of the current epoch, sealed for one device of c (mailboxTarget),
// and records each one the slots hold Stored. A message the slots of the
// epoch hold already is not sealed again; one another device of this
// cell is sending, or whose author's grace has not passed, is left. It
// does nothing when c's list has no mailbox key. At most
// MailboxWriteMax messages are sealed.
func (s *Service) mailboxStore(ctx context.Context, c contactservice.Contact, ms []Message, own []byte, list *contact.DeviceList, grace time.Duration) {
	if !s.mailboxOn() || len(ms) == 0 {
		return
	}
	now := s.cfg.Now()
	pairs, _, err := s.pairWith(ctx, c, now)
	if err != nil {
		s.log.Debug("no mailbox with the contact", "contact", c.Name, "err", err)
		return
	}
	dev, ok := s.mailboxTarget(ctx, c)
	if !ok {
		return
	}
	byID := map[message.ID]Message{}
	build := func(present map[message.ID]bool) []mailbox.Entry {
		var es []mailbox.Entry
		for _, m := range ms {
			if len(es) >= MailboxWriteMax || ctx.Err() != nil {
				break
			}
			id, err := message.ParseID(m.ID)
			if err != nil {
				continue
			}
			if present[id] {
				byID[id] = m
				continue
			}
			s.kmu.Lock()
			_, busy := s.courier.sending[m.Entity]
			s.kmu.Unlock()
			if busy {
				continue
			}
			if cur, err := s.get(ctx, m.Entity); err != nil || !Pending(cur.State) {
				continue
			}
			env, err := envelopeOf(m, own, c.Cell(), s.self)
			if err != nil {
				continue
			}
			if env.Author != s.self && now.Before(m.Sent.Add(grace)) {
				break // its author goes first; the later ones wait behind it
			}
			f, err := s.sealFor(ctx, dev, env, list)
			if err != nil {
				s.log.Debug("message not sealed for a mailbox", "id", m.ID, "peer", dev, "err", err)
				break
			}
			b, err := f.Encode()
			if err != nil {
				continue
			}
			es = append(es, mailbox.Frame(id, s.self, dev, b))
			byID[id] = m
		}
		return es
	}
	there, err := s.mailboxAppend(ctx, pairs[0], own, c.Cell(), build)
	if err != nil {
		s.log.Debug("mailbox not written", "contact", c.Name, "err", err)
	}
	for id := range there {
		if m, ok := byID[id]; ok {
			if s.advanceTo(ctx, m.Entity, Stored) {
				s.mcount.stored.Add(1)
			}
		}
	}
}

// mailboxTarget chooses the one device of c a mailbox frame is sealed
// for: the first listed with which this device holds a session (its
// frame needs no prekeys and that device has answered before), else the
// first listed.
func (s *Service) mailboxTarget(ctx context.Context, c contactservice.Contact) (peer.ID, bool) {
	devs := c.Devices.Devices
	if len(devs) == 0 {
		return "", false
	}
	for _, d := range devs {
		e := s.cache.acquire(d)
		has := false
		if s.lockEntry(ctx, e) == nil {
			has = len(e.rec.sessions) > 0
			e.mu.Unlock()
		}
		s.cache.release(e)
		if has {
			return d, true
		}
	}
	return devs[0], true
}

// sealFor seals env for dev as a direct delivery would (deliverOnce):
// on the newest session with dev, or a new one from its prekey bundle
// (fetched from the DHT when dev is offline), the session's state after
// the step on disk before it returns. The frame is the caller's.
func (s *Service) sealFor(ctx context.Context, dev peer.ID, env *message.Envelope, list *contact.DeviceList) (message.Frame, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	e, _, err := s.acquireNamed(ctx, dev)
	if err != nil {
		return message.Frame{}, err
	}
	defer s.cache.release(e)
	if err := s.lockEntry(ctx, e); err != nil {
		return message.Frame{}, err
	}
	none := e.rec.sealer(s.run) < 0 // sessions of an earlier run never seal (restore.go)
	e.mu.Unlock()
	var fresh *stored
	if none {
		select { // one handshake at a time with the device (deliverOnce)
		case e.hs <- struct{}{}:
		case <-ctx.Done():
			return message.Frame{}, ctx.Err()
		}
		defer func() { <-e.hs }()
		if err := s.lockEntry(ctx, e); err != nil {
			return message.Frame{}, err
		}
		none = e.rec.sealer(s.run) < 0
		again := len(e.rec.sessions) > 0
		e.mu.Unlock()
		if none {
			var err error
			if fresh, err = s.handshake(ctx, dev, again); err != nil {
				return message.Frame{}, err
			}
		}
	}
	if err := s.lockEntry(ctx, e); err != nil {
		return message.Frame{}, err
	}
	f, _, err := s.sealLocked(e, fresh, outgoing{id: env.ID, env: env}, list)
	var v uint64
	if err == nil {
		v = s.cache.step(e)
	}
	e.mu.Unlock()
	if err != nil {
		return message.Frame{}, err
	}
	if err := s.persist(ctx, e, v); err != nil {
		return message.Frame{}, err
	}
	return f, nil
}

// mailboxAppend adds entries to the slots of pair in the direction from
// → to of the current epoch: it reads the slots (index 0 up to the
// first not found), calls build with the IDs they hold for the entries
// to add, appends them where they fit (Append; the rest to the next
// index), and reads each slot back after its put (two writers at one
// sequence number lose a write): what is missing is appended again, at
// most twice per slot. It returns the IDs the slots were seen to hold.
func (s *Service) mailboxAppend(ctx context.Context, pair mailbox.Pair, from, to []byte, build func(present map[message.ID]bool) []mailbox.Entry) (map[message.ID]bool, error) {
	epoch := mailbox.Epoch(s.cfg.Now())
	type held struct {
		slot  mailbox.Slot
		es    []mailbox.Entry
		seq   uint64
		found bool
	}
	read := func(i int) (held, error) {
		slot, err := mailbox.NewSlot(pair, from, to, epoch, i)
		if err != nil {
			return held{}, err
		}
		es, seq, _, found, err := s.readSlot(ctx, slot)
		return held{slot, es, seq, found}, err
	}
	present := map[message.ID]bool{}
	var slots []held
	for i := range mailbox.SlotsPerEpoch {
		h, err := read(i)
		if err != nil {
			return present, err
		}
		slots = append(slots, h)
		for _, e := range h.es {
			present[e.ID] = true
		}
		if !h.found {
			break
		}
	}
	add := build(present)
	retries := 0
	for i := 0; len(add) > 0 && i < mailbox.SlotsPerEpoch; i++ {
		if i >= len(slots) {
			h, err := read(i)
			if err != nil {
				return present, err
			}
			slots = append(slots, h)
		}
		h := slots[i]
		out, left, err := mailbox.Append(h.es, add...)
		if err != nil {
			return present, err
		}
		if len(out) == len(h.es) || h.seq == math.MaxUint64 {
			retries = 0
			continue // full, or sealed for good: the next index
		}
		if err := s.putSlot(ctx, h.slot, out, h.seq+1); err != nil {
			return present, err
		}
		back, err := read(i)
		if err != nil {
			return present, err
		}
		slots[i] = back
		got := map[message.ID]bool{}
		for _, e := range back.es {
			got[e.ID] = true
			present[e.ID] = true
		}
		var missing []mailbox.Entry
		for _, e := range out[len(h.es):] {
			if !got[e.ID] {
				missing = append(missing, e)
			}
		}
		add = append(missing, left...)
		if len(missing) > 0 && retries < 2 {
			retries++
			i-- // lost to another writer: again on what it wrote
			continue
		}
		retries = 0
	}
	return present, nil
}

// advanceTo records the message of entity id in state next if its
// state now Advances to it (advance: read and write one step for this
// device). It reports whether it wrote.
func (s *Service) advanceTo(ctx context.Context, id store.EntityID, next string) bool {
	cur, err := s.get(ctx, id)
	if err != nil {
		return false
	}
	cur.State = next
	wrote, err := s.advance(ctx, cur, time.Time{})
	if err != nil {
		s.log.Warn("message state not recorded", "id", cur.ID, "state", next, "err", err)
		return false
	}
	return wrote
}
