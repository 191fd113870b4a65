package discovery

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// dialLoop starts the dials that are due, at most MaxConcurrentDials at a
// time, and sleeps until the next one is.
func (s *Service) dialLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, next := s.dueDials(s.now())
		for _, id := range due {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.dial(id)
			}()
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(s.now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// dueDials marks the peers whose dial is due as dialling and returns them,
// with the time of the next dial after those.
func (s *Service) dueDials(now time.Time) (due []peer.ID, next time.Time) {
	var connected []peer.ID
	defer func() {
		for _, id := range connected {
			s.markExopeer(id, nil)
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, e := range s.peers {
		if !e.wantDial || e.dialing || e.exopeer {
			continue
		}
		if now.Before(e.ignoredUntil) {
			if next.IsZero() || e.ignoredUntil.Before(next) {
				next = e.ignoredUntil
			}
			continue
		}
		if s.h.Network().Connectedness(id) == network.Connected && s.speaksExopeer(id) {
			// Connected by another part of the node (the DHT, bitswap).
			e.wantDial = false
			connected = append(connected, id)
			continue
		}
		if e.nextDial.After(now) {
			if next.IsZero() || e.nextDial.Before(next) {
				next = e.nextDial
			}
			continue
		}
		if s.inflight >= s.cfg.MaxConcurrentDials {
			if next.IsZero() || now.Add(s.cfg.BackoffMin).Before(next) {
				next = now.Add(s.cfg.BackoffMin)
			}
			continue
		}
		e.dialing, e.wantDial = true, false
		s.inflight++
		due = append(due, id)
	}
	return due, next
}

// dial connects to one peer and books the result.
func (s *Service) dial(id peer.ID) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout)
	defer cancel()
	if addrs := s.knownAddrs(id); len(addrs) > 0 {
		s.h.Peerstore().AddAddrs(id, addrs, peerstore.AddressTTL)
	}
	err := s.h.Connect(ctx, peer.AddrInfo{ID: id, Addrs: s.h.Peerstore().Addrs(id)})
	if err == nil {
		s.waitIdentified(ctx, id)
		// Identify that failed or did not finish tells nothing about the
		// peer: count it as a failed dial, not as a foreign peer.
		if protos, perr := s.h.Peerstore().GetProtocols(id); perr != nil || len(protos) == 0 {
			err = errors.New("identify did not complete")
		}
	}
	exo := err == nil && s.awaitExopeer(ctx, id)
	keep := err != nil && s.keepKnown(id)

	s.mu.Lock()
	s.inflight--
	s.kick(s.wake)
	e := s.peers[id]
	if e == nil {
		s.mu.Unlock()
		return
	}
	e.dialing = false
	switch {
	case err != nil:
		e.failures++
		failures := e.failures
		if !e.sticky && !keep && failures >= s.cfg.MaxFailures {
			delete(s.peers, id)
			s.mu.Unlock()
			s.log.Info("peer forgotten", "peer", id, "failures", failures, "err", err)
			return
		}
		e.wantDial = true
		e.nextDial = s.now().Add(s.backoff(failures))
		s.mu.Unlock()
		s.log.Debug("dial failed", "peer", id, "failures", failures, "err", err)
	case !exo:
		s.mu.Unlock()
		s.ignore(id)
	default:
		e.failures = 0
		s.mu.Unlock()
	}
}

// maxConcurrentPings bounds the pings of one round, so that one silent peer
// does not hold up the others.
const maxConcurrentPings = 16

// pingLoop measures the round trip to every connected exopeer peer.
func (s *Service) pingLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	sem := make(chan struct{}, maxConcurrentPings)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		var round sync.WaitGroup
		for _, p := range s.Peers() {
			sem <- struct{}{}
			round.Add(1)
			go func() {
				defer func() { <-sem; round.Done() }()
				s.ping(p.ID)
			}()
		}
		round.Wait()
		for _, p := range s.Peers() {
			s.noteConnected(p.ID)
		}
		s.sweepKnown()
	}
}

// ping measures the round trip to a connected peer. It never dials: a peer
// whose connection just closed stays closed.
func (s *Service) ping(id peer.ID) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout)
	defer cancel()
	rtt, err := ping(network.WithNoDial(ctx, "exopeer ping"), s.h, id, s.rand, s.now)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.peers[id]
	if e == nil || !e.exopeer {
		return
	}
	if err != nil {
		e.rtt = 0 // unknown now, rather than stale
		s.log.Debug("ping failed", "peer", id, "err", err)
		return
	}
	e.rtt = rtt
}

