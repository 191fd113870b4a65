package cell

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A member that was unreachable when it was removed never got the roster
// that removed it, and would go on taking appends. The members tell it:
// when a former member speaks to them (gossip, a roster pull), they push it
// their current roster, which lists it as removed; it adopts it and stops.

// tellEvery is how often a node pushes its roster to one former member
// that keeps speaking to it.
const tellEvery = time.Minute

// tellQueue bounds the former members waiting to be told.
const tellQueue = 16

// noteFormer queues id to be told of its removal if the current roster
// lists it as a former member. It never blocks: gossip's goroutines call
// it (a full queue drops id; it will speak again).
func (s *Service) noteFormer(id peer.ID) {
	r := s.roster.Load()
	if r == nil || !r.Has(s.self) {
		return
	}
	if _, ok := r.formerOf(id); !ok {
		return
	}
	select {
	case s.tell <- id:
	default:
	}
}

// tellLoop pushes the current roster to the former members noteFormer
// queued, each at most once per tellEvery. told holds only former members
// of the roster, so MaxFormer bounds it; entries older than tellEvery go.
func (s *Service) tellLoop() {
	defer s.wg.Done()
	told := make(map[peer.ID]time.Time)
	for {
		var id peer.ID
		select {
		case <-s.ctx.Done():
			return
		case id = <-s.tell:
		}
		now := s.now()
		if at, ok := told[id]; ok && now.Sub(at) < tellEvery {
			continue
		}
		for p, at := range told {
			if now.Sub(at) >= tellEvery {
				delete(told, p)
			}
		}
		told[id] = now
		r := s.roster.Load()
		if _, err := s.exchange(id, rosterMsg{Type: msgPush, Roster: r.Encode()}.encode()); err != nil {
			s.log.Debug("telling a removed node failed", "peer", id, "err", err)
			continue
		}
		s.log.Info("removed node told of its removal", "peer", id, "version", r.Version)
	}
}
