package service

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/store"
)

// ReadType is the trait type of a conversation's read marker
// (store.ReadSchema): how far this cell read the conversation, and
// whether the receipt saying so is still to be sent.
const ReadType = "exo.read"

// ReceiptsOff is the state of a read marker written while read receipts
// were off for the contact: nothing is to be sent. (Sent: a receipt is
// to be sent, the courier's; Delivered: a device of the contact
// acknowledged it.)
const ReceiptsOff = "off"

// Bounds of marking read (doc.go, # Receipts).
const (
	// ReadPage is how many messages Read, and a receipt received, read
	// per query while marking a conversation read: a conversation of
	// any length is paged through, each message its own write.
	ReadPage = 64
	// ReceiptsPerPass is how many read markers with a receipt to send
	// one courier pass reads (the latest written first).
	ReceiptsPerPass = 64
)

// marker is a read marker's document.
type marker struct {
	// Conversation is the contact's cell key (64 hex digits).
	Conversation string `json:"conversation"`
	// UpTo is the order key read up to.
	UpTo string `json:"upto"`
	// State is Sent (a receipt to send), Delivered or ReceiptsOff.
	State string `json:"state"`
}

// Marked is what Read did.
type Marked struct {
	// UpTo is the order key the conversation is read up to (empty: the
	// conversation has no message).
	UpTo string `json:"up_to"`
	// Marked is how many messages in went from delivered to read.
	Marked int `json:"marked"`
	// Receipt: a read receipt is to go to the contact (receipts are on
	// and something newer was read).
	Receipt bool `json:"receipt"`
}

// Read marks the conversation with the contact named name read up to
// the order key upTo (empty: its last message in): every message in at or
// before it goes from delivered to read in this cell's chain, ReadPage
// at a time, and, unless read receipts are off for the contact, the
// courier tells the contact's cell (one receipt for the conversation,
// covering everything read so far). An order key that does not parse
// wraps message.ErrBadOrderKey. It blocks until the marks are written.
func (s *Service) Read(ctx context.Context, name, upTo string) (Marked, error) {
	if err := s.enter(); err != nil {
		return Marked{}, err
	}
	defer s.wg.Done()
	if _, err := s.cellKey(); err != nil {
		return Marked{}, err
	}
	c, err := s.cons.Get(ctx, name)
	if err != nil {
		return Marked{}, err
	}
	if upTo == "" {
		// The last message in, not this cell's own last: a device whose
		// clock is ahead orders its own messages after the contact's
		// later ones, and a marker that far would tell of none of them.
		q := lastQuery(c)
		for {
			pg, err := s.store.Query(ctx, q)
			if err != nil {
				return Marked{}, fmt.Errorf("message: read %q: %w", name, err)
			}
			for _, h := range pg.Hits {
				if m, ok := decode(h.Entity); ok && m.Direction == In && m.Order > upTo {
					upTo = m.Order
				}
			}
			if upTo != "" || pg.Next == "" || len(pg.Hits) == 0 {
				break
			}
			q.After = pg.Next
		}
		if upTo == "" {
			return Marked{}, nil
		}
	} else if _, _, _, err := message.ParseOrderKey(upTo); err != nil {
		return Marked{}, fmt.Errorf("message: read %q up to: %w", name, err)
	}
	conv := hex.EncodeToString(c.Cell())
	n, _, err := s.markRead(ctx, conv, In, "", "", upTo, Delivered)
	if err != nil {
		return Marked{UpTo: upTo, Marked: n}, fmt.Errorf("message: read %q: %w", name, err)
	}
	due, err := s.markUpTo(ctx, c, upTo)
	if err != nil {
		return Marked{UpTo: upTo, Marked: n}, err
	}
	if due {
		s.wakeCourier()
	}
	return Marked{UpTo: upTo, Marked: n, Receipt: due}, nil
}

// lastQuery is the query of the last messages of the conversation with
// c, ReadPage a page, the last first.
func lastQuery(c contactservice.Contact) store.Query {
	q := ConversationQuery(c.Cell(), "", ReadPage)
	q.Desc = true
	return q
}

