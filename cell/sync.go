package cell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/cell/core"
	"github.com/exopeer/exopeer/gossip"
	"github.com/exopeer/exopeer/internal/ambient"
)

// ProtocolRoster carries rosters between nodes: a push of a new roster, or
// a pull of a newer one than the asker holds.
const ProtocolRoster protocol.ID = "/exopeer/cell/roster/1.0.0"

// streamTimeout bounds one exchange of the roster and join protocols.
const streamTimeout = 30 * time.Second

func checkMeta(_ peer.ID, app []byte) error {
	_, _, err := core.DecodeMeta(app)
	return err
}

// adopt makes r the node's roster if it is a valid, newer roster of the
// node's cell. A roster without this node means it was removed: gossip
// stops. It returns ErrStaleRoster for a roster not newer than the one held.
func (s *Service) adopt(ctx context.Context, r *Roster) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	return s.adoptLocked(ctx, r, s.state.keys)
}

// adoptLocked is adopt with the epoch secrets held so far in keys, which
// it does not change: the roster's secrets go into a copy, kept only once
// everything is stored.
func (s *Service) adoptLocked(ctx context.Context, r *Roster, keys *Keys) error {
	cur := s.state.roster
	switch {
	case cur == nil:
		return ErrNoCell
	case !cur.Cell.Equal(r.Cell):
		return ErrOtherCell
	case r.Version <= cur.Version:
		return fmt.Errorf("%w (offered %d, held %d)", ErrStaleRoster, r.Version, cur.Version)
	case r.Epoch < cur.Epoch:
		return fmt.Errorf("%w: version %d goes back to epoch %d", ErrBadRoster, r.Version, r.Epoch)
	}
	st := &state{box: s.state.box, roster: r, keys: keys.Clone(), cellKey: s.state.cellKey}
	if !r.Has(s.self) {
		if err := s.st.save(ctx, st); err != nil {
			return err
		}
		s.state = st
		s.roster.Store(r)
		s.log.Warn("this node was removed from its cell", "cell", r.ID(), "version", r.Version)
		if s.gossip != nil {
			m := s.gossip
			s.gossip = nil
			s.stopRendezvousLocked()
			left := make(chan struct{})
			s.leaving = left
			s.wg.Add(1)
			go func() { // Close waits for our own event loop: not under mu
				defer s.wg.Done()
				defer close(left)
				_ = m.Close()
			}()
		}
		return nil
	}
	if err := r.Accept(s.self, st.box, st.keys); err != nil {
		return err
	}
	if err := s.st.save(ctx, st); err != nil {
		return err
	}
	s.state = st
	s.roster.Store(r)
	s.log.Info("roster adopted", "cell", r.ID(), "version", r.Version, "epoch", r.Epoch, "members", len(r.Members))
	if s.gossip == nil {
		return s.startGossipLocked()
	}
	s.gossip.Refresh()
	if r.Epoch != cur.Epoch {
		secret, _ := st.keys.Secret(r.Epoch)
		if err := s.gossip.SetGossipKey(secret.GossipKey(r.Cell)); err != nil {
			return fmt.Errorf("cell: gossip key of epoch %d: %w", r.Epoch, err)
		}
		s.rendezvousLocked(secret.RendezvousSecret(r.Cell))
	}
	// UpdateMeta waits for the broadcast to go out: never under mu (a
	// goroutine waiting on mu would stall everything, and under synctest
	// stop virtual time).
	m := s.gossip
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		uctx, cancel := context.WithTimeout(s.ctx, streamTimeout)
		defer cancel()
		if err := m.UpdateMeta(uctx); err != nil {
			s.log.Debug("gossip meta update", "err", err)
		}
	}()
	return nil
}

// spread pushes r to each of peers, in the background.
func (s *Service) spread(r *Roster, peers []peer.ID) {
	b := core.RosterMsg{Type: core.MsgPush, Roster: r.Encode()}.Encode()
	for _, id := range peers {
		if id == s.self {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if _, err := s.exchange(id, b); err != nil {
				s.log.Debug("roster push failed", "peer", id, "err", err)
			}
		}()
	}
}

// exchange sends one roster-protocol message to id and returns the answer.
func (s *Service) exchange(id peer.ID, msg []byte) (core.RosterMsg, error) {
	ctx, cancel := context.WithTimeout(s.ctx, streamTimeout)
	defer cancel()
	st, err := s.h.NewStream(network.WithAllowLimitedConn(ctx, "cell roster"), id, ProtocolRoster)
	if err != nil {
		return core.RosterMsg{}, fmt.Errorf("cell: roster stream to %s: %w", id, err)
	}
	defer st.Close()
	_ = st.SetDeadline(ambient.Deadline(streamTimeout))
	// The service's end ends the exchange: Close waits for it. Its
	// timeout is the stream's deadline alone: a reset at the same instant
	// would race it, and the exchange would fail with whichever error won.
	stop := context.AfterFunc(s.ctx, func() { _ = st.Reset() })
	defer stop()
	if err := writeFrame(st, msg); err != nil {
		_ = st.Reset()
		return core.RosterMsg{}, fmt.Errorf("cell: roster to %s: %w", id, err)
	}
	_ = st.CloseWrite()
	b, err := readFrame(bufio.NewReader(st), core.MaxAnswerFrame)
	if err != nil {
		_ = st.Reset()
		return core.RosterMsg{}, fmt.Errorf("cell: roster from %s: %w", id, err)
	}
	m, err := core.DecodeRosterMsg(b)
	if err == nil && m.Type != core.MsgRoster {
		err = fmt.Errorf("%w: answer of type %d", ErrBadMessage, m.Type)
	}
	return m, err
}

