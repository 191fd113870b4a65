package service

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/store"
)

// Type is the trait type of a recorded message (store.MessageSchema).
const Type = "exo.message"

// Directions of a recorded message (its states are in states.go).
const (
	In  = "in"
	Out = "out"
)

// Message is a message as this cell recorded it: an entity with one
// exo.message trait.
type Message struct {
	Entity store.EntityID `json:"-"` // message.EntityOf(sender cell, ID)
	ID     string         `json:"id"`
	// Conversation is the contact's cell key (64 hex digits).
	Conversation string `json:"conversation"`
	// Direction is In or Out.
	Direction string `json:"direction"`
	// Cell and Device are the sender's cell key and device.
	Cell   string `json:"cell"`
	Device string `json:"device"`
	// Sent is the sender's time; Received this cell's (a message in):
	// when it first recorded it, its trait's Created, which the store
	// keeps the earliest of its devices' records (decode).
	Sent     time.Time  `json:"sent"`
	Received *time.Time `json:"received,omitempty"`
	// Order is the key that sorts the conversation (message.OrderKey).
	Order string `json:"order"`
	Text  string `json:"text"`
	// State is one of states.go's: Sent, Stored, Delivered, Read or
	// Undeliverable.
	State string `json:"state"`
	// File is the file the message shares, if any (share.go).
	File *File `json:"file,omitempty"`
}

// put writes m as its entity (m.Entity), its trait created at created
// (the time the message was first recorded in this cell), so that the
// store reads nothing to keep it.
func (s *Service) put(ctx context.Context, m Message, created time.Time) error {
	doc, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := s.store.Put(ctx, m.Entity, []store.Trait{{Type: Type, Doc: doc, Created: created}}); err != nil {
		return fmt.Errorf("message: record %s: %w", m.ID, err)
	}
	return nil
}

// advance records m in the state m.State unless the record held is in
// that state or a later one (Advances): news older than the record (an
// acknowledgement after the read receipt) never takes it back. The read
// and the write are one step for this device. It reports whether it
// wrote; a failed read writes nothing.
func (s *Service) advance(ctx context.Context, m Message, created time.Time) (bool, error) {
	mu := &s.smu[m.Entity[0]%byte(len(s.smu))]
	mu.Lock()
	defer mu.Unlock()
	cur, err := s.get(ctx, m.Entity)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return false, fmt.Errorf("message: read %s: %w", m.ID, err)
	}
	// A message out going delivered that its contact's last receipt
	// covers is read (receiptkey.go): the receipt came first.
	if m.State == Delivered && s.readBefore(ctx, m) {
		m.State = Read
	}
	if err == nil && !Advances(cur.State, m.State) {
		return false, nil
	}
	if err := s.put(ctx, m, created); err != nil {
		return true, err
	}
	// A receipt applied between the look above and the write found the
	// message still pending: its key is on disk before its marks begin,
	// so this second look sees it.
	if m.State == Delivered && s.readBefore(ctx, m) {
		m.State = Read
		return true, s.put(ctx, m, created)
	}
	return true, nil
}

// recordIn writes m, a message received at now, unless it is held
// already in the state m has or a later one (read): it may come more
// than once, so recording it is idempotent. If the read fails (not a message
// not found), the trait goes with no Created, so that the store keeps
// that of a record it holds, and in m's state: a message read already
// that comes again (its acknowledgement lost) while the read fails is
// taken back to "delivered". Accepted: refusing it instead would stop a
// device without an index of its own from receiving anything while the
// store member it reads from is unreachable.
func (s *Service) recordIn(ctx context.Context, m Message, now time.Time) error {
	created := now
	e, err := s.store.Get(ctx, m.Entity, []string{Type})
	switch {
	case err == nil:
		// A message read already, or in a state of a newer binary, is
		// not taken back (Advances).
		if old, ok := decode(e); ok && !Advances(old.State, m.State) {
			if m.Direction == In {
				s.ccount.dups.Add(1)
			}
			return nil
		}
		for _, t := range e.Traits {
			if t.Type == Type && !t.Created.IsZero() {
				created = t.Created
			}
		}
	case !errors.Is(err, store.ErrNotFound):
		created = time.Time{}
	}
	return s.put(ctx, m, created)
}

// get returns the message recorded as entity id.
func (s *Service) get(ctx context.Context, id store.EntityID) (Message, error) {
	e, err := s.store.Get(ctx, id, []string{Type})
	if err != nil {
		return Message{}, err
	}
	m, ok := decode(e)
	if !ok {
		return Message{}, store.ErrNotFound
	}
	return m, nil
}

// decode reads an entity's exo.message trait.
func decode(e store.Entity) (Message, bool) {
	for _, t := range e.Traits {
		if t.Type != Type {
			continue
		}
		var m Message
		if err := json.Unmarshal(t.Doc, &m); err != nil {
			return Message{}, false
		}
		m.Entity = e.ID
		if m.Direction == In && m.Received != nil && !t.Created.IsZero() {
			// The trait's Created is the earliest of the cell's records of
			// it; the document is the last one's.
			c := t.Created.UTC()
			m.Received = &c
		}
		return m, true
	}
	return Message{}, false
}