// markRead records "read" each message of the conversation conv (hex)
// in the direction dir (of the cell cell, hex, if not empty) in one of
// the states at or before the order key upTo, paging through each
// state's messages in the conversation's order, ReadPage at a time. It
// returns how many it marked. from, if not empty, is the cursor of the
// page to start at (one state only); resume is the cursor of the page
// it stopped at, where a receipt up to a later key goes on.
func (s *Service) markRead(ctx context.Context, conv, dir, cell, from, upTo string, states ...string) (n int, resume string, err error) {
	for _, st := range states {
		after := from
		for {
			pg, err := s.store.Query(ctx, store.Query{
				Type: Type, Where: []store.Predicate{
					{Field: "conversation", Op: store.Eq, Value: conv},
					{Field: "state", Op: store.Eq, Value: st},
				},
				Order: "order", Limit: ReadPage, After: after, Traits: []string{Type},
			})
			if err != nil {
				return n, after, err
			}
			past := false
			for _, h := range pg.Hits {
				m, ok := decode(h.Entity)
				if !ok {
					continue
				}
				if m.Order > upTo {
					past = true
					break
				}
				if m.Direction != dir || cell != "" && m.Cell != cell || !Advances(m.State, Read) {
					continue
				}
				m.State = Read
				// A zero Created keeps the trait's own.
				wrote, err := s.advance(ctx, m, time.Time{})
				if err != nil {
					return n, after, err
				}
				if wrote {
					n++
				}
			}
			if past || pg.Next == "" || len(pg.Hits) == 0 {
				break
			}
			after = pg.Next
		}
		resume = after
	}
	return n, resume, nil
}

// markUpTo records that this cell read the conversation with c up to
// upTo, unless its marker says as far already; it reports whether a
// receipt is due (receipts on for c, something newer read).
func (s *Service) markUpTo(ctx context.Context, c contactservice.Contact, upTo string) (bool, error) {
	// The marker's read and write are one step for this device: a
	// Read up to an earlier key never lowers a later one's.
	select {
	case s.mmu <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.mmu }()
	id := store.EntityID(message.ReadEntityOf(c.Cell()))
	old, ok, err := s.getMarker(ctx, id)
	if err != nil {
		return false, err
	}
	if ok && old.UpTo >= upTo {
		return false, nil
	}
	mk := marker{Conversation: hex.EncodeToString(c.Cell()), UpTo: upTo, State: Sent}
	if c.ReceiptsOff {
		mk.State = ReceiptsOff
	}
	if err := s.putMarker(ctx, id, mk); err != nil {
		return false, err
	}
	return mk.State == Sent, nil
}

// getMarker reads the marker of entity id; false if there is none.
func (s *Service) getMarker(ctx context.Context, id store.EntityID) (marker, bool, error) {
	e, err := s.store.Get(ctx, id, []string{ReadType})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return marker{}, false, nil
	case err != nil:
		return marker{}, false, fmt.Errorf("message: read marker: %w", err)
	}
	mk, ok := decodeMarker(e)
	return mk, ok, nil
}

// decodeMarker reads an entity's exo.read trait; false if it has none
// that makes sense (another writer's bad document: skipped).
func decodeMarker(e store.Entity) (marker, bool) {
	for _, t := range e.Traits {
		if t.Type != ReadType {
			continue
		}
		var mk marker
		if err := json.Unmarshal(t.Doc, &mk); err != nil {
			return marker{}, false
		}
		if _, _, _, err := message.ParseOrderKey(mk.UpTo); err != nil {
			return marker{}, false
		}
		return mk, true
	}
	return marker{}, false
}

// putMarker writes mk as the marker of entity id.
func (s *Service) putMarker(ctx context.Context, id store.EntityID, mk marker) error {
	doc, err := json.Marshal(mk)
	if err != nil {
		return err
	}
	if _, err := s.store.Put(ctx, id, []store.Trait{{Type: ReadType, Doc: doc}}); err != nil {
		return fmt.Errorf("message: record read marker: %w", err)
	}
	return nil
}

