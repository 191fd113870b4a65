package service

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/store"
)

// Bounds of the courier (doc.go, "Courier").
const (
	// CourierPerContact is how many of a contact's pending messages one
	// pass reads and tries, oldest first in the conversation's order.
	CourierPerContact = 32
	// MaxPokes bounds the devices remembered between two passes as
	// connected or heard from; past it, the backoff of each contact with
	// a device connected inbound is reset (not every contact's: fresh
	// peer IDs are free, so strangers can connect past it at will).
	MaxPokes = 256
	// CourierGap is the least time between the end of a pass and the
	// start of the next: the wake-ups meanwhile (every message recorded
	// or received, every connection) make one pass.
	CourierGap = time.Second
	// PokeGap is the least time between two tries of a contact that its
	// devices' connections or messages bring forward: a device
	// reconnecting every second but never acknowledging gets a try per
	// PokeGap, not per pass; the delay goes on doubling at each failure.
	PokeGap = 30 * time.Second
)

// CourierStats counts the courier's work and the duplicates received.
type CourierStats struct {
	// Delivered is the pending messages this device delivered (Send's
	// own first tries not counted).
	Delivered int64
	// Failed is the passes in which no device of a contact acknowledged.
	Failed int64
	// Duplicates is the messages received that this cell held already
	// as delivered (delivered by two devices, or an acknowledgement lost).
	Duplicates int64
	// Receipts is the read receipts this device delivered.
	Receipts int64
	// Undeliverable is the pending records this device recorded
	// undeliverable (they make no valid envelope).
	Undeliverable int64
}

// courierState is the courier's state, guarded by Service.kmu.
type courierState struct {
	// backoff is each contact's (by cell key, hex) retry time and delay:
	// at most one entry per contact with pending messages (dropped when
	// a pass finds none, or one is delivered).
	backoff map[string]retry
	// rbackoff is the same for each contact's read receipt due (at most
	// one entry per contact with one due).
	rbackoff map[string]retry
	// pokes are devices connected or heard from since the last pass (at
	// most MaxPokes; pokeAll past it).
	pokes   map[peer.ID]struct{}
	pokeAll bool
	// sending are the messages a Send of this device is delivering: the
	// courier leaves them alone (at most one per Send under way).
	sending map[store.EntityID]struct{}
}

type retry struct {
	at    time.Time
	delay time.Duration
	// poked is when a connection or a message of the contact's last
	// brought its try forward (PokeGap).
	poked time.Time
}

// courierCounts are the counts of CourierStats.
type courierCounts struct {
	delivered, failed, dups, receipts, undeliverable atomic.Int64
}

// Courier returns the courier's counts since Start.
func (s *Service) Courier() CourierStats {
	return CourierStats{
		Delivered: s.ccount.delivered.Load(), Failed: s.ccount.failed.Load(), Duplicates: s.ccount.dups.Load(),
		Receipts: s.ccount.receipts.Load(), Undeliverable: s.ccount.undeliverable.Load(),
	}
}

// wakeCourier makes the courier run a pass soon; it never blocks.
func (s *Service) wakeCourier() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// poke notes that the device id connected or sent a message: the
// backoff of its contacts is reset at the next pass, which it wakes.
func (s *Service) poke(id peer.ID) {
	s.kmu.Lock()
	if len(s.courier.pokes) < MaxPokes {
		s.courier.pokes[id] = struct{}{}
	} else {
		s.courier.pokeAll = true
	}
	s.kmu.Unlock()
	s.wakeCourier()
}

// notifee pokes the courier when a device connects to this host (an
// inbound connection: the courier's own dials, outbound, would reset
// the backoff of a contact whose device is up but does not acknowledge).
func (s *Service) notifee() network.Notifiee {
	return &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.Stat().Direction == network.DirInbound {
			s.poke(c.RemotePeer())
			s.seenDevice(c.RemotePeer())
		}
	}}
}

// inbound reports whether the device id is connected to this host by
// a connection it opened.
func (s *Service) inbound(id peer.ID) bool {
	return slices.ContainsFunc(s.h.Network().ConnsToPeer(id), func(c network.Conn) bool {
		return c.Stat().Direction == network.DirInbound
	})
}

// sendingMark marks the message id as delivered by a Send under way, to
// unmark with the returned function (which may be called again).
func (s *Service) sendingMark(id store.EntityID) func() {
	s.kmu.Lock()
	s.courier.sending[id] = struct{}{}
	s.kmu.Unlock()
	return func() {
		s.kmu.Lock()
		delete(s.courier.sending, id)
		s.kmu.Unlock()
	}
}

