package cell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell/core"
)

// joinRetry is how often a joiner looks again for the inviter among its
// connected peers; every core.RendezvousRounds of them it also asks
// discovery to look the nameplate's rendezvous up on the DHT again. A peer
// that answered with a status is asked again after core.RendezvousRounds
// rounds.
const joinRetry = time.Second

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
	c, err := core.ParseCode(code)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = s.cfg.Name
	}
	if !core.ValidName(name) {
		return nil, fmt.Errorf("cell: member name %q is empty, longer than %d bytes or not printable", name, MaxNameLen)
	}
	if err := s.waitLeft(ctx); err != nil {
		return nil, err
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
		plan    = core.NewJoinPlan()
		results = make(chan joinResult, core.MaxJoinInFlight) // never full: one slot per attempt in flight
		wg      sync.WaitGroup
	)
	actx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel() // attempts still running end, and fit in results
		wg.Wait()
	}()
	launch := func() {
		for _, id := range plan.Next(s.h.Network().Peers(), s.speaksJoin) {
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
			var final *core.FinalError
			switch {
			case res.err == nil:
				return res.r, nil
			case errors.As(res.err, &final):
				return nil, final.Err
			}
			s.log.Info("join attempt failed", "peer", res.id, "err", res.err)
			plan.Failed(res.id, res.err)
		case <-t.C:
			plan.Tick(func(id peer.ID) bool { return s.h.Network().Connectedness(id) == network.Connected })
			if s.rz != nil && plan.Round%core.RendezvousRounds == 0 {
				s.rz.Rendezvous(rz) // again: look the nameplate up now
			}
			launch()
		case <-ctx.Done():
			if h := plan.Hint; h.Err != nil {
				return nil, fmt.Errorf("cell: no join for nameplate %04d (the most telling answer, from %s: %w): %w", c.Nameplate, h.Peer, h.Err, ctx.Err())
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

func (s *Service) speaksJoin(id peer.ID) bool {
	ok, err := s.h.Peerstore().SupportsProtocols(id, ProtocolJoin)
	return err == nil && len(ok) > 0
}

// joinVia runs the join protocol with one candidate inviter. The attempt
// lasts at most streamTimeout, which the stream's deadline enforces; the
// end of ctx (Join returning) resets the stream. Only ctx's end resets it,
// not the attempt's timeout: a reset at the deadline's own instant would
// race the deadline, and the attempt would fail with whichever error won
// (a reset or closed pipe rather than the timeout it is).
func (s *Service) joinVia(ctx context.Context, admin peer.ID, c Code, box BoxKey, name string) (_ *Roster, err error) {
	tctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	st, err := s.h.NewStream(network.WithAllowLimitedConn(tctx, "cell join"), admin, ProtocolJoin)
	if err != nil {
		return nil, fmt.Errorf("cell: join stream to %s: %w", admin, err)
	}
	// A failed join resets its stream: Close would wait, up to the stream's
	// deadline, for a protocol handshake the admin may never send, and
	// hold the join past its time.
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

	run, hello, err := core.NewJoinerRun(c, admin, s.self, box.Public(), name, s.rand)
	if err != nil {
		return nil, &core.FinalError{Err: err}
	}
	if err := writeFrame(st, hello); err != nil {
		return nil, run.Broken(err)
	}
	b, err := readFrame(rd, core.MaxReplyFrame)
	if err != nil {
		return nil, run.Broken(err)
	}
	conf, err := run.Reply(b)
	if errors.Is(err, core.ErrWrongCode) {
		_ = st.Reset() // the inviter counted the attempt; say nothing more to it
	}
	if err != nil {
		return nil, err
	}
	if err := writeFrame(st, conf); err != nil {
		return nil, fmt.Errorf("cell: join: %w", err)
	}
	if b, err = readFrame(rd, core.MaxWelcomeFrame); err != nil {
		return nil, run.Broken(err)
	}
	r, err := run.Welcome(b)
	if err != nil {
		return nil, err
	}
	if err := s.welcomeRoster(tctx, r, box); err != nil {
		return nil, &core.FinalError{Err: err}
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
