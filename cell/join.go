package cell

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/internal/cpace"
)

// ProtocolJoin is the join protocol: a CPace exchange keyed by the invite
// code's words, then the joiner's request and the admin's new roster,
// sealed under keys from the PAKE. See doc.go.
const ProtocolJoin protocol.ID = "/exopeer/cell/join/1.0.0"

// InviteOptions says what an invite admits.
type InviteOptions struct {
	Roles Role          // the joiner's roles; default chain,store
	TTL   time.Duration // default Config.InviteTTL
}

// Invite opens a one-time invitation and returns its code and expiry. The
// node advertises the code's nameplate rendezvous until the invite is used,
// expires or is exhausted.
func (s *Service) Invite(opts InviteOptions) (Code, time.Time, error) {
	if opts.Roles == 0 {
		opts.Roles = RoleChain | RoleStore
	}
	if opts.Roles&RoleAdmin != 0 {
		return Code{}, time.Time{}, errors.New("cell: an invite cannot grant the admin role: the cell key never leaves its device")
	}
	if opts.Roles&^allRoles != 0 {
		return Code{}, time.Time{}, fmt.Errorf("cell: unknown roles %#x", uint8(opts.Roles))
	}
	if opts.TTL <= 0 {
		opts.TTL = s.cfg.InviteTTL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return Code{}, time.Time{}, err
	}
	if s.state.roster == nil || !s.state.roster.Has(s.self) {
		return Code{}, time.Time{}, ErrNoCell
	}
	if s.state.cellKey == nil {
		return Code{}, time.Time{}, ErrNotAdmin
	}
	var code Code
	for {
		c, err := NewCode(s.rand)
		if err != nil {
			return Code{}, time.Time{}, err
		}
		if _, taken := s.invites[c.Nameplate]; !taken {
			code = c
			break
		}
	}
	inv := newInvite(code, opts.Roles, s.now().Add(opts.TTL))
	// Stored before the code is shown: it outlives this process.
	if err := s.st.putInvite(s.ctx, inv); err != nil {
		return Code{}, time.Time{}, err
	}
	s.openInviteLocked(inv)
	s.log.Info("invite opened", "nameplate", code.Nameplate, "expires", inv.expires.Format(time.TimeOnly), "roles", opts.Roles)
	return code, inv.expires, nil
}

// inviteRendezvous is the rendezvous secret of a nameplate. It is not
// secret (anyone can compute it for the 10,000 nameplates): it only names
// the meeting place. The code's words, which are secret, never leave the
// PAKE.
func inviteRendezvous(nameplate uint16) []byte {
	return binary.BigEndian.AppendUint16([]byte("exopeer invite v1\x00"), nameplate)
}

// openInviteLocked serves inv and advertises its nameplate.
func (s *Service) openInviteLocked(inv *invite) {
	s.invites[inv.code.Nameplate] = inv
	if s.rz != nil {
		s.rz.Rendezvous(inv.rzSecret)
	}
}

// closeInviteLocked stops serving inv in this process; it stays stored.
func (s *Service) closeInviteLocked(inv *invite) {
	delete(s.invites, inv.code.Nameplate)
	if s.rz != nil {
		s.rz.StopRendezvous(inv.rzSecret)
	}
}

// endInviteLocked ends inv for good: expired or exhausted.
func (s *Service) endInviteLocked(inv *invite) {
	s.closeInviteLocked(inv)
	if err := s.st.deleteInvite(s.ctx, inv.code.Nameplate); err != nil {
		// It is dead anyway: loaded again, it ends again.
		s.log.Warn("stored invite not deleted", "nameplate", inv.code.Nameplate, "err", err)
	}
}

func (s *Service) expireInvites(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, inv := range s.invites {
		if now.After(inv.expires) {
			s.log.Info("invite expired", "nameplate", inv.code.Nameplate)
			s.endInviteLocked(inv)
		}
	}
}

// loadInvitesLocked serves again the invites stored by an earlier run of
// an admin; those that died meanwhile are deleted.
func (s *Service) loadInvitesLocked(ctx context.Context, now time.Time) error {
	invs, err := s.st.loadInvites(ctx)
	if err != nil {
		return err
	}
	for _, inv := range invs {
		if inv.dead(now, s.cfg.MaxInviteAttempts) || s.state.cellKey == nil {
			s.endInviteLocked(inv)
			continue
		}
		s.openInviteLocked(inv)
		s.log.Info("invite open again", "nameplate", inv.code.Nameplate, "expires", inv.expires.Format(time.TimeOnly))
	}
	return nil
}

