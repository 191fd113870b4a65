package cell

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/internal/cpace"
)

// ProtocolJoin is the join protocol: a CPace exchange keyed by the invite
// code's words, then the joiner's request and the admin's new roster,
// sealed under keys from the PAKE. See doc.go.
const ProtocolJoin protocol.ID = "/exopeer/cell/join/1.0.0"

// invite is an open invitation on an admin.
type invite struct {
	code     Code
	roles    Role
	expires  time.Time
	failures int
	rzSecret []byte
}

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
		c, err := NewCode(rand.Reader)
		if err != nil {
			return Code{}, time.Time{}, err
		}
		if _, taken := s.invites[c.Nameplate]; !taken {
			code = c
			break
		}
	}
	inv := &invite{code: code, roles: opts.Roles, expires: time.Now().Add(opts.TTL), rzSecret: inviteRendezvous(code.Nameplate)}
	s.invites[code.Nameplate] = inv
	if s.rz != nil {
		s.rz.Rendezvous(inv.rzSecret)
	}
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

func (s *Service) endInviteLocked(inv *invite) {
	delete(s.invites, inv.code.Nameplate)
	if s.rz != nil {
		s.rz.StopRendezvous(inv.rzSecret)
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

func sealWith(isk []byte, label string, pt []byte) ([]byte, error) {
	aead, err := newAEAD(cpace.SessionKey(isk, label, 32))
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nil, pt, []byte(label)), nil
}

func openWith(isk []byte, label string, ct []byte) ([]byte, error) {
	aead, err := newAEAD(cpace.SessionKey(isk, label, 32))
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, nil, ct, []byte(label))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrDecrypt, label)
	}
	return pt, nil
}

// serveJoin is the admin's side of a join.
func (s *Service) serveJoin(st network.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(streamTimeout))
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
	// Book the attempt before any key material goes out: a run in which
	// we send our CPace message lets the peer test one guess, so it counts
	// as failed unless the peer proves the code.
	inv, status := s.takeAttempt(h.Nameplate, time.Now())
	if status != statusOK {
		send(reply{Status: status}.encode())
		return
	}
	state, yb, err := cpace.Start(cpace.Responder, inv.code.Password(), joinCI(s.self, from), h.Sid[:], nil, rand.Reader)
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
		if errors.Is(err, errAlreadyMember) || errors.Is(err, ErrInviteExhausted) || errors.Is(err, ErrNoInvite) {
			status = statusRefused
		}
		send(welcome{Status: status}.encode())
		return
	}
	sealed, err := sealWith(isk, labelWelcome, r.Encode())
	if err != nil {
		send(welcome{Status: statusInternal}.encode())
		return
	}
	if send(welcome{Status: statusOK, Sealed: sealed}.encode()) {
		log.Info("member joined by invite", "name", req.Name, "version", r.Version)
	}
}

var errAlreadyMember = errors.New("cell: already a member")

// takeAttempt finds the open invite of a nameplate and books one attempt.
func (s *Service) takeAttempt(nameplate uint16, now time.Time) (*invite, byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := s.invites[nameplate]
	switch {
	case inv == nil:
		return nil, statusNoInvite
	case now.After(inv.expires):
		s.endInviteLocked(inv)
		return nil, statusExpired
	case inv.failures >= s.cfg.MaxAttempts:
		s.endInviteLocked(inv)
		return nil, statusExhausted
	}
	inv.failures++ // a successful join consumes the invite anyway
	return inv, statusOK
}

// admit consumes the invite and signs the roster with the joiner on it.
func (s *Service) admit(inv *invite, id peer.ID, req joinRequest) (*Roster, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.invites[inv.code.Nameplate]; !ok || cur != inv {
		return nil, ErrNoInvite
	}
	s.endInviteLocked(inv)
	if err := s.usableLocked(); err != nil {
		return nil, err
	}
	if s.state.cellKey == nil || s.state.roster == nil {
		return nil, ErrNotAdmin
	}
	if s.state.roster.Has(id) {
		return nil, fmt.Errorf("%w: %s", errAlreadyMember, id)
	}
	m := Member{Peer: id, Name: req.Name, Roles: inv.roles, BoxKey: req.BoxKey}
	r, err := s.state.roster.WithMember(m, s.state.keys, s.state.cellKey, time.Now())
	if err != nil {
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
	return r, nil
}
