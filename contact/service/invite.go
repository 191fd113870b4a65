package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell/core"
	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/internal/growbuf"
)

// ProtocolInvite is the libp2p protocol of the invite exchange (package
// contact's doc has its messages).
const ProtocolInvite = "/exopeer/contact/1.0.0"

// Limits of invites.
const (
	// MaxOpenInvites is how many invites a node holds open at once.
	MaxOpenInvites = 8
	// MaxInviteFailures is how many failed exchanges (a wrong code, a
	// broken run) void an invite: each is one online guess of the code.
	MaxInviteFailures = 10
	// DefaultInviteTTL is how long an invite stays open by default;
	// MaxInviteTTL the longest it may.
	DefaultInviteTTL = 10 * time.Minute
	MaxInviteTTL     = 24 * time.Hour
	// inviteTimeout bounds one exchange; acceptRetry is how often an
	// accept looks for the inviter among its connected peers again.
	inviteTimeout = 30 * time.Second
	acceptRetry   = time.Second
	// retryNoInvite is how many rounds an accept waits before it asks
	// again a peer that had no such invite.
	retryNoInvite = 5
)

// Errors of invites.
var (
	ErrInviteTTL  = fmt.Errorf("contact: an invite's TTL is more than 0 and at most %v", MaxInviteTTL)
	ErrTooManyInv = fmt.Errorf("contact: %d invites open already: wait until one is used or expires", MaxOpenInvites)
	ErrNoInviter  = errors.New("contact: no inviter found for the code")
)

// openInvite is an invite this node serves.
type openInvite struct {
	code     contact.Code
	expires  time.Time
	failures int
	busy     bool // an exchange is under way (one at a time)
}

// inviteRendezvous is the rendezvous secret of a contact invite's
// nameplate: not the cell join's, so the two never meet.
func inviteRendezvous(nameplate uint16) []byte {
	return binary.BigEndian.AppendUint16([]byte("exopeer contact invite v1\x00"), nameplate)
}

// IsInviteRendezvous reports whether secret is a contact invite
// nameplate's rendezvous (the inviter's, or the acceptor's looking it up).
func IsInviteRendezvous(secret []byte) bool {
	return len(secret) == len(inviteRendezvous(0)) && bytes.Equal(secret[:len(secret)-2], inviteRendezvous(0)[:len(secret)-2])
}

// Invite opens a one-time invite for another cell to exchange cards with
// this one, valid for ttl (0: DefaultInviteTTL), and returns its code and
// when it expires. The cell must have a device list (on an admin, asking
// signs one). The node serves the invite while it runs; the first
// exchange that proves the code adds the other cell as a contact on both
// sides and ends the invite. Each side takes the other's card only from a
// device on that card's device list (contact.ErrNotOnCard), so a device
// not yet on its own cell's signed list (one that joined since an admin
// last signed it) cannot invite: ErrNotListed.
func (s *Service) Invite(ctx context.Context, ttl time.Duration) (contact.Code, time.Time, error) {
	if err := s.live(); err != nil {
		return contact.Code{}, time.Time{}, err
	}
	if ttl == 0 {
		ttl = DefaultInviteTTL
	}
	if ttl < 0 || ttl > MaxInviteTTL {
		return contact.Code{}, time.Time{}, fmt.Errorf("%w: %v", ErrInviteTTL, ttl)
	}
	if _, err := s.ownCard(ctx); err != nil {
		return contact.Code{}, time.Time{}, err
	}
	s.imu.Lock()
	defer s.imu.Unlock()
	now := s.cfg.Now()
	s.expireLocked(now)
	if len(s.invites) >= MaxOpenInvites {
		return contact.Code{}, time.Time{}, ErrTooManyInv
	}
	var c contact.Code
	for {
		var err error
		if c, err = core.NewCode(s.cfg.Rand); err != nil {
			return contact.Code{}, time.Time{}, err
		}
		if _, taken := s.invites[c.Nameplate]; !taken {
			break
		}
	}
	inv := &openInvite{code: c, expires: now.Add(ttl)}
	s.invites[c.Nameplate] = inv
	if s.rz != nil {
		s.rz.Rendezvous(inviteRendezvous(c.Nameplate))
	}
	return c, inv.expires, nil
}

// expireLocked ends the invites past their time.
func (s *Service) expireLocked(now time.Time) {
	for np, inv := range s.invites {
		if !now.Before(inv.expires) {
			s.endLocked(np)
		}
	}
}

func (s *Service) endLocked(np uint16) {
	delete(s.invites, np)
	if s.rz != nil {
		s.rz.StopRendezvous(inviteRendezvous(np))
	}
}