// receiptQuery is the query of the read markers with a receipt to send.
func receiptQuery() store.Query {
	return store.Query{
		Type: ReadType, Where: []store.Predicate{{Field: "state", Op: store.Eq, Value: Sent}},
		Order: store.OrderModified, Limit: ReceiptsPerPass, Traits: []string{ReadType},
	}
}

// receiptPass sends the receipts due (read markers in the state Sent)
// to each contact not in the receipts' backoff, and returns when the
// earliest of those in backoff is due (zero: none).
func (s *Service) receiptPass(ctx context.Context, own []byte, now time.Time) time.Time {
	pg, err := s.store.Query(ctx, receiptQuery())
	if err != nil {
		s.log.Warn("read markers not read", "err", err)
		return now.Add(s.cfg.CourierBackoff)
	}
	if len(pg.Hits) == 0 {
		s.kmu.Lock()
		clear(s.courier.rbackoff)
		s.kmu.Unlock()
		return time.Time{}
	}
	cs, err := s.cons.List(ctx)
	if err != nil {
		s.log.Warn("contacts not read", "err", err)
		return now.Add(s.cfg.CourierBackoff)
	}
	var next time.Time
	for _, h := range pg.Hits {
		mk, ok := decodeMarker(h.Entity)
		if !ok || mk.State != Sent {
			continue
		}
		i := slices.IndexFunc(cs, func(c contactservice.Contact) bool { return hex.EncodeToString(c.Cell()) == mk.Conversation })
		if i < 0 {
			continue // a contact removed: nobody to tell
		}
		c := cs[i]
		s.kmu.Lock()
		r, inBackoff := s.courier.rbackoff[mk.Conversation]
		s.kmu.Unlock()
		if inBackoff && now.Before(r.at) {
			next = earliestSet(next, r.at)
			continue
		}
		if at, ok := s.sendReceipt(ctx, c, h.Entity.ID, mk, own, now); !ok {
			next = earliestSet(next, at)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return next
}

// sendReceipt tells c's cell that this cell read the conversation up to
// mk.UpTo, and records the marker delivered if nobody read further
// meanwhile; with receipts off for c, it records the marker off and
// sends nothing. It returns when to try again and false if no device of
// c acknowledged.
func (s *Service) sendReceipt(ctx context.Context, c contactservice.Contact, id store.EntityID, mk marker, own []byte, now time.Time) (time.Time, bool) {
	if c.ReceiptsOff {
		mk.State = ReceiptsOff
		if err := s.putMarker(ctx, id, mk); err != nil {
			s.log.Warn("read marker not recorded", "contact", c.Name, "err", err)
		}
		return time.Time{}, true
	}
	sent, author, seq, err := message.ParseOrderKey(mk.UpTo)
	if err != nil {
		return time.Time{}, true // decodeMarker checked it
	}
	r := &message.Receipt{Cell: own, To: c.Cell(), Device: s.self, Sent: sent, Author: author, Seq: seq}
	if err := s.read(r.ID[:]); err != nil {
		return s.failedReceipt(mk.Conversation, now), false
	}
	delivered := false
	for _, dev := range s.order(c) {
		if err := s.deliverOut(ctx, dev, outgoing{id: r.ID, rec: r}, nil, func() error { return nil }); err == nil {
			delivered = true
			break
		}
		if ctx.Err() != nil {
			return now, false
		}
	}
	if !delivered {
		s.log.Debug("read receipt not delivered", "contact", c.Name)
		return s.failedReceipt(mk.Conversation, now), false
	}
	s.kmu.Lock()
	delete(s.courier.rbackoff, mk.Conversation)
	s.kmu.Unlock()
	s.ccount.receipts.Add(1)
	// Another device of the cell may have read further meanwhile: its
	// marker, newer, stays due.
	cur, ok, err := s.getMarker(ctx, id)
	if err != nil || !ok || cur.UpTo != mk.UpTo || cur.State != Sent {
		return time.Time{}, true
	}
	cur.State = Delivered
	if err := s.putMarker(ctx, id, cur); err != nil {
		s.log.Warn("read marker not recorded", "contact", c.Name, "err", err)
	}
	return time.Time{}, true
}

// failedReceipt pushes the next receipt to the contact of cell key conv
// (hex) back, as failedContact does its messages.
func (s *Service) failedReceipt(conv string, now time.Time) time.Time {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	return s.backoffLocked(s.courier.rbackoff, conv, now)
}

// checkReceipt decodes an opened receipt and checks that it is of one
// of the contacts cs (returned), the stream's device's, and for this
// cell.
func (s *Service) checkReceipt(pt []byte, from peer.ID, cs []contactservice.Contact) (*message.Receipt, contactservice.Contact, error) {
	r, err := message.DecodeReceipt(pt)
	if err != nil {
		return nil, contactservice.Contact{}, err
	}
	i := slices.IndexFunc(cs, func(c contactservice.Contact) bool { return r.Cell.Equal(c.Cell()) })
	if i < 0 {
		return nil, contactservice.Contact{}, errors.New("message: receipt of another cell than the contact's")
	}
	if r.Device != from {
		return nil, contactservice.Contact{}, errors.New("message: receipt of another device than the stream's")
	}
	if own, err := s.cellKey(); err != nil || !r.To.Equal(own) {
		return nil, contactservice.Contact{}, errors.New("message: receipt for another cell")
	}
	return r, cs[i], nil
}

// receiveReceipt records "read" this cell's messages to c delivered at or before
// the receipt's order key (those of c's conversation only: the
// receipt's cell is c's) while the session's state v is written, and
// returns the receipt's ID to acknowledge once both are on disk.
func (s *Service) receiveReceipt(ctx context.Context, e *peerEntry, v uint64, from peer.ID, c contactservice.Contact, r *message.Receipt) (message.ID, error) {
	own := hex.EncodeToString(r.To)
	conv, upTo := hex.EncodeToString(c.Cell()), r.UpTo()
	rec := goDo(func() error {
		// The key first, on disk before the acknowledgement: a message
		// pending now at or before the receipt's key that the
		// contact's cell acknowledges later goes read then
		// (readBefore), not delivered.
		if err := s.noteReceipt(ctx, c, upTo); err != nil {
			return err
		}
		// A receipt goes on from the page the last one of the contact
		// stopped at, and one up to no later key marks nothing: a
		// contact sending receipts in a loop does not have the
		// conversation's unread messages in paged through each time.
		s.kmu.Lock()
		last, ok := s.receipts[conv]
		s.kmu.Unlock()
		if ok && upTo <= last.upTo {
			return nil
		}
		// Delivered only: a pending message (sent, stored) before the
		// key may never have reached the contact (written by another
		// device, or its delivery failing); read, it would no longer be
		// delivered.
		n, resume, err := s.markRead(ctx, conv, Out, own, last.resume, upTo, Delivered)
		s.log.Debug("read receipt", "contact", c.Name, "marked", n)
		s.kmu.Lock()
		defer s.kmu.Unlock()
		cur, had := s.receipts[conv]
		switch {
		case err == nil:
			if !had || cur.upTo < upTo {
				s.receipts[conv] = applied{upTo: upTo, resume: resume}
			}
		case had == ok && cur == last && resume != last.resume:
			// Cut short (Config.Timeout): the pages before resume are
			// done, and the receipt, sent again, goes on from there
			// rather than paging from the start each time.
			s.receipts[conv] = applied{upTo: last.upTo, resume: resume}
		}
		return err
	})
	perr := s.persist(ctx, e, v)
	if err := rec.wait(); err != nil {
		return message.ID{}, err
	}
	if perr != nil {
		return message.ID{}, perr
	}
	s.poke(from)
	return r.ID, nil
}

// applied is where the last receipt of a contact applied on this device
// stopped (Service.receipts): its key, and the cursor of the page it
// stopped at.
type applied struct {
	upTo, resume string
}

// earliestSet is earliest where a zero a is no time yet.
func earliestSet(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}