// resetContact drops the backoff of the contact of cell key conv (hex).
func (s *Service) resetContact(conv string) {
	s.kmu.Lock()
	delete(s.courier.backoff, conv)
	s.kmu.Unlock()
}

// failedContact pushes the contact's next try back: the first delay is
// Config.CourierBackoff, each failure doubles it up to
// Config.CourierMaxBackoff.
func (s *Service) failedContact(conv string, now time.Time) time.Time {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	return s.backoffLocked(s.courier.backoff, conv, now)
}

// backoffLocked pushes the next try of conv in the backoff map m back
// (failedContact); s.kmu is held.
func (s *Service) backoffLocked(m map[string]retry, conv string, now time.Time) time.Time {
	r, ok := m[conv]
	if !ok || r.delay <= 0 {
		r.delay = s.cfg.CourierBackoff
	} else {
		r.delay = min(2*r.delay, s.cfg.CourierMaxBackoff)
	}
	r.at = now.Add(r.delay)
	m[conv] = r
	return r.at
}

// runCourier is the courier's goroutine (started by Start, waited for
// by Close): a pass at start, then at each wake-up (a contact's device
// connected or sent a message, a pending message recorded, Send
// failed) or when the earliest retry is due.
func (s *Service) runCourier() {
	defer s.wg.Done()
	ctx := s.ctx
	var events <-chan store.WatchEvent
	var rewatch time.Time // a watch that ended is made again from then
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if events == nil && !s.cfg.Now().Before(rewatch) {
			// A node in no cell has no store to watch yet: tried again
			// at each pass until it is in one.
			if _, err := s.cellKey(); err == nil {
				if events, err = s.store.Watch(ctx, pendingWatch()); err != nil {
					s.log.Debug("pending messages not watched", "err", err)
					events = nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		case _, ok := <-events:
			if !ok {
				events = nil // the watch ended: made again, not at once
				rewatch = s.cfg.Now().Add(s.cfg.CourierBackoff)
			}
		}
		next := max(s.courierPass(ctx), CourierGap)
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timer.Reset(CourierGap)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(next - CourierGap)
	}
}

// pendingWatch is the query the courier watches: the pending message
// written last. The index sends an event only when the watched page
// changes, so that a watch of the oldest pending message (the
// conversations' order) missed a message left pending behind it, by
// another device of the cell, for another contact: the courier then
// saw it only at its next retry of the contact in backoff. Every
// message recorded pending is the last written (its writer's clock
// permitting) when it is recorded.
func pendingWatch() store.Query {
	q := pendingQuery(1, "", Sent)
	q.Order = store.OrderModified
	return q
}

// pendingStates are the states Pending reports: the courier's to deliver.
var pendingStates = func() []string {
	var out []string
	for _, st := range []string{Sent, Stored, Delivered, Read, Undeliverable} {
		if Pending(st) {
			out = append(out, st)
		}
	}
	return out
}()

// pendingQuery is the query of the messages in state, in the
// conversations' order; of the conversation conv (hex) only if it is
// not empty.
func pendingQuery(limit int, conv, state string) store.Query {
	q := store.Query{
		Type: Type, Where: []store.Predicate{{Field: "state", Op: store.Eq, Value: state}},
		Order: "order", Limit: limit, Traits: []string{Type},
	}
	if conv != "" {
		q.Where = append(q.Where, store.Predicate{Field: "conversation", Op: store.Eq, Value: conv})
	}
	return q
}

// pendingHits returns the first limit pending messages (each state of
// pendingStates), in the conversations' order; of the conversation conv
// (hex) only if it is not empty. The store has no disjunction: one query
// per state, merged.
func (s *Service) pendingHits(ctx context.Context, limit int, conv string) ([]store.Hit, error) {
	var hits []store.Hit
	order := map[store.EntityID]string{}
	for _, st := range pendingStates {
		pg, err := s.store.Query(ctx, pendingQuery(limit, conv, st))
		if err != nil {
			return nil, err
		}
		for _, h := range pg.Hits {
			if m, ok := decode(h.Entity); ok {
				order[h.Entity.ID] = m.Order
			}
			hits = append(hits, h)
		}
	}
	slices.SortStableFunc(hits, func(a, b store.Hit) int { return strings.Compare(order[a.Entity.ID], order[b.Entity.ID]) })
	return hits[:min(len(hits), limit)], nil
}

// courierPass tries the pending messages of each contact not in backoff
// (CourierPerContact at most, oldest first) and returns how long until
// the next pass is due. It first reads whether any message is pending
// besides those this device's Sends are delivering, then each contact's
// own (so that no contact's backlog hides another's).
func (s *Service) courierPass(ctx context.Context) time.Duration {
	now := s.cfg.Now()
	next := now.Add(s.cfg.CourierMaxBackoff)
	own, err := s.cellKey()
	if err != nil {
		return s.cfg.CourierBackoff
	}
	s.resetPoked(ctx, now)
	// The read receipts due go first: each is small, and one per
	// contact at most.
	if at := s.receiptPass(ctx, own, now); !at.IsZero() {
		next = earliest(next, at)
	}
	// Whether anything is pending besides the messages this device's
	// Sends are delivering (each Send's record wakes the courier).
	s.kmu.Lock()
	busy := len(s.courier.sending)
	s.kmu.Unlock()
	first, err := s.pendingHits(ctx, min(busy+1, 256), "")
	if err != nil {
		s.log.Warn("pending messages not read", "err", err)
		return s.cfg.CourierBackoff
	}
	s.kmu.Lock()
	idle := !slices.ContainsFunc(first, func(h store.Hit) bool {
		_, ok := s.courier.sending[h.Entity.ID]
		return !ok
	})
	s.kmu.Unlock()
	if idle {
		s.kmu.Lock()
		clear(s.courier.backoff)
		s.kmu.Unlock()
		return next.Sub(now)
	}
	cs, err := s.cons.List(ctx)
	if err != nil {
		s.log.Warn("contacts not read", "err", err)
		return s.cfg.CourierBackoff
	}
	grace := s.cfg.CourierGrace
	if r := s.cell.Roster(); r != nil {
		if m, ok := r.Member(s.self); ok && m.Roles&cell.RoleMailbox != 0 {
			grace = s.cfg.MailboxGrace
		}
	}
	ownHex := hex.EncodeToString(own)
	for _, c := range cs {
		conv := hex.EncodeToString(c.Cell())
		s.kmu.Lock()
		r, inBackoff := s.courier.backoff[conv]
		s.kmu.Unlock()
		if inBackoff && now.Before(r.at) {
			next = earliest(next, r.at)
			continue
		}
		pg, err := s.pendingHits(ctx, CourierPerContact, conv)
		if err != nil {
			s.log.Warn("pending messages not read", "contact", c.Name, "err", err)
			next = earliest(next, now.Add(s.cfg.CourierBackoff))
			continue
		}
		var ms []Message
		for _, h := range pg {
			if m, ok := decode(h.Entity); ok && m.Direction == Out && m.Cell == ownHex && Pending(m.State) {
				ms = append(ms, m)
			}
		}
		if len(ms) == 0 {
			s.kmu.Lock()
			delete(s.courier.backoff, conv) // nothing pending
			s.kmu.Unlock()
			continue
		}
		if at, ok := s.deliverPending(ctx, c, ms, own, grace, now); !ok {
			next = earliest(next, at)
		}
		if ctx.Err() != nil {
			return 0
		}
	}
	return max(next.Sub(now), 0)
}

// resetPoked resets the backoff of the contacts of the devices poked
// since the last pass. Past MaxPokes (anyone can connect from fresh
// peer IDs, so a flood of them is no sign a contact is back), it also
// resets that of each contact in backoff with a device connected to
// this host by an inbound connection, and no other.
func (s *Service) resetPoked(ctx context.Context, now time.Time) {
	s.kmu.Lock()
	pokes, all := s.courier.pokes, s.courier.pokeAll
	s.courier.pokes, s.courier.pokeAll = map[peer.ID]struct{}{}, false
	s.kmu.Unlock()
	if all {
		if cs, err := s.cons.List(ctx); err == nil {
			for _, c := range cs {
				if slices.ContainsFunc(c.Devices.Devices, s.inbound) {
					s.kmu.Lock()
					s.pokeLocked(hex.EncodeToString(c.Cell()), now)
					s.kmu.Unlock()
				}
			}
		} else {
			s.log.Warn("contacts not read", "err", err)
		}
	}
	for id := range pokes {
		cs, err := s.cons.ByDevice(ctx, id)
		if err != nil {
			continue
		}
		s.kmu.Lock()
		for _, c := range cs {
			s.pokeLocked(hex.EncodeToString(c.Cell()), now)
		}
		s.kmu.Unlock()
	}
}

// pokeLocked brings the next try of the contact of cell key conv (hex)
// forward to now, unless a poke did less than PokeGap ago; its delay is
// kept, so that failures go on doubling it. s.kmu is held.
func (s *Service) pokeLocked(conv string, now time.Time) {
	for _, m := range []map[string]retry{s.courier.backoff, s.courier.rbackoff} {
		r, ok := m[conv]
		if !ok || now.Sub(r.poked) < PokeGap {
			continue
		}
		r.at, r.poked = now, now
		m[conv] = r
	}
}

// deliverPending delivers ms, pending messages to c in order, until one
// is not delivered: then it returns when to try again and false. A
// message another device wrote waits grace after its sent time (one
// being sent by a Send of this device is left to it).
func (s *Service) deliverPending(ctx context.Context, c contactservice.Contact, ms []Message, own []byte, grace time.Duration, now time.Time) (time.Time, bool) {
	list, err := s.cons.DeviceList(ctx)
	if err != nil {
		list = nil
	}
	conv := hex.EncodeToString(c.Cell())
	for i, m := range ms {
		s.kmu.Lock()
		_, busy := s.courier.sending[m.Entity]
		s.kmu.Unlock()
		if busy {
			continue
		}
		// Read again after the check: the pass's query may predate a
		// Send's record of the delivery (Send records it, then unmarks).
		cur, err := s.get(ctx, m.Entity)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			// Tried again after the backoff, not left until a wake-up.
			s.log.Warn("pending message not read", "id", m.ID, "err", err)
			return s.failedContact(conv, now), false
		case !Pending(cur.State):
			continue
		}
		env, err := envelopeOf(m, own, c.Cell(), s.self)
		if err != nil {
			// It can never be delivered: no longer pending, so that no
			// number of them hides the contact's later messages.
			s.log.Warn("pending message undeliverable", "id", m.ID, "err", err)
			cur.State = Undeliverable
			if _, err := s.advance(ctx, cur, time.Time{}); err != nil {
				s.log.Warn("undeliverable state not recorded", "id", m.ID, "err", err)
				return s.failedContact(conv, now), false
			}
			s.ccount.undeliverable.Add(1)
			continue
		}
		if env.Author != s.self {
			if due := m.Sent.Add(grace); now.Before(due) {
				return due, false
			}
		}
		delivered, busy := false, false
		for _, dev := range s.order(c) {
			err := s.deliver(ctx, dev, env, list, func() error { return nil })
			if err == nil {
				delivered = true
				break
			}
			busy = busy || errors.Is(err, errBusy)
			if ctx.Err() != nil {
				return now, false
			}
		}
		if !delivered {
			s.ccount.failed.Add(1)
			s.log.Debug("pending messages not delivered", "contact", c.Name, "id", m.ID, "busy", busy)
			// Left in a blind mailbox (if the contact has one), and the
			// contact's slots read: an ack may be waiting there. Not when
			// a device of the contact answered busy: it is online and
			// asks this cell to wait (its reader would refuse the frames
			// for the same quota), so the backoff alone applies.
			if !busy {
				s.mailboxStore(ctx, c, ms[i:], own, list, grace)
				if s.mailboxOn() {
					s.wakeMailbox(conv)
				}
			}
			return s.failedContact(conv, now), false
		}
		s.kmu.Lock()
		delete(s.courier.backoff, conv)
		s.kmu.Unlock()
		m.State = Delivered
		// A zero Created keeps the trait's own (the store reads it); a
		// receipt applied meanwhile left it read: kept.
		if _, err := s.advance(ctx, m, time.Time{}); err != nil {
			s.log.Warn("delivered state not recorded", "id", m.ID, "err", err)
			return s.failedContact(conv, now), false
		}
		s.ccount.delivered.Add(1)
	}
	return time.Time{}, true
}

