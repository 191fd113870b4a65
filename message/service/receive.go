package service

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/ratchet"
)

// errNotContact is a stream from a device on no contact's current list.
var errNotContact = errors.New("message: not a device of a contact")

// contactsOf returns the contacts whose current device list names id:
// any cell may sign a list naming any peer ID, so there may be more than
// one; the envelope's cell says which one a message is of.
func (s *Service) contactsOf(ctx context.Context, id peer.ID) ([]contactservice.Contact, error) {
	cs, err := s.cons.ByDevice(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, errNotContact
	}
	return cs, nil
}

// receive opens f from the device from of one of the contacts cs (those
// whose lists name it) under the device's lock, checks it, then, the
// lock released, records the message in this cell's chain and has the
// session's state after it on disk; it returns the message's ID to
// acknowledge (slowing: admitIn). A failure before the message opens leaves the sessions,
// the prekeys and the chain as they were; one after spends the message's
// key, no more (a message recorded before a later failure is recorded
// once more, harmlessly, when it comes again, under a new key).
func (s *Service) receive(ctx context.Context, from peer.ID, cs []contactservice.Contact, f message.Frame, slowing func(release func())) (message.ID, error) {
	pub, err := from.ExtractPublicKey()
	if err != nil {
		return message.ID{}, fmt.Errorf("message: key of %s: %w", from, err)
	}
	raw, err := pub.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return message.ID{}, fmt.Errorf("message: %s has no Ed25519 key", from)
	}
	ct := f.Body
	var h *ratchet.InitialHeader
	switch f.Kind {
	case message.KindInitial:
		if h, ct, err = ratchet.ParseInitialHeader(f.Body); err != nil {
			return message.ID{}, err
		}
		if !bytes.Equal(h.SigningKey[:], raw) {
			return message.ID{}, errors.New("message: initial header of another device than the stream's")
		}
	case message.KindSession:
	default:
		return message.ID{}, fmt.Errorf("%w: kind %d", message.ErrBadFrame, f.Kind)
	}

	// The list is checked again once the entry is held (acquireNamed):
	// a sweep dropping the device meanwhile marks it gone. cs is now
	// the contacts that list names it.
	e, cs, err := s.acquireNamed(ctx, from)
	if err != nil {
		return message.ID{}, err
	}
	defer s.cache.release(e)
	// The quotas charge the contact before the frame is opened (a
	// message or a receipt alike: a refusal then costs no ratchet step,
	// and a frame that never opens is charged too); when several
	// contacts' lists name the device, each of them is charged: a cell
	// that lists another's device pays for that device's frames, the
	// real contact only for its own device's.
	convs := make([]string, len(cs))
	for i, c := range cs {
		convs[i] = hex.EncodeToString(c.Cell())
	}
	if err := s.admitIn(ctx, convs, len(f.Body), slowing); err != nil {
		return message.ID{}, err
	}
	if err := s.lockEntry(ctx, e); err != nil {
		return message.ID{}, err
	}
	in, c, v, err := s.openLocked(ctx, e, from, cs, h, ct)
	e.mu.Unlock()
	if err != nil {
		return message.ID{}, err
	}
	if in.rec != nil {
		return s.receiveReceipt(ctx, e, v, from, c, in.rec)
	}
	env := in.env
	if l := env.Devices; l != nil {
		if _, changed, err := s.cons.UpdateDevices(ctx, l); err != nil {
			s.log.Warn("contact's device list not updated", "contact", c.Name, "err", err)
		} else if changed {
			s.listsChanged() // the devices it drops lose their sessions
		}
	}
	m := newMessage(env, c.Cell(), In, Delivered)
	now := s.cfg.Now().UTC().Truncate(time.Millisecond)
	m.Received = &now
	// The record and the session's write overlap (two syncs at once); the
	// acknowledgement waits for both.
	rec := goDo(func() error { return s.recordIn(ctx, m, now) })
	perr := s.persist(ctx, e, v)
	if err := rec.wait(); err != nil {
		return message.ID{}, err
	}
	if err := s.received(ctx, c.Cell(), env.File); err != nil {
		return message.ID{}, err
	}
	if perr != nil {
		return message.ID{}, perr
	}
	s.poke(from)
	return env.ID, nil
}