// newMessage is the record of env, in direction dir with the contact of
// cell key conv.
func newMessage(env *message.Envelope, conv ed25519.PublicKey, dir, state string) Message {
	return Message{
		Entity:       store.EntityID(message.EntityOf(env.Cell, env.ID)),
		ID:           env.ID.String(),
		Conversation: hex.EncodeToString(conv),
		Direction:    dir,
		Cell:         hex.EncodeToString(env.Cell),
		Device:       env.Writer().String(),
		Sent:         time.UnixMilli(env.Sent).UTC(),
		Order:        env.OrderKey(),
		Text:         env.Text,
		State:        state,
		File:         fileOf(env.File),
	}
}

// Page is one page of a conversation.
type Page struct {
	Messages []Message `json:"messages"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// Conversation returns the messages with the contact named name, in the
// conversation's order (oldest first), limit at a time (0: the store's
// default) from after (a Page.Next; empty: the start).
func (s *Service) Conversation(ctx context.Context, name, after string, limit int) (Page, error) {
	if err := s.enter(); err != nil {
		return Page{}, err
	}
	defer s.wg.Done()
	c, err := s.cons.Get(ctx, name)
	if err != nil {
		return Page{}, err
	}
	pg, err := s.store.Query(ctx, ConversationQuery(c.Cell(), after, limit))
	if err != nil {
		return Page{}, fmt.Errorf("message: conversation %q: %w", name, err)
	}
	out := Page{Messages: []Message{}, Next: pg.Next}
	for _, h := range pg.Hits {
		if m, ok := decode(h.Entity); ok {
			out.Messages = append(out.Messages, m)
		}
	}
	return out, nil
}

// ConversationQuery is the store query of the conversation with the
// cell key conv, in order.
func ConversationQuery(conv ed25519.PublicKey, after string, limit int) store.Query {
	return store.Query{
		Type: Type, Where: []store.Predicate{{Field: "conversation", Op: store.Eq, Value: hex.EncodeToString(conv)}},
		Order: "order", Limit: limit, After: after, Traits: []string{Type},
	}
}

// InboxLimit is how many of the latest messages an inbox watch sends
// first.
const InboxLimit = 50

// inboxQuery is the query of the latest messages (of the contact named
// name, if not empty).
func (s *Service) inboxQuery(ctx context.Context, name string) (store.Query, error) {
	q := store.Query{Type: Type, Order: store.OrderModified, Limit: InboxLimit, Traits: []string{Type}}
	if name != "" {
		c, err := s.cons.Get(ctx, name)
		if err != nil {
			return store.Query{}, err
		}
		q.Where = []store.Predicate{{Field: "conversation", Op: store.Eq, Value: hex.EncodeToString(c.Cell())}}
	}
	return q, nil
}

// Latest returns the InboxLimit messages recorded or changed last in
// this cell (with the contact named name, if not empty), oldest first.
func (s *Service) Latest(ctx context.Context, name string) ([]Message, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.wg.Done()
	q, err := s.inboxQuery(ctx, name)
	if err != nil {
		return nil, err
	}
	pg, err := s.store.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("message: inbox: %w", err)
	}
	out := []Message{}
	for i := len(pg.Hits) - 1; i >= 0; i-- {
		if m, ok := decode(pg.Hits[i].Entity); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// Inbox sends the messages recorded in this cell (of the contact named
// name only, if name is not empty): first the latest InboxLimit, oldest
// first, then each message as it is recorded or its state changes,
// until ctx ends or the service closes; then the channel is closed. It
// blocks until the watch is set up.
func (s *Service) Inbox(ctx context.Context, name string) (<-chan Message, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.wg.Done()
	q, err := s.inboxQuery(ctx, name)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	events, err := s.store.Watch(wctx, q)
	if err != nil {
		stop()
		cancel()
		return nil, fmt.Errorf("message: inbox: %w", err)
	}
	out := make(chan Message)
	s.wg.Add(1) // within enter's count: Close waits for it too
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer cancel()
		defer stop()
		send := func(m Message) bool {
			select {
			case out <- m:
				return true
			case <-wctx.Done():
				return false
			}
		}
		for ev := range events {
			var ms []Message
			if ev.Page != nil {
				for i := len(ev.Page.Hits) - 1; i >= 0; i-- {
					if m, ok := decode(ev.Page.Hits[i].Entity); ok {
						ms = append(ms, m)
					}
				}
			}
			for _, ch := range ev.Changes {
				if ch.Kind == store.Removed {
					continue
				}
				if m, ok := decode(ch.Hit.Entity); ok {
					ms = append(ms, m)
				}
			}
			for _, m := range ms {
				if !send(m) {
					return
				}
			}
		}
	}()
	return out, nil
}
