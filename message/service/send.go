package service

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/ratchet"
)

// Send sends text to the contact named name: it records the message in
// this cell's chain (state Sent), then tries the contact's devices,
// those connected first, over a session with each (a new one from its
// prekey bundle if there is none), until one acknowledges; then it
// records the state Delivered. If none does, the message stays Sent
// (pending) and the error wraps ErrUnreachable: the courier of this
// device, or of any device of the cell, delivers it later (courier.go). A text that is empty, not UTF-8 or
// longer than message.MaxText is refused before anything is recorded. It
// blocks until done or ctx ends.
func (s *Service) Send(ctx context.Context, name, text string) (Message, error) {
	return s.send(ctx, name, text, nil, nil)
}

// send is Send of a message that shares file, if not nil (SendFile):
// share, if not nil, runs once the pending quota let the message
// through, before anything is recorded.
func (s *Service) send(ctx context.Context, name, text string, file *message.Attachment, share func(context.Context, contactservice.Contact) error) (Message, error) {
	if err := s.enter(); err != nil {
		return Message{}, err
	}
	defer s.wg.Done()
	own, err := s.cellKey()
	if err != nil {
		return Message{}, err
	}
	c, err := s.cons.Get(ctx, name)
	if err != nil {
		return Message{}, err
	}
	if err := s.checkPending(ctx, hex.EncodeToString(c.Cell())); err != nil {
		return Message{}, err
	}
	env := &message.Envelope{Cell: own, To: c.Cell(), Device: s.self, Text: text, File: file}
	if err := s.read(env.ID[:]); err != nil {
		return Message{}, err
	}
	if _, err := env.Encode(); err != nil {
		return Message{}, err
	}
	if share != nil {
		if err := share(ctx, c); err != nil {
			return Message{}, err
		}
	}
	s.cmu.Lock()
	env.Sent, env.Seq, err = s.nextLocked(ctx)
	s.cmu.Unlock()
	if err != nil {
		return Message{}, err
	}
	// The ID is fresh, so the message is new: no read before the write.
	// The write goes on while the first device's session steps and is
	// written (the two syncs overlap); no frame leaves before it is done.
	m := newMessage(env, c.Cell(), Out, Sent)
	unmark := s.sendingMark(m.Entity)
	defer unmark()
	created := s.cfg.Now().UTC()
	rec := goDo(func() error { return s.put(ctx, m, created) })
	// This cell's list goes along when a device has not acknowledged it
	// yet; without one (no admin signed it yet), none goes.
	list, err := s.cons.DeviceList(ctx)
	if err != nil {
		list = nil
	}
	var errs []error
	for _, dev := range s.order(c) {
		err := s.deliver(ctx, dev, env, list, rec.wait)
		if rerr := rec.wait(); rerr != nil {
			return Message{}, rerr
		}
		if err == nil {
			// The contact is reachable: its older pending messages, if
			// any, go at the courier's next pass, not its next retry.
			s.resetContact(m.Conversation)
			m.State = Delivered
			// A receipt applied meanwhile left it read: kept.
			wrote, err := s.advance(ctx, m, created)
			if err != nil {
				return m, err
			}
			if !wrote || s.readBefore(ctx, m) {
				if cur, err := s.get(ctx, m.Entity); err == nil {
					m.State = cur.State
				}
			}
			s.wakeCourier()
			return m, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", dev, err))
		if ctx.Err() != nil {
			break
		}
	}
	if err := rec.wait(); err != nil {
		return Message{}, err
	}
	s.failedContact(m.Conversation, s.cfg.Now())
	unmark()
	s.wakeCourier() // to time its retry
	s.log.Info("message not delivered", "contact", c.Name, "id", m.ID, "devices", len(errs))
	return m, fmt.Errorf("%w (message %s to %q: %w)", ErrUnreachable, m.ID, c.Name, errors.Join(errs...))
}

// order returns the contact's devices, those this host is connected to
// first (the others are dialled through the peerstore and the DHT).
func (s *Service) order(c contactservice.Contact) []peer.ID {
	devs := slices.Clone(c.Devices.Devices)
	slices.SortStableFunc(devs, func(a, b peer.ID) int {
		ca := s.h.Network().Connectedness(a) == network.Connected
		cb := s.h.Network().Connectedness(b) == network.Connected
		switch {
		case ca && !cb:
			return -1
		case cb && !ca:
			return 1
		}
		return 0
	})
	return devs
}

// deliver sends env to dev and waits for its acknowledgement; recorded
// returns once the message is in this cell's chain (nil), and no frame
// leaves before. A session the device refuses is dropped and one new
// handshake is tried; a busy answer (errBusy: the device's quotas) keeps
// the session and is not tried again here (the courier backs off); a delivery whose stream broke before its answer
// (errBroken) is sealed again and tried once more, on another stream.
func (s *Service) deliver(ctx context.Context, dev peer.ID, env *message.Envelope, list *contact.DeviceList, recorded func() error) error {
	return s.deliverOut(ctx, dev, outgoing{id: env.ID, env: env}, list, recorded)
}

// outgoing is what a delivery seals: a message's envelope, or a read
// receipt (receipts.go), which carries no device list. id is what the
// acknowledgement names.
type outgoing struct {
	id  message.ID
	env *message.Envelope
	rec *message.Receipt
}

// deliverOut is deliver of an envelope or a receipt.
func (s *Service) deliverOut(ctx context.Context, dev peer.ID, out outgoing, list *contact.DeviceList, recorded func() error) error {
	refused, broken := false, false
	for {
		err := s.deliverOnce(ctx, dev, out, list, recorded)
		switch {
		case errors.Is(err, errRefused) && !refused:
			refused = true
		case errors.Is(err, errBroken) && !broken && ctx.Err() == nil:
			broken = true
		default:
			return err
		}
	}
}

// deliverOnce seals out for dev on its newest session (or a new one),
// waits until the session's state after it is on disk and recorded
// returns nil, then sends and reads the answer. The device's lock is
// held for the ratchet step only; one of the device's delivery slots,
// from before the step until the answer.
func (s *Service) deliverOnce(ctx context.Context, dev peer.ID, out outgoing, list *contact.DeviceList, recorded func() error) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	e, cs, err := s.acquireNamed(ctx, dev)
	if err != nil {
		return err
	}
	defer s.cache.release(e)
	if err := s.lockEntry(ctx, e); err != nil {
		return err
	}
	none := e.rec.sealer(s.run) < 0
	e.mu.Unlock()
	var fresh *stored
	held := false // e.hs, this call's turn to make a session
	done := func() {
		if held {
			held = false
			<-e.hs
		}
	}
	defer done()
	if none {
		// One handshake at a time with the device: a call that waited
		// for another's finds the session it made (sealLocked pushed it
		// before that turn ended).
		select {
		case e.hs <- struct{}{}:
			held = true
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := s.lockEntry(ctx, e); err != nil {
			return err
		}
		none = e.rec.sealer(s.run) < 0
		again := len(e.rec.sessions) > 0
		e.mu.Unlock()
		if !none {
			done()
		} else {
			var err error
			if fresh, err = s.handshake(ctx, dev, again); err != nil {
				return err
			}
		}
	}
	release, err := e.deliverySlot(ctx)
	if err != nil {
		return err
	}
	defer func() { release() }() // exchange may keep the slot

	if err := s.lockEntry(ctx, e); err != nil {
		return err
	}
	frame, sid, err := s.sealLocked(e, fresh, out, list)
	var v uint64
	if err == nil {
		v = s.cache.step(e)
	}
	e.mu.Unlock()
	done() // the new session is held: the next call uses it
	if err != nil {
		return err
	}
	if err := s.persist(ctx, e, v); err != nil {
		return err
	}
	if err := recorded(); err != nil {
		return err
	}
	e.mu.Lock()
	gone := e.gone
	e.mu.Unlock()
	if gone {
		return errRemoved
	}
	ans, kept, err := s.exchange(ctx, e, dev, frame, out.id, release)
	if kept {
		release = func() {}
	}
	if err != nil {
		return err
	}
	if err := s.lockEntry(ctx, e); err != nil {
		return err
	}
	r := &e.rec
	i := slices.IndexFunc(r.sessions, func(st stored) bool { return st.id == sid })
	changed := false
	if ans.Kind == message.KindRefusal {
		if i >= 0 {
			// The device cannot open it (it lost the session, or refuses
			// this device): the next try makes a new one.
			r.sessions = slices.Delete(r.sessions, i, i+1)
			changed = true
		}
	} else if ans.Kind == message.KindAck {
		// Busy (the quotas turned the frame away unopened) leaves the
		// session as it was, its initial header unconfirmed if it had one.
		if i >= 0 && r.sessions[i].header != nil {
			r.sessions[i].header = nil // confirmed
			changed = true
		}
		if list != nil && r.ackList(list) {
			changed = true
		}
	}
	if changed {
		v = s.cache.step(e)
	}
	e.mu.Unlock()
	if ans.Kind == message.KindAck && out.env != nil && list != nil && list.Mailbox != nil && list.Has(s.self) && s.mailboxOn() {
		// The device holds the list (it came with this message, or the
		// device acknowledged it before): so does its cell, whose
		// blind mailboxes it names the key of (heldkey.go).
		if i := slices.IndexFunc(cs, func(c contactservice.Contact) bool { return c.Cell().Equal(out.env.To) }); i >= 0 {
			s.noteHeldKey(ctx, cs[i], list.Mailbox, nil)
		}
	}
	if changed {
		// The answer is in: this write only spares the next messages an
		// initial header or a list (the state on disk, older, is safe
		// to go on from: no frame left from what it lacks), so it fails
		// the delivery in no case; the next step's write takes it.
		if err := s.persist(ctx, e, v); err != nil {
			s.log.Warn("session not stored after the answer", "peer", dev, "err", err)
		}
	}
	switch ans.Kind {
	case message.KindRefusal:
		return errRefused
	case message.KindBusy:
		return errBusy
	}
	return nil
}

// handshake starts a session with dev from its prekey bundle (PQXDH when
// the bundle has an ML-KEM key): the session, not stored yet, with its
// initial header pending. again (this device holds a session with dev
// already, of an earlier run or one dev may have lost) makes it on the
// bundle's last-resort prekey, so that restarts spend none of dev's
// one-time prekeys: only the first session with a device takes one. It connects to dev first (reach), so that the
// bundle comes from the device itself when it is online; if it cannot,
// the bundle comes from the DHT.
func (s *Service) handshake(ctx context.Context, dev peer.ID, again bool) (*stored, error) {
	if err := s.reach(ctx, dev); err != nil {
		s.log.Debug("device not reached before its prekeys", "peer", dev, "err", err)
	}
	b, err := s.prek.Fetch(ctx, dev)
	if err != nil {
		return nil, fmt.Errorf("message: prekeys of %s: %w", dev, err)
	}
	var enc *ratchet.Encapsulation
	if b.KEM != nil {
		ek, err := b.KEM.EncapsulationKey()
		if err != nil {
			return nil, fmt.Errorf("message: prekeys of %s: %w", dev, err)
		}
		key, ct := ek.Encapsulate()
		enc = &ratchet.Encapsulation{SharedKey: key, Ciphertext: ct}
	}
	var st stored
	err = s.prek.View(func(k *ratchet.Prekeys) error {
		initiate := ratchet.Initiate
		if again {
			initiate = ratchet.InitiateLastResort
		}
		sess, h, err := initiate(&ratchet.Exopeer, lockedRand{s}, s.signer, k, b, enc)
		if err != nil {
			return err
		}
		hb, err := h.MarshalBinary()
		if err != nil {
			return err
		}
		st = stored{run: s.run, sess: sess, header: hb}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("message: handshake with %s: %w", dev, err)
	}
	if err := s.read(st.id[:]); err != nil {
		return nil, err
	}
	return &st, nil
}

// sealLocked encrypts out (an envelope, or a receipt) for dev on fresh
// (a new session, made the newest) or else the newest session held that
// this run made (made the newest: restore.go). The caller takes a new
// version and has it on disk before the frame leaves: a state is never
// used twice. e.mu must be held; the frame is the caller's.
func (s *Service) sealLocked(e *peerEntry, fresh *stored, out outgoing, list *contact.DeviceList) (message.Frame, [8]byte, error) {
	r := &e.rec
	if fresh != nil {
		r.push(*fresh)
	}
	i := r.sealer(s.run)
	if i < 0 {
		// Dropped meanwhile, or only sessions of an earlier run, which
		// never seal (restore.go): the retry starts one.
		return message.Frame{}, [8]byte{}, errRefused
	}
	r.front(i)
	var pt []byte
	var err error
	if out.rec != nil {
		pt, err = out.rec.Encode()
	} else {
		e2 := *out.env
		if list != nil && r.listNews(list) && list.Has(s.self) {
			e2.Devices = list
		}
		pt, err = e2.Encode()
	}
	if err != nil {
		return message.Frame{}, [8]byte{}, err
	}
	st := r.sessions[0]
	ct, err := st.sess.Encrypt(lockedRand{s}, pt)
	if err != nil {
		return message.Frame{}, [8]byte{}, fmt.Errorf("message: encrypt: %w", err)
	}
	if st.header != nil {
		return message.Frame{Kind: message.KindInitial, Body: append(append([]byte(nil), st.header...), ct...)}, st.id, nil
	}
	return message.Frame{Kind: message.KindSession, Body: ct}, st.id, nil
}

// readFrame reads one frame, allocating its body once its length is
// known to be within message.MaxFrameBody.
func readFrame(r *bufio.Reader) (message.Frame, error) {
	var h [message.FrameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return message.Frame{}, fmt.Errorf("message: read frame: %w", err)
	}
	kind, n, err := message.DecodeHeader(h[:])
	if err != nil {
		return message.Frame{}, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return message.Frame{}, fmt.Errorf("message: read frame: %w", err)
	}
	return message.NewFrame(kind, body)
}