// rendezvous is one secret the node meets others by.
type rendezvous struct {
	secret []byte
	// isMember, if not nil, says who holds the secret: the members of a
	// closed group, of whom only a few advertise (RendezvousMembers).
	isMember func(peer.ID) bool
}

// Rendezvous makes the node meet, through the DHT, every other node that
// calls Rendezvous with the same secret: it advertises the epoch's
// rendezvous key and looks up its other providers, until StopRendezvous.
// It does not block. Without a DHT it does nothing.
func (s *Service) Rendezvous(secret []byte) { s.addRendezvous(secret, nil) }

// RendezvousMembers is Rendezvous for the members of a closed group, those
// that isMember accepts (a cell's roster), who all call it with the same
// secret. Only a few members advertise and look up the key in each epoch,
// so that the DHT does not learn the whole group: those ranked lowest for
// the epoch (Config.RendezvousAdvertisers of them) among the members
// connected to each other, chosen anew every round. A member connected to
// no other member always advertises and looks up, so it finds the group
// and the group finds it. isMember must be safe for concurrent use and
// must not block; it is called outside the Service's locks. It does not
// block. Without a DHT it does nothing.
func (s *Service) RendezvousMembers(secret []byte, isMember func(peer.ID) bool) {
	s.addRendezvous(secret, isMember)
}

func (s *Service) addRendezvous(secret []byte, isMember func(peer.ID) bool) {
	s.mu.Lock()
	s.secrets[string(secret)] = rendezvous{secret: append([]byte(nil), secret...), isMember: isMember}
	s.mu.Unlock()
	s.kick(s.rzWake)
}

// StopRendezvous stops advertising and looking up secret's keys.
func (s *Service) StopRendezvous(secret []byte) {
	s.mu.Lock()
	delete(s.secrets, string(secret))
	s.mu.Unlock()
	s.kick(s.rzWake)
}

func (s *Service) rendezvousLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.RendezvousInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.rzWake:
		}
		s.rendezvousRound()
	}
}

// rendezvousRound advertises the current key of every secret, withdraws the
// keys of past epochs and of stopped secrets, and looks up the providers of
// the current and the previous epoch's key (a node may lag one epoch).
func (s *Service) rendezvousRound() {
	epoch := Epoch(s.now(), s.cfg.RendezvousEpoch)
	s.mu.Lock()
	rzs := make([]rendezvous, 0, len(s.secrets))
	for _, rz := range s.secrets {
		rzs = append(rzs, rz)
	}
	s.mu.Unlock()
	want := make(map[string]cid.Cid)
	var lookups []cid.Cid
	for _, rz := range rzs {
		if rz.isMember != nil && !s.advertiser(rz, epoch) {
			continue
		}
		cur := RendezvousKey(rz.secret, epoch)
		want[cur.KeyString()] = cur
		lookups = append(lookups, cur, RendezvousKey(rz.secret, epoch-1))
	}
	s.mu.Lock()
	var stale []string
	for k := range s.provided {
		if _, ok := want[k]; !ok {
			stale = append(stale, k)
		}
	}
	for _, k := range stale {
		delete(s.provided, k)
	}
	var fresh []cid.Cid
	for k, c := range want {
		if _, ok := s.provided[k]; !ok {
			s.provided[k] = epoch
			fresh = append(fresh, c)
		}
	}
	s.mu.Unlock()

	for _, k := range stale {
		if c, err := cid.Cast([]byte(k)); err == nil {
			s.router.Unprovide(c)
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	for _, c := range fresh {
		if err := s.router.Provide(ctx, c); err != nil {
			s.log.Warn("rendezvous advertise failed", "err", err)
			s.mu.Lock()
			delete(s.provided, c.KeyString()) // retried next round
			s.mu.Unlock()
		}
	}
	for _, c := range lookups {
		for ai := range s.router.FindProviders(ctx, c, 32) {
			if len(ai.Addrs) > 0 {
				s.Found(SourceDHT, ai)
			}
		}
	}
}

// advertiser reports whether this node is one of the members that
// advertise rz in epoch (see advertises), given its connections now.
func (s *Service) advertiser(rz rendezvous, epoch uint64) bool {
	self := s.h.ID()
	var connected []peer.ID
	for _, id := range s.h.Network().Peers() {
		if id != self && rz.isMember(id) {
			connected = append(connected, id)
		}
	}
	return advertises(rz.secret, epoch, self, connected, s.cfg.RendezvousAdvertisers)
}