// serveInvite is the inviter's side of one exchange.
func (s *Service) serveInvite(st network.Stream) {
	if !s.enter() {
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
	_ = st.SetDeadline(ambient.Deadline(inviteTimeout))
	ctx, cancel := context.WithTimeout(s.ctx, inviteTimeout)
	defer cancel()
	rd := bufio.NewReader(st)
	hello, err := readFrame(rd, contact.MaxHelloFrame)
	if err != nil {
		return
	}
	np, err := contact.ReadHello(hello)
	if err != nil {
		return
	}
	s.imu.Lock()
	s.expireLocked(s.cfg.Now())
	inv := s.invites[np]
	if inv == nil || inv.busy {
		s.imu.Unlock()
		ok = writeFrame(st, contact.NoInviteReply()) == nil
		return
	}
	inv.busy = true
	s.imu.Unlock()
	done := false
	defer func() {
		s.imu.Lock()
		defer s.imu.Unlock()
		inv.busy = false
		if !done {
			inv.failures++
		}
		if (done || inv.failures >= MaxInviteFailures) && s.invites[np] == inv {
			s.endLocked(np)
		}
	}()
	mine, err := s.Card(ctx, "")
	if err != nil {
		s.log.Warn("invite: no card to give", "err", err)
		return
	}
	from := st.Conn().RemotePeer()
	run, reply, err := contact.NewInviteRun(inv.code, s.self, from, hello, s.cfg.Rand)
	if err != nil || writeFrame(st, reply) != nil {
		return
	}
	proof, err := readFrame(rd, contact.MaxCardFrame)
	if err != nil {
		return
	}
	theirs, final, err := run.Confirm(proof, mine)
	if err != nil {
		s.log.Info("invite: exchange refused", "peer", from, "err", err)
		return
	}
	added, err := s.addInvited(ctx, theirs, "")
	if err != nil {
		s.log.Warn("invite: contact not added", "peer", from, "err", err)
		return
	}
	done = true
	s.log.Info("contact added by invite", "name", added.Contact.Name, "peer", from)
	ok = writeFrame(st, final) == nil
}

// addInvited adds a card an exchange brought, under name, or (name empty)
// under its own name or, if another contact has it, "name (2)" to
// "name (9)". A card older than the list held, or the same, adds nothing
// and is no failure: the contact is held.
func (s *Service) addInvited(ctx context.Context, card *contact.Card, name string) (Added, error) {
	try := []string{name}
	if name == "" {
		try = []string{card.Name}
		for i := 2; i <= 9; i++ {
			if n := card.Name + " (" + strconv.Itoa(i) + ")"; contact.ValidName(n) {
				try = append(try, n)
			}
		}
	}
	var err error
	for _, n := range try {
		var a Added
		a, err = s.addCard(ctx, card, n)
		switch {
		case err == nil:
			return a, nil
		case errors.Is(err, contact.ErrStale):
			c, gerr := s.byCell(ctx, card)
			if gerr != nil {
				return Added{}, gerr
			}
			return Added{Contact: c}, nil
		case !errors.Is(err, ErrNameTaken):
			return Added{}, err
		}
	}
	return Added{}, err
}

// byCell returns the contact held of card's cell.
func (s *Service) byCell(ctx context.Context, card *contact.Card) (Contact, error) {
	cs, err := s.List(ctx)
	if err != nil {
		return Contact{}, err
	}
	id := contactEntity(card.Cell())
	for _, c := range cs {
		if c.ID == id {
			return c, nil
		}
	}
	return Contact{}, ErrNoContact
}

// Accept exchanges cards with the cell whose device printed code (as
// `exopeer contact invite` does) and adds it as a contact named name
// (empty: its card's name). It looks for the inviter among the peers
// this node is connected to or meets (the LAN, or the nameplate's
// rendezvous on the DHT), and blocks until the exchange succeeds or ctx
// ends. Nameplates are public, so a peer that says it has no such invite
// is asked again later; one that proved another code (contact.ErrWrongCode)
// or sent a card it is not on (contact.ErrNotOnCard) is not asked again.
// ErrNotListed: this device is not on its own cell's signed list yet.
func (s *Service) Accept(ctx context.Context, code, name string) (Added, error) {
	if err := s.live(); err != nil {
		return Added{}, err
	}
	c, err := core.ParseCode(code)
	if err != nil {
		return Added{}, err
	}
	if name != "" && !contact.ValidName(name) {
		return Added{}, fmt.Errorf("%w: %q", contact.ErrBadName, name)
	}
	mine, err := s.ownCard(ctx)
	if err != nil {
		return Added{}, err
	}
	if s.rz != nil {
		rz := inviteRendezvous(c.Nameplate)
		s.rz.Rendezvous(rz)
		defer s.rz.StopRendezvous(rz)
	}
	asked := make(map[peer.ID]int) // the round each peer was asked in; -1: never again
	var hint error
	t := time.NewTicker(acceptRetry)
	defer t.Stop()
	for round := 1; ; round++ {
		for _, id := range s.h.Network().Peers() {
			if last, ok := asked[id]; (ok && (last < 0 || round-last < retryNoInvite)) || !s.speaksInvite(id) {
				continue
			}
			asked[id] = round
			theirs, err := s.acceptVia(ctx, id, c, mine)
			if err == nil {
				return s.addInvited(ctx, theirs, name)
			}
			if ctx.Err() != nil {
				break
			}
			s.log.Info("accept attempt failed", "peer", id, "err", err)
			if hint == nil || telling(err) >= telling(hint) {
				hint = fmt.Errorf("from %s: %w", id, err)
			}
			if errors.Is(err, contact.ErrWrongCode) || errors.Is(err, contact.ErrNotOnCard) {
				asked[id] = -1
			}
		}
		select {
		case <-ctx.Done():
			if hint != nil {
				return Added{}, fmt.Errorf("%w %04d (the most telling answer, %w): %w", ErrNoInviter, c.Nameplate, hint, ctx.Err())
			}
			return Added{}, fmt.Errorf("%w %04d: %w", ErrNoInviter, c.Nameplate, ctx.Err())
		case <-s.ctx.Done():
			return Added{}, ErrClosed
		case <-t.C:
		}
	}
}

// ownCard is the card this device hands out in an invite exchange: the
// other side takes it only from a device on its device list
// (contact.ErrNotOnCard), so ErrNotListed when this one is not.
func (s *Service) ownCard(ctx context.Context) (*contact.Card, error) {
	c, err := s.Card(ctx, "")
	if err != nil {
		return nil, err
	}
	if !c.Devices.Has(s.self) {
		return nil, fmt.Errorf("%w (version %d names %d devices)", ErrNotListed, c.Devices.Version, len(c.Devices.Devices))
	}
	return c, nil
}

// telling ranks an accept attempt's error: a code the peer proved wrong
// says most, a peer with no such invite least.
func telling(err error) int {
	switch {
	case errors.Is(err, contact.ErrWrongCode):
		return 2
	case errors.Is(err, contact.ErrNoInvite):
		return 0
	}
	return 1
}

func (s *Service) speaksInvite(id peer.ID) bool {
	ok, err := s.h.Peerstore().SupportsProtocols(id, ProtocolInvite)
	return err == nil && len(ok) > 0
}

// acceptVia runs the acceptor's side of the exchange with one peer. The
// exchange lasts at most inviteTimeout, which the stream's deadline
// enforces; only the end of ctx (the caller giving up) resets the stream:
// a reset at the deadline's own instant would race it, and the exchange
// would fail with a reset rather than the timeout it is (as cell's
// joinVia).
func (s *Service) acceptVia(ctx context.Context, id peer.ID, c contact.Code, mine *contact.Card) (_ *contact.Card, err error) {
	tctx, cancel := context.WithTimeout(ctx, inviteTimeout)
	defer cancel()
	st, err := s.h.NewStream(network.WithAllowLimitedConn(tctx, "contact invite"), id, ProtocolInvite)
	if err != nil {
		return nil, fmt.Errorf("contact: invite stream to %s: %w", id, err)
	}
	defer func() {
		if err != nil {
			_ = st.Reset()
		} else {
			_ = st.Close()
		}
	}()
	if d, ok := tctx.Deadline(); ok {
		_ = st.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	rd := bufio.NewReader(st)
	run, hello, err := contact.NewAcceptRun(c, id, s.self, s.cfg.Rand)
	if err != nil {
		return nil, err
	}
	if err := writeFrame(st, hello); err != nil {
		return nil, err
	}
	reply, err := readFrame(rd, contact.MaxReplyFrame)
	if err != nil {
		return nil, err
	}
	proof, err := run.Reply(reply, mine)
	if err != nil {
		return nil, err
	}
	if err := writeFrame(st, proof); err != nil {
		return nil, err
	}
	final, err := readFrame(rd, contact.MaxCardFrame)
	if err != nil {
		return nil, err
	}
	return run.Final(final)
}

// Frames: a uvarint length, then that many bytes (1 to limit).
func writeFrame(w io.Writer, b []byte) error {
	buf := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen64), uint64(len(b)))
	_, err := w.Write(append(buf, b...))
	return err
}

func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("contact: frame length: %w", err)
	}
	if n == 0 || n > uint64(limit) {
		return nil, fmt.Errorf("%w: frame of %d bytes, limit %d", contact.ErrBadMessage, n, limit)
	}
	return growbuf.ReadFull(r, int(n), nil)
}