// envelopeOf rebuilds the envelope of the pending message m of the cell
// own to the cell to, delivered by the device courier: its ID, author,
// sent time and seq (from its order key) and text as recorded; an
// error if they make no valid envelope.
func envelopeOf(m Message, own, to []byte, courier peer.ID) (*message.Envelope, error) {
	id, err := message.ParseID(m.ID)
	if err != nil {
		return nil, err
	}
	author, err := peer.Decode(m.Device)
	if err != nil {
		return nil, fmt.Errorf("message: author %q: %w", m.Device, err)
	}
	i := strings.LastIndexByte(m.Order, '.')
	if i < 0 {
		return nil, fmt.Errorf("message: order key %q", m.Order)
	}
	seq, err := strconv.ParseUint(m.Order[i+1:], 16, 64)
	if err != nil {
		return nil, fmt.Errorf("message: order key %q: %w", m.Order, err)
	}
	env := &message.Envelope{
		ID: id, Cell: own, To: to, Device: courier, Author: author,
		Sent: m.Sent.UnixMilli(), Seq: seq, Text: m.Text, File: m.File.attachment(),
	}
	if env.OrderKey() != m.Order {
		return nil, fmt.Errorf("message: order key %q does not match the message's fields", m.Order)
	}
	// One that cannot be encoded would fail every try, before anything
	// is sent, and hold the contact's later messages back for good.
	if _, err := env.Encode(); err != nil {
		return nil, err
	}
	return env, nil
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
