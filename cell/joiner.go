package cell

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/cpace"
)

// joinRetry is how often a joiner looks again for the inviter among its
// connected peers; every rendezvousRounds of them it also asks discovery to
// look the nameplate's rendezvous up on the DHT again.
const (
	joinRetry        = time.Second
	rendezvousRounds = 5
)

// Join joins the cell of the admin that printed code. It looks for the
// admin among the peers this node is connected to or meets (on the LAN, or
// through the nameplate's rendezvous on the DHT), runs the PAKE with it and
// takes the roster it signs. The node is listed as name ("": Config.Name).
//
// It blocks until the join succeeds, an admin that proved the code
// refuses it, this node fails, or ctx ends. Nameplates are public, so
// what a peer says before it proves the code (no such invite, expired,
// exhausted, refused, a key confirmation that fails, a broken stream) is
// a hint only: Join tries the other peers, and that one again later. A
// peer that answered as if the code were wrong is not asked again, so
// that a mistyped code spends one attempt of the invite, not three. When
// ctx ends, the error wraps ctx's and the most telling answer heard, with
// the peer that gave it.
func (s *Service) Join(ctx context.Context, code, name string) (*Roster, error) {
	c, err := ParseCode(code)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = s.cfg.Name
	}
	if !validName(name) {
		return nil, fmt.Errorf("cell: member name %q is empty, longer than %d bytes or not printable", name, MaxNameLen)
	}
	s.mu.Lock()
	if err := s.usableLocked(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if r := s.state.roster; r != nil && r.Has(s.self) {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w (%s, %q)", ErrAlreadyInCell, r.ID(), r.Name)
	}
	if s.joining {
		s.mu.Unlock()
		return nil, errors.New("cell: a join is already in progress")
	}
	s.joining = true
	box := s.state.box
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.joining = false
		s.mu.Unlock()
	}()

	rz := inviteRendezvous(c.Nameplate)
	if s.rz != nil {
		defer s.rz.StopRendezvous(rz)
	}
	var hint joinHint
	// retry holds, for each connected peer tried, the round from which it
	// may be tried again: bounded by the node's connections.
	retry := make(map[peer.ID]int)
	t := time.NewTicker(joinRetry)
	defer t.Stop()
	for round := 0; ; round++ {
		if s.rz != nil && round%rendezvousRounds == 0 {
			s.rz.Rendezvous(rz) // (again): look the nameplate up now
		}
		peers := s.h.Network().Peers()
		for id := range retry {
			if !slices.Contains(peers, id) {
				delete(retry, id)
			}
		}
		for _, id := range peers {
			if at, ok := retry[id]; (ok && round < at) || !s.speaksJoin(id) {
				continue
			}
			r, err := s.joinVia(ctx, id, c, box, name)
			var final *joinFinal
			switch {
			case err == nil:
				return r, nil
			case errors.As(err, &final):
				return nil, final.err
			case errors.Is(err, ErrWrongCode):
				retry[id] = math.MaxInt
			case isStatus(err):
				retry[id] = round + rendezvousRounds
			default: // the network: soon again
				retry[id] = round + 1
			}
			s.log.Info("join attempt failed", "peer", id, "err", err)
			hint.note(id, err)
		}
		select {
		case <-ctx.Done():
			if hint.err == nil {
				return nil, fmt.Errorf("cell: no inviter found for nameplate %04d: %w", c.Nameplate, ctx.Err())
			}
			return nil, fmt.Errorf("cell: no join for nameplate %04d (the most telling answer, from %s: %w): %w", c.Nameplate, hint.peer, hint.err, ctx.Err())
		case <-s.ctx.Done():
			return nil, errors.New("cell: service closed")
		case <-t.C:
		}
	}
}

// joinFinal marks a join error that ends Join: this node failed, or an
// admin that proved the code refused the join.
type joinFinal struct{ err error }

func (e *joinFinal) Error() string { return e.err.Error() }
func (e *joinFinal) Unwrap() error { return e.err }

