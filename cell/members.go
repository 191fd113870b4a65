package cell

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/gossip"
)

// MemberStatus is one roster entry with what gossip says of it now.
type MemberStatus struct {
	Peer     peer.ID
	Name     string
	Roles    Role
	Added    time.Time
	Self     bool
	State    string    // alive, suspect, dead, left, or unknown (never heard of in this run)
	LastSeen time.Time // when this node last heard from it; zero if never
}

// Info summarises the node's cell.
type Info struct {
	ID      string // the cell's short ID
	Name    string
	Version uint64
	Epoch   uint64
	Admin   bool // this node holds the cell key
	Removed bool // this node was removed: the roster is the one that removed it
	Members []MemberStatus
}

// Members returns the roster with the live state of each member, in roster
// order (by peer ID). ErrNoCell if the node is in no cell.
func (s *Service) Members() (Info, error) {
	s.mu.Lock()
	st, m := s.state, s.gossip
	s.mu.Unlock()
	if st == nil || st.roster == nil {
		return Info{}, ErrNoCell
	}
	r := st.roster
	live := make(map[peer.ID]gossip.Member)
	if m != nil {
		for _, g := range m.Members() {
			live[g.ID] = g
		}
	}
	info := Info{ID: r.ID(), Name: r.Name, Version: r.Version, Epoch: r.Epoch,
		Admin: st.cellKey != nil, Removed: !r.Has(s.self)}
	now := s.now()
	for _, mem := range r.Members {
		ms := MemberStatus{Peer: mem.Peer, Name: mem.Name, Roles: mem.Roles, Added: mem.Added, State: "unknown"}
		switch g, ok := live[mem.Peer]; {
		case mem.Peer == s.self:
			ms.Self, ms.State, ms.LastSeen = true, "alive", now
		case ok:
			ms.State, ms.LastSeen = g.State.String(), g.LastSeen
		}
		info.Members = append(info.Members, ms)
	}
	return info, nil
}

// removeFetchTimeout bounds how long a removal waits to take what the
// removed member holds before it fixes the member's cut-off.
const removeFetchTimeout = 10 * time.Second

// Remove takes id off the roster and rotates the cell secret: the next
// roster version, in a new epoch whose secret only the remaining members
// receive, with id's cut-off (see Cutoff): unless now, this node first
// takes every chain entry id holds, if it can reach it within
// removeFetchTimeout, so that nothing id acknowledged is lost; with now
// (a stolen device) the cut-off is what this node holds already. The
// roster is pushed to every member and to the removed node (so that it
// learns it was removed); gossip rejects the removed node from then on.
// Only an admin can remove.
func (s *Service) Remove(ctx context.Context, id peer.ID, now bool) (*Roster, error) {
	s.mu.Lock()
	err := s.canRemoveLocked(id)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	// Without mu: the chain reads the keys while it takes id's entries.
	var cut Cutoff
	if s.cutoff != nil {
		fctx, cancel := context.WithTimeout(ctx, removeFetchTimeout)
		cut, err = s.cutoff(fctx, id, !now)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("cell: cut-off of %s: %w", id, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.canRemoveLocked(id); err != nil {
		return nil, err
	}
	// Without adds the new epoch's secret: to a copy, kept only once the
	// roster is stored.
	keys := s.state.keys.clone()
	r, err := s.state.roster.Without(s.rand, id, cut, keys, s.state.cellKey, s.now())
	if err != nil {
		return nil, err
	}
	if err := s.adoptLocked(ctx, r, keys); err != nil {
		return nil, err
	}
	s.log.Info("member removed", "peer", id, "version", r.Version, "epoch", r.Epoch, "cutoff", cut.Seq)
	peers := []peer.ID{id}
	for _, m := range r.Members {
		peers = append(peers, m.Peer)
	}
	s.spread(r, peers)
	return r, nil
}

// canRemoveLocked checks that this node may remove id now.
func (s *Service) canRemoveLocked(id peer.ID) error {
	if err := s.usableLocked(); err != nil {
		return err
	}
	if s.state.roster == nil {
		return ErrNoCell
	}
	if s.state.cellKey == nil {
		return ErrNotAdmin
	}
	if id == s.self {
		return fmt.Errorf("cell: an admin cannot remove itself (the cell key would leave with it)")
	}
	if !s.state.roster.Has(id) {
		return fmt.Errorf("%w: %s", ErrNotMember, id)
	}
	return nil
}
