package cell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/cpace"
)

// joinRetry is how often a joiner looks again for the inviter among its
// connected peers; every rendezvousRounds of them it also asks discovery to
// look the nameplate's rendezvous up on the DHT again. A peer that answered
// with a status is asked again after rendezvousRounds rounds.
const (
	joinRetry        = time.Second
	rendezvousRounds = 5
)

// Join joins the cell of the admin that printed code. It looks for the
// admin among the peers this node is connected to or meets (on the LAN, or
// through the nameplate's rendezvous on the DHT), runs the PAKE with it and
// takes the roster it signs. The node is listed as name ("": Config.Name).
//
// It asks every connected peer that speaks the join protocol, up to 16 at
// once, so that a peer that holds its stream open delays nothing, and
// blocks until the join succeeds, an admin that proved the code refuses
// it, this node fails, or ctx ends. Nameplates are public, so what a peer
// says before it proves the code (no such invite, expired, exhausted,
// refused, a key confirmation that fails, a broken stream) is a hint only:
// Join goes on with the other peers, and asks that one again later. A peer
// that answered as if the code were wrong is not asked again, so that a
// mistyped code spends one attempt of the invite, not many. When ctx ends,
// the error wraps ctx's and the most telling answer heard, naming the peer
// that gave it.
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
	var (
		plan    = newJoinPlan()
		results = make(chan joinResult, maxJoinInFlight) // never full: one slot per attempt in flight
		wg      sync.WaitGroup
	)
	actx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel() // attempts still running end, and fit in results
		wg.Wait()
	}()
	launch := func() {
		for _, id := range plan.next(s.h.Network().Peers(), s.speaksJoin) {
			wg.Go(func() {
				r, err := s.joinVia(actx, id, c, box, name)
				results <- joinResult{id, r, err}
			})
		}
	}
	t := time.NewTicker(joinRetry)
	defer t.Stop()
	if s.rz != nil {
		s.rz.Rendezvous(rz)
	}
	launch()
	for {
		select {
		case res := <-results:
			var final *joinFinal
			switch {
			case res.err == nil:
				return res.r, nil
			case errors.As(res.err, &final):
				return nil, final.err
			}
			s.log.Info("join attempt failed", "peer", res.id, "err", res.err)
			plan.failed(res.id, res.err)
		case <-t.C:
			plan.tick(func(id peer.ID) bool { return s.h.Network().Connectedness(id) == network.Connected })
			if s.rz != nil && plan.round%rendezvousRounds == 0 {
				s.rz.Rendezvous(rz) // again: look the nameplate up now
			}
			launch()
		case <-ctx.Done():
			if h := plan.hint; h.err != nil {
				return nil, fmt.Errorf("cell: no join for nameplate %04d (the most telling answer, from %s: %w): %w", c.Nameplate, h.peer, h.err, ctx.Err())
			}
			return nil, fmt.Errorf("cell: no inviter found for nameplate %04d: %w", c.Nameplate, ctx.Err())
		case <-s.ctx.Done():
			return nil, errors.New("cell: service closed")
		}
	}
}

type joinResult struct {
	id  peer.ID
	r   *Roster
	err error
}

// joinFinal marks a join error that ends Join: this node failed, or an
// admin that proved the code refused the join.
type joinFinal struct{ err error }

func (e *joinFinal) Error() string { return e.err.Error() }
func (e *joinFinal) Unwrap() error { return e.err }

// joinAnswer marks a join error that is what the peer answered (a status,
// or a message that does not parse), not what the network did.
type joinAnswer struct{ err error }

func (e *joinAnswer) Error() string { return e.err.Error() }
func (e *joinAnswer) Unwrap() error { return e.err }

// isStatus reports whether err is what a peer answered.
func isStatus(err error) bool {
	var a *joinAnswer
	return errors.As(err, &a)
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
	if _, err := io.ReadFull(s.rand, h.Sid[:]); err != nil {
		return nil, fmt.Errorf("cell: join session ID: %w", err)
	}
	state, ya, err := cpace.Start(cpace.Initiator, c.Password(), joinCI(admin, s.self), h.Sid[:], nil, s.rand)
	if err != nil {
		return nil, err
	}
	h.Y = [pointLen]byte(ya)
	if err := writeFrame(st, h.encode()); err != nil {
		return nil, fmt.Errorf("cell: join: %w", err)
	}
	b, err := readFrame(rd, maxReplyFrame)
	if err != nil {
		return nil, fmt.Errorf("cell: join: %w", err)
	}
	rep, err := decodeReply(b)
	if err != nil {
		return nil, &joinAnswer{err}
	}
	if err := statusErr(rep.Status); err != nil {
		return nil, &joinAnswer{err}
	}
	isk, err := state.Finish(rep.Y[:], nil)
	if err != nil {
		return nil, &joinAnswer{fmt.Errorf("%w: %w", ErrBadMessage, err)}
	}
	if !cpace.VerifyTag(isk, h.Sid[:], rep.Y[:], nil, rep.Tag[:]) {
		// The inviter counted the attempt; say nothing more to it.
		_ = st.Reset()
		return nil, ErrWrongCode
	}
	sealed, err := sealWith(s.rand, isk, labelRequest, joinRequest{Name: name, BoxKey: box.Public()}.encode())
	if err != nil {
		return nil, err
	}
	if err := writeFrame(st, confirm{Tag: [tagLen]byte(cpace.ConfirmTag(isk, h.Sid[:], ya, nil)), Sealed: sealed}.encode()); err != nil {
		return nil, fmt.Errorf("cell: join: %w", err)
	}
	if b, err = readFrame(rd, maxWelcomeFrame); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWelcomeLost, err)
	}
	w, err := decodeWelcome(b)
	if err != nil {
		return nil, &joinAnswer{err}
	}
	if err := statusErr(w.Status); err != nil {
		if errors.Is(err, ErrJoinRefused) {
			// From the peer that proved the code: the inviter itself.
			return nil, &joinFinal{fmt.Errorf("%w (%s)", err, admin)}
		}
		return nil, &joinAnswer{err}
	}
	pt, err := openWith(isk, labelWelcome, w.Sealed)
	if err != nil {
		return nil, &joinAnswer{err}
	}
	r, err := DecodeRoster(pt)
	if err != nil {
		return nil, &joinAnswer{err}
	}
	if !r.Has(admin) {
		return nil, &joinAnswer{fmt.Errorf("%w: the inviter is not on the roster it sent", ErrBadRoster)}
	}
	if m, _ := r.Member(admin); m.Roles&RoleAdmin == 0 {
		return nil, &joinAnswer{fmt.Errorf("%w: the inviter is not an admin of the roster it sent", ErrBadRoster)}
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