// joinCI is CPace's channel identifier: it binds the run to the two peer
// IDs that libp2p authenticated, so that a run cannot be relayed.
func joinCI(admin, joiner peer.ID) []byte {
	b := []byte("exopeer join v1\x00")
	b = binary.AppendUvarint(b, uint64(len(admin)))
	b = append(b, admin...)
	return append(b, joiner...)
}

// Session keys from CPace's ISK, one per direction and purpose.
const (
	labelRequest = "exopeer join request v1"
	labelWelcome = "exopeer join welcome v1"
)

// sealWith seals pt under the session key for label, with a nonce read
// from rand.
func sealWith(rand io.Reader, isk []byte, label string, pt []byte) ([]byte, error) {
	return sealGCM(rand, cpace.SessionKey(isk, label, 32), pt, []byte(label))
}

func openWith(isk []byte, label string, ct []byte) ([]byte, error) {
	pt, err := openGCM(cpace.SessionKey(isk, label, 32), ct, []byte(label))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrDecrypt, label)
	}
	return pt, nil
}

// serveJoin is the admin's side of a join.
func (s *Service) serveJoin(st network.Stream) {
	defer st.Close()
	_ = st.SetDeadline(ambient.Deadline(streamTimeout))
	from := st.Conn().RemotePeer()
	log := s.log.With("joiner", from)
	rd := bufio.NewReader(st)
	send := func(b []byte) bool {
		if err := writeFrame(st, b); err != nil {
			_ = st.Reset()
			return false
		}
		return true
	}
	b, err := readFrame(rd, maxHelloFrame)
	if err != nil {
		_ = st.Reset()
		return
	}
	h, err := decodeHello(b)
	if err != nil || h.Version != joinVersion {
		log.Info("bad join hello", "err", err, "version", h.Version)
		send(reply{Status: statusBadMessage}.encode())
		return
	}
	// Cheap checks first: no scalar multiplication for a peer that may not
	// try, a replay, or junk.
	inv, status := s.inviteFor(h.Nameplate, from, h.Y, s.now())
	if status == statusOK && cpace.CheckMessage(h.Y[:]) != nil {
		status = statusBadMessage
	}
	if status != statusOK {
		send(reply{Status: status}.encode())
		return
	}
	state, yb, err := cpace.Start(cpace.Responder, inv.code.Password(), joinCI(s.self, from), h.Sid[:], nil, s.rand)
	if err != nil {
		log.Error("cpace start", "err", err)
		send(reply{Status: statusInternal}.encode())
		return
	}
	isk, err := state.Finish(h.Y[:], nil)
	if err != nil {
		log.Info("join refused: invalid CPace message", "err", err)
		send(reply{Status: statusBadMessage}.encode())
		return
	}
	// Book the attempt before our CPace message goes out: a run in which
	// we send it lets the peer test one guess, so it counts as failed
	// unless the peer proves the code. A replayed message tests nothing
	// new: refused, not counted.
	if status := s.bookAttempt(inv, from, h.Y, s.now()); status != statusOK {
		if status == statusBadMessage {
			log.Info("join refused: replayed hello")
		}
		send(reply{Status: status}.encode())
		return
	}
	rep := reply{Status: statusOK, Y: [pointLen]byte(yb), Tag: [tagLen]byte(cpace.ConfirmTag(isk, h.Sid[:], yb, nil))}
	if !send(rep.encode()) {
		return
	}
	b, err = readFrame(rd, maxConfirmFrame)
	if err != nil {
		log.Info("join abandoned after the PAKE (counted as a failed attempt)", "err", err)
		_ = st.Reset()
		return
	}
	c, err := decodeConfirm(b)
	if err != nil {
		send(welcome{Status: statusBadMessage}.encode())
		return
	}
	if !cpace.VerifyTag(isk, h.Sid[:], h.Y[:], nil, c.Tag[:]) {
		log.Warn("join refused: wrong code", "nameplate", h.Nameplate)
		send(welcome{Status: statusWrongCode}.encode())
		return
	}
	s.settleAttempt(inv, from, h.Y)
	pt, err := openWith(isk, labelRequest, c.Sealed)
	var req joinRequest
	if err == nil {
		req, err = decodeJoinRequest(pt)
	}
	if err != nil {
		log.Info("join refused: bad request", "err", err)
		send(welcome{Status: statusBadMessage}.encode())
		return
	}
	r, err := s.admit(inv, from, req)
	if err != nil {
		log.Warn("join refused", "err", err)
		status := statusInternal
		if errors.Is(err, errAlreadyMember) || errors.Is(err, ErrNoInvite) {
			status = statusRefused
		}
		send(welcome{Status: status}.encode())
		return
	}
	sealed, err := sealWith(s.rand, isk, labelWelcome, r.Encode())
	if err != nil {
		send(welcome{Status: statusInternal}.encode())
		return
	}
	if send(welcome{Status: statusOK, Sealed: sealed}.encode()) {
		log.Info("member joined by invite", "name", req.Name, "version", r.Version)
	}
}