// openLocked opens ct with the sessions held with from, newest first, or
// else (an initial message, h not nil) with a new session answered on
// the prekeys, checks the envelope, and makes the session that opened it
// the newest: it returns the envelope, its contact and the version of
// the record to have on disk before the acknowledgement. A session that
// opened a message the checks refuse has spent that message's key. e.mu
// must be held.
func (s *Service) openLocked(ctx context.Context, e *peerEntry, from peer.ID, cs []contactservice.Contact, h *ratchet.InitialHeader, ct []byte) (inbound, contactservice.Contact, uint64, error) {
	r := &e.rec
	var env inbound
	var c contactservice.Contact
	opened := -1
	for i := range r.sessions {
		// Decrypt changes the session only if it opens the message.
		pt, err := r.sessions[i].sess.Decrypt(ct)
		if err != nil {
			continue
		}
		if env, c, err = s.check(pt, from, cs); err != nil {
			return inbound{}, c, 0, err
		}
		opened = i
		break
	}
	if opened >= 0 {
		r.front(opened)
		return env, c, s.cache.step(e), nil
	}
	if h == nil {
		return inbound{}, c, 0, fmt.Errorf("message: no session opens it: %w", ratchet.ErrRefused)
	}
	var fresh *ratchet.Session
	self := s.signer.Public().(ed25519.PublicKey)
	err := s.prek.Accept(ctx, func(k *ratchet.Prekeys, now int64) error {
		sess, pt, err := ratchet.Respond(&ratchet.Exopeer, self, k, h, ct, now)
		if err != nil {
			return err
		}
		if env, c, err = s.check(pt, from, cs); err != nil {
			return err
		}
		fresh = sess
		return nil
	})
	if err != nil {
		return inbound{}, c, 0, err
	}
	st := stored{run: s.run, sess: fresh}
	if err := s.read(st.id[:]); err != nil {
		return inbound{}, c, 0, err
	}
	r.push(st)
	return env, c, s.cache.step(e), nil
}

// check decodes an opened envelope (or receipt: checkReceipt) and checks that it is of one of the
// contacts cs (returned) and the stream's device's, and that a device
// list it carries is valid for the contact (contact.Newer); an older one
// is dropped from the envelope, not refused.
func (s *Service) check(pt []byte, from peer.ID, cs []contactservice.Contact) (inbound, contactservice.Contact, error) {
	if message.IsReceipt(pt) {
		r, c, err := s.checkReceipt(pt, from, cs)
		return inbound{rec: r}, c, err
	}
	env, c, err := s.checkEnvelope(pt, from, cs)
	return inbound{env: env}, c, err
}

// inbound is what a frame opened to: an envelope or a read receipt.
type inbound struct {
	env *message.Envelope
	rec *message.Receipt
}

// checkEnvelope is check of an envelope.
func (s *Service) checkEnvelope(pt []byte, from peer.ID, cs []contactservice.Contact) (*message.Envelope, contactservice.Contact, error) {
	env, err := message.DecodeEnvelope(pt)
	if err != nil {
		return nil, contactservice.Contact{}, err
	}
	if env.File != nil {
		if _, err := checkAttachment(env.File); err != nil {
			return nil, contactservice.Contact{}, err
		}
	}
	i := slices.IndexFunc(cs, func(c contactservice.Contact) bool { return env.Cell.Equal(c.Cell()) })
	if i < 0 {
		return nil, contactservice.Contact{}, errors.New("message: envelope of another cell than the contact's")
	}
	c := cs[i]
	if env.Device != from {
		return nil, contactservice.Contact{}, errors.New("message: envelope of another device than the stream's")
	}
	if own, err := s.cellKey(); err != nil || !env.To.Equal(own) {
		return nil, contactservice.Contact{}, errors.New("message: envelope for another cell")
	}
	if env.Devices != nil {
		switch _, err := contact.Newer(c.Devices, env.Devices); {
		case errors.Is(err, contact.ErrStale):
			// A current device whose cell's store lags sends the list it
			// holds: the message stands (the device is on the list held,
			// checked before the stream was read), the older list is not
			// taken.
			env.Devices = nil
		case err != nil:
			return nil, contactservice.Contact{}, err
		}
	}
	return env, c, nil
}