// isStatus reports whether err is a status a peer answered.
func isStatus(err error) bool {
	for _, e := range []error{ErrNoInvite, ErrInviteExpired, ErrInviteExhausted, ErrJoinRefused, ErrBadMessage, errInviterFailed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// joinHint is the most telling answer a Join heard, for its error.
type joinHint struct {
	peer peer.ID
	err  error
	rank int
}

// note keeps err if it tells at least as much as the answer kept: a wrong
// code, then what an inviter says of its invite, then "no such invite",
// then the network.
func (h *joinHint) note(id peer.ID, err error) {
	rank := 0
	switch {
	case errors.Is(err, ErrWrongCode):
		rank = 3
	case errors.Is(err, ErrNoInvite):
		rank = 1
	case isStatus(err):
		rank = 2
	}
	if h.err == nil || rank >= h.rank {
		h.peer, h.err, h.rank = id, err, rank
	}
}

func (s *Service) speaksJoin(id peer.ID) bool {
	ok, err := s.h.Peerstore().SupportsProtocols(id, ProtocolJoin)
	return err == nil && len(ok) > 0
}

// joinVia runs the join protocol with one candidate inviter.
func (s *Service) joinVia(ctx context.Context, admin peer.ID, c Code, box BoxKey, name string) (*Roster, error) {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	st, err := s.h.NewStream(ctx, admin, ProtocolJoin)
	if err != nil {
		return nil, fmt.Errorf("cell: join stream to %s: %w", admin, err)
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	rd := bufio.NewReader(st)

	h := hello{Version: joinVersion, Nameplate: c.Nameplate}
	rand.Read(h.Sid[:])
	state, ya, err := cpace.Start(cpace.Initiator, c.Password(), joinCI(admin, s.self), h.Sid[:], nil, rand.Reader)
	if err != nil {
		return nil, err
	}
	h.Y = [pointLen]byte(ya)
	if err := writeFrame(st, h.encode()); err != nil {
		return nil, fmt.Errorf("cell: join: %w", err)
	}
	b, err := readFrame(rd)
	if err != nil {
		return nil, fmt.Errorf("cell: join: %w", err)
	}
	rep, err := decodeReply(b)
	if err != nil {
		return nil, err
	}
	if err := statusErr(rep.Status); err != nil {
		return nil, err
	}
	isk, err := state.Finish(rep.Y[:], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if !cpace.VerifyTag(isk, h.Sid[:], rep.Y[:], nil, rep.Tag[:]) {
		// The inviter counted the attempt; say nothing more to it.
		_ = st.Reset()
		return nil, ErrWrongCode
	}
	sealed, err := sealWith(isk, labelRequest, joinRequest{Name: name, BoxKey: box.Public()}.encode())
	if err != nil {
		return nil, err
	}
	if err := writeFrame(st, confirm{Tag: [tagLen]byte(cpace.ConfirmTag(isk, h.Sid[:], ya, nil)), Sealed: sealed}.encode()); err != nil {
		return nil, fmt.Errorf("cell: join: %w", err)
	}
	if b, err = readFrame(rd); err != nil {
		return nil, fmt.Errorf("cell: join: %w", err)
	}
	w, err := decodeWelcome(b)
	if err != nil {
		return nil, err
	}
	if err := statusErr(w.Status); err != nil {
		if errors.Is(err, ErrJoinRefused) {
			// From the peer that proved the code: the inviter itself.
			return nil, &joinFinal{fmt.Errorf("%w (%s)", err, admin)}
		}
		return nil, err
	}
	pt, err := openWith(isk, labelWelcome, w.Sealed)
	if err != nil {
		return nil, err
	}
	r, err := DecodeRoster(pt)
	if err != nil {
		return nil, err
	}
	if !r.Has(admin) {
		return nil, fmt.Errorf("%w: the inviter is not on the roster it sent", ErrBadRoster)
	}
	if m, _ := r.Member(admin); m.Roles&RoleAdmin == 0 {
		return nil, fmt.Errorf("%w: the inviter is not an admin of the roster it sent", ErrBadRoster)
	}
	if err := s.welcomeRoster(ctx, r, box); err != nil {
		return nil, &joinFinal{err}
	}
	return r, nil
}

// welcomeRoster takes the roster of a cell just joined.
func (s *Service) welcomeRoster(ctx context.Context, r *Roster, box BoxKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	if cur := s.state.roster; cur != nil && cur.Has(s.self) {
		return ErrAlreadyInCell
	}
	keys := NewKeys(r.Cell)
	if err := r.Accept(s.self, box, keys); err != nil {
		return err
	}
	st := &state{box: box, roster: r, keys: keys}
	if err := s.st.save(ctx, st); err != nil {
		return err
	}
	s.state = st
	s.roster.Store(r)
	s.log.Info("joined cell", "cell", r.ID(), "name", r.Name, "version", r.Version, "members", len(r.Members))
	return s.startGossipLocked()
}