var errAlreadyMember = errors.New("cell: already a member")

// inviteFor finds the open invite of a nameplate that from may try now
// with CPace message y, booking nothing; an invite found dead ends.
func (s *Service) inviteFor(nameplate uint16, from peer.ID, y [pointLen]byte, now time.Time) (*invite, byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := s.invites[nameplate]
	if inv == nil {
		return nil, statusNoInvite
	}
	status := inv.check(from, now, s.cfg.MaxAttempts, s.cfg.MaxInviteAttempts)
	if _, replay := inv.seen[y]; replay && status == statusOK {
		status = statusBadMessage
	}
	if inv.dead(now, s.cfg.MaxInviteAttempts) {
		s.log.Info("invite ended", "nameplate", nameplate, "failures", inv.failures)
		s.endInviteLocked(inv)
	}
	return inv, status
}

// bookAttempt books a run of from with CPace message y as failed (see
// invite.book) and stores the count before the run goes on, so that a
// restart gives no one more guesses.
func (s *Service) bookAttempt(inv *invite, from peer.ID, y [pointLen]byte, now time.Time) byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.invites[inv.code.Nameplate] != inv {
		return statusNoInvite // ended meanwhile
	}
	status := inv.book(from, y, now, s.cfg.MaxAttempts, s.cfg.MaxInviteAttempts)
	if status != statusOK {
		return status
	}
	if err := s.st.putInvite(s.ctx, inv); err != nil {
		s.log.Error("invite not stored", "err", err)
		inv.settle(from, y)
		return statusInternal
	}
	return statusOK
}

// settleAttempt takes back the failure booked for a run whose peer proved
// the code.
func (s *Service) settleAttempt(inv *invite, from peer.ID, y [pointLen]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv.settle(from, y)
	if s.invites[inv.code.Nameplate] != inv {
		return
	}
	if err := s.st.putInvite(s.ctx, inv); err != nil {
		s.log.Warn("invite not stored", "err", err) // a failure too many: safe
	}
}

// admit signs the roster with the joiner on it. Admission is idempotent
// for one device: a device already on the roster with the same box key is
// sent the roster again (its welcome was lost: it was cut off, or we
// crashed, before it came), and the invite is then bound to the device
// that proved its code, which alone may use it again until it expires,
// and only while it is a member: removed, it is not let back in by it.
func (s *Service) admit(inv *invite, id peer.ID, req joinRequest) (*Roster, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return nil, err
	}
	if cur, ok := s.invites[inv.code.Nameplate]; !ok || cur != inv || (inv.joiner != "" && inv.joiner != id) {
		return nil, ErrNoInvite
	}
	if s.state.cellKey == nil || s.state.roster == nil {
		return nil, ErrNotAdmin
	}
	r := s.state.roster
	m, member := r.Member(id)
	switch {
	case member && m.BoxKey != req.BoxKey:
		return nil, fmt.Errorf("%w: %s, with another box key (remove it first)", errAlreadyMember, id)
	case member:
		s.log.Info("welcome sent again", "peer", id, "version", r.Version)
	case inv.joiner == id:
		return nil, fmt.Errorf("%w: it admitted %s, removed since", ErrNoInvite, id)
	default:
		var err error
		m = Member{Peer: id, Name: req.Name, Roles: inv.roles, BoxKey: req.BoxKey}
		if r, err = r.WithMember(s.rand, m, s.state.keys, s.state.cellKey, s.now()); err != nil {
			return nil, err
		}
		if err := s.adoptLocked(s.ctx, r, s.state.keys); err != nil {
			return nil, err
		}
		var peers []peer.ID
		for _, mem := range r.Members {
			if mem.Peer != id {
				peers = append(peers, mem.Peer)
			}
		}
		s.spread(r, peers)
	}
	// Bound after the roster is stored: if we crash in between, the
	// invite is still open, and the device, a member now, gets the roster
	// again.
	if inv.joiner == "" {
		inv.joiner = id
		if err := s.st.putInvite(s.ctx, inv); err != nil {
			s.log.Warn("invite not stored", "err", err) // bound in this process all the same
		}
	}
	return r, nil
}
