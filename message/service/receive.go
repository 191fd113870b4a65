package service

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/ratchet"
)

// errNotContact is a stream from a device on no contact's current list.
var errNotContact = errors.New("message: not a device of a contact")

// serve is the receiving side of one delivery: one frame in, an
// acknowledgement or a refusal out.
func (s *Service) serve(st network.Stream) {
	if s.enter() != nil {
		_ = st.Reset()
		return
	}
	defer s.wg.Done()
	ok := false
	defer func() {
		if ok {
			_ = st.Close()
		} else {
			_ = st.Reset()
		}
	}()
	_ = st.SetDeadline(ambient.Deadline(s.cfg.Timeout))
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	from := st.Conn().RemotePeer()
	answer := message.Refusal()
	cs, err := s.contactsOf(ctx, from)
	if err == nil {
		var f message.Frame
		if f, err = readFrame(bufio.NewReader(st)); err != nil {
			return // a stream that breaks the protocol is reset
		}
		var id message.ID
		if id, err = s.receive(ctx, from, cs, f); err == nil {
			answer = message.Ack(id)
		}
	}
	if err != nil {
		s.log.Info("message refused", "peer", from, "err", err)
	}
	b, err := answer.Encode()
	if err != nil {
		return
	}
	_, err = st.Write(b)
	ok = err == nil
}

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
// whose lists name it), checks it, records
// the message in this cell's chain and stores the session; it returns
// the message's ID to acknowledge. Any failure leaves the stored
// sessions, the prekeys and the chain as they were (a message recorded
// before a later failure is recorded once more, harmlessly, when it
// comes again).
func (s *Service) receive(ctx context.Context, from peer.ID, cs []contactservice.Contact, f message.Frame) (message.ID, error) {
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

	defer s.locks.lock(from)()
	r, err := s.loadLocked(ctx, from)
	if err != nil {
		return message.ID{}, err
	}
	var env *message.Envelope
	var c contactservice.Contact
	opened := -1
	for i := range r.sessions {
		// Decrypt changes the session only if it opens the message; a
		// session changed here is stored only if all goes well.
		pt, err := r.sessions[i].sess.Decrypt(ct)
		if err != nil {
			continue
		}
		if env, c, err = s.check(pt, from, cs); err != nil {
			return message.ID{}, err
		}
		opened = i
		break
	}
	var fresh *ratchet.Session
	if opened < 0 {
		if h == nil {
			return message.ID{}, fmt.Errorf("message: no session opens it: %w", ratchet.ErrRefused)
		}
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
			return message.ID{}, err
		}
	}
	if l := env.Devices; l != nil {
		if _, _, err := s.cons.UpdateDevices(ctx, l); err != nil {
			s.log.Warn("contact's device list not updated", "contact", c.Name, "err", err)
		}
	}
	m := newMessage(env, c.Cell(), In, Delivered)
	now := s.cfg.Now().UTC().Truncate(time.Millisecond)
	m.Received = &now
	if err := s.record(ctx, m); err != nil {
		return message.ID{}, err
	}
	if fresh != nil {
		st := stored{sess: fresh}
		if err := s.read(st.id[:]); err != nil {
			return message.ID{}, err
		}
		r.push(st)
	} else {
		r.front(opened)
	}
	if err := s.storeLocked(ctx, from, r); err != nil {
		return message.ID{}, err
	}
	return env.ID, nil
}

// check decodes an opened envelope and checks that it is of one of the
// contacts cs (returned) and the stream's device's, and that a device
// list it carries is valid for the contact (contact.Newer); an older one
// is dropped from the envelope, not refused.
func (s *Service) check(pt []byte, from peer.ID, cs []contactservice.Contact) (*message.Envelope, contactservice.Contact, error) {
	env, err := message.DecodeEnvelope(pt)
	if err != nil {
		return nil, contactservice.Contact{}, err
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