// pull asks id for a roster newer than ours and adopts it.
func (s *Service) pull(id peer.ID) error {
	r := s.roster.Load()
	if r == nil {
		return ErrNoCell
	}
	m, err := s.exchange(id, core.RosterMsg{Type: core.MsgPull, Tag: r.Tag(), Version: r.Version}.Encode())
	if err != nil {
		return err
	}
	if m.Status != core.StatusOK || len(m.Roster) == 0 {
		return fmt.Errorf("cell: %s has no newer roster (status %d)", id, m.Status)
	}
	nr, err := DecodeRoster(m.Roster)
	if err != nil {
		return err
	}
	return s.adopt(s.ctx, nr)
}

// serveRoster answers the roster protocol. A push is adopted if it is a
// valid newer roster of our cell; a pull is answered, to a member only,
// with our roster if it is newer (and to a former member, so that it
// learns it was removed). Garbage resets the stream; the node goes
// on.
func (s *Service) serveRoster(st network.Stream) {
	defer st.Close()
	_ = st.SetDeadline(ambient.Deadline(streamTimeout))
	from := st.Conn().RemotePeer()
	b, err := readFrame(bufio.NewReader(st), core.MaxPushFrame)
	if err != nil {
		_ = st.Reset()
		return
	}
	m, err := core.DecodeRosterMsg(b)
	if err != nil || m.Type == core.MsgRoster {
		s.log.Debug("bad roster message", "peer", from, "err", err)
		_ = st.Reset()
		return
	}
	answer := core.RosterMsg{Type: core.MsgRoster, Status: core.StatusOK}
	cur := s.roster.Load()
	switch m.Type {
	case core.MsgPush:
		r, err := DecodeRoster(m.Roster)
		if err == nil {
			err = s.adopt(s.ctx, r)
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrStaleRoster):
			answer.Status = core.StatusOK // nothing new: fine
		default:
			s.log.Info("roster refused", "peer", from, "err", err)
			answer.Status = core.StatusRefused
		}
	case core.MsgPull:
		// A former member gets the roster that says it was removed.
		former := false
		if cur != nil {
			_, former = cur.FormerOf(from)
		}
		if cur == nil || cur.Tag() != m.Tag || !cur.Has(from) && !former || cur.Version <= m.Version || !cur.Has(s.self) {
			answer.Status = core.StatusRefused
		} else {
			answer.Roster = cur.Encode()
		}
	}
	if err := writeFrame(st, answer.Encode()); err != nil {
		_ = st.Reset()
	}
}

// eventLoop logs membership events and fetches the newer roster a member
// announces.
func (s *Service) eventLoop(events <-chan gossip.Event, cancel func()) {
	defer s.wg.Done()
	defer cancel()
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			s.log.Info("cell member "+ev.Type.String(), "peer", ev.Member.ID)
			s.checkVersion(ev.Member.ID, ev.Member.Meta)
		}
	}
}

// checkVersion pulls from id if its metadata shows a newer roster.
func (s *Service) checkVersion(id peer.ID, meta []byte) {
	v, _, err := core.DecodeMeta(meta)
	r := s.roster.Load()
	if err != nil || r == nil || v <= r.Version {
		return
	}
	if err := s.pull(id); err != nil && !errors.Is(err, ErrStaleRoster) {
		s.log.Debug("roster pull failed", "peer", id, "err", err)
	}
}

// redialRounds is how many maintenance rounds pass between attempts to
// reach members that are neither alive nor connected.
const redialRounds = 6

// maintainLoop, every MaintainInterval, joins into gossip the members we
// are connected to but do not see alive (after a partition heals, or a
// restart), pulls newer rosters that members announce, and ends expired
// invites.
func (s *Service) maintainLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.MaintainInterval)
	defer t.Stop()
	for round := 1; ; round++ {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.expireInvites(s.now())
		m := s.Gossip()
		r := s.roster.Load()
		if m == nil || r == nil {
			continue
		}
		alive := make(map[peer.ID]bool)
		for _, mem := range m.Members() {
			if mem.State == gossip.StateAlive || mem.State == gossip.StateSuspect {
				alive[mem.ID] = true
				s.checkVersion(mem.ID, mem.Meta)
			}
		}
		// Members not connected cost a dial each: try them every
		// redialRounds rounds only.
		all := round%redialRounds == 0
		var rejoin []peer.ID
		for _, mem := range r.Members {
			if mem.Peer != s.self && !alive[mem.Peer] && (all || len(s.h.Network().ConnsToPeer(mem.Peer)) > 0) {
				rejoin = append(rejoin, mem.Peer)
			}
		}
		if len(rejoin) > 0 {
			slices.Sort(rejoin)
			s.joinGossip(m, rejoin)
		}
		// A node that was away while the key epoch changed cannot read
		// the members' gossip any more (the old key is kept only a
		// minute), so it would never see their newer roster version: ask
		// the members it is connected to but does not see alive.
		if all {
			for _, id := range rejoin {
				if len(s.h.Network().ConnsToPeer(id)) == 0 {
					continue
				}
				err := s.pull(id)
				if err == nil {
					break
				}
				if !errors.Is(err, ErrStaleRoster) {
					s.log.Debug("roster pull failed", "peer", id, "err", err)
				}
			}
		}
	}
}
