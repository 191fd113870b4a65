package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/index"
	"github.com/exopeer/exopeer/store/remote"
)

// Roles and the remote path. A store-role node serves its index to the
// members of its cell (remote.Server, allow: on the current roster). A
// node without the role sends each read to a store member of its roster:
// the one that answered last, then those connected, then the others, each
// group by peer ID (a deterministic order), members that failed in the
// last downFor last of all. A failure to reach a member moves on to the
// next; an answer, even an error (store.ErrQuery, store.ErrNotFound), is
// the answer. When none answers: ErrNoStoreMember.

// downFor is how long a member that could not be reached goes last.
const downFor = 30 * time.Second

// Re-establishing a watch whose member went away, while none answers:
// the first wait, doubled up to the last.
const (
	rewatchFirst = time.Second
	rewatchMax   = 30 * time.Second
)

// backend is the local index as remote.Server serves it: a node answers
// from its own index only, never from another member's.
type backend struct{ s *Service }

func (b backend) local(ctx context.Context) (*index.Index, error) {
	ix, err := b.s.route(ctx)
	if err != nil {
		return nil, err
	}
	if ix == nil {
		return nil, ErrNotStore
	}
	return ix, nil
}

func (b backend) Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error) {
	ix, err := b.local(ctx)
	if err != nil {
		return store.Entity{}, err
	}
	return ix.Get(ctx, id, traits)
}

func (b backend) Query(ctx context.Context, q store.Query) (store.Page, error) {
	ix, err := b.local(ctx)
	if err != nil {
		return store.Page{}, err
	}
	return ix.Query(ctx, q)
}

func (b backend) Watch(ctx context.Context, q store.Query) (<-chan store.WatchEvent, error) {
	ix, err := b.local(ctx)
	if err != nil {
		return nil, err
	}
	return b.s.localWatch(ctx, ix, q)
}

// allow lets the members of the node's current roster in.
func (s *Service) allow(p peer.ID) bool {
	ro := s.cell.Roster()
	return ro != nil && p != s.h.ID() && ro.Has(p)
}

// final reports whether err is an answer (not a failure to get one). A
// member's answer that the answer is too large for the protocol (an
// entity over a frame: project fewer traits) is one: every member would
// say the same. (A frame over the cap that a member sends is not.)
func final(ctx context.Context, err error) bool {
	var re *remote.Error
	return err == nil || errors.Is(err, store.ErrQuery) || errors.Is(err, store.ErrNotFound) ||
		(errors.As(err, &re) && errors.Is(re, remote.ErrTooLarge)) || ctx.Err() != nil
}

// remote runs read on store members in order until one answers.
func (s *Service) remote(ctx context.Context, read func(ctx context.Context, p peer.ID) error) error {
	ms := s.storeMembers()
	if len(ms) == 0 {
		return fmt.Errorf("%w: the roster lists no other member with the store role", ErrNoStoreMember)
	}
	var errs []string
	for _, p := range ms {
		err := read(ctx, p)
		if final(ctx, err) {
			if ctx.Err() == nil {
				s.answered(p)
			}
			return err
		}
		if nodial, _ := network.GetNoDial(ctx); !nodial { // not reached, but maybe reachable
			s.failed(p, err)
		}
		errs = append(errs, fmt.Sprintf("%s: %v", p.ShortString(), err))
	}
	return fmt.Errorf("%w (%s)", ErrNoStoreMember, strings.Join(errs, "; "))
}

// storeMembers returns the store members of the roster but this node, in
// the order reads try them.
func (s *Service) storeMembers() []peer.ID {
	ro := s.cell.Roster()
	if ro == nil {
		return nil
	}
	self := s.h.ID()
	now := s.cfg.Now()
	s.rmu.Lock()
	last := s.member
	down := make(map[peer.ID]bool, len(s.down))
	for p, at := range s.down {
		if now.Sub(at) < downFor {
			down[p] = true
		} else {
			delete(s.down, p)
		}
	}
	s.rmu.Unlock()
	rank := func(p peer.ID) int {
		switch {
		case down[p]:
			return 3
		case p == last:
			return 0
		case s.h.Network().Connectedness(p) == network.Connected:
			return 1
		}
		return 2
	}
	var ms []peer.ID
	for _, m := range ro.Members {
		if m.Peer != self && m.Roles&cell.RoleStore != 0 {
			ms = append(ms, m.Peer)
		}
	}
	slices.SortStableFunc(ms, func(a, b peer.ID) int { return rank(a) - rank(b) }) // Members are sorted by peer ID
	return ms
}

// answered records that p answered.
func (s *Service) answered(p peer.ID) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.member != p {
		s.log.Info("store reads go to a store member", "member", p)
	}
	s.member = p
	delete(s.down, p)
}

// failed records that p could not be reached.
func (s *Service) failed(p peer.ID, err error) {
	s.log.Debug("store member did not answer", "member", p, "err", err)
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.member == p {
		s.member = ""
	}
	if len(s.down) < maxDown {
		s.down[p] = s.cfg.Now()
	}
}

// maxDown bounds the members remembered as down (a roster is bounded too;
// this keeps the map bounded whatever rosters come).
const maxDown = 256

// answering returns the store member that answers this node's reads: the
// one that answered last, or the first this node would try.
func (s *Service) answering() peer.ID {
	s.rmu.Lock()
	m := s.member
	s.rmu.Unlock()
	if m != "" {
		return m
	}
	if ms := s.storeMembers(); len(ms) > 0 {
		return ms[0]
	}
	return ""
}

// remoteWatch sets up q's watch on a store member, and keeps it: when the
// member goes away, it sets it up again on another (waiting while none
// answers) and sends the consumer the difference between the page it had
// and the new member's first page, as changes.
func (s *Service) remoteWatch(ctx context.Context, q store.Query) (<-chan store.WatchEvent, error) {
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	in, err := s.watchOn(wctx, q)
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	out := make(chan store.WatchEvent)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer stop()
		defer cancel()
		s.relay(wctx, q, in, out)
	}()
	return out, nil
}

// watchOn sets q's watch up on the first store member that answers.
func (s *Service) watchOn(ctx context.Context, q store.Query) (<-chan store.WatchEvent, error) {
	var ch <-chan store.WatchEvent
	err := s.remote(ctx, func(ctx context.Context, p peer.ID) (err error) {
		ch, err = s.client.Watch(ctx, p, q)
		return err
	})
	return ch, err
}

// relay passes a remote watch's events to out, keeping the page the
// consumer holds, until ctx ends or a watch cannot be set up again.
func (s *Service) relay(ctx context.Context, q store.Query, in <-chan store.WatchEvent, out chan<- store.WatchEvent) {
	var held *heldPage // nil until the first page went out
	wait := rewatchFirst
	for {
		for ev := range in {
			normalizeEvent(&ev)
			var send store.WatchEvent
			switch {
			case ev.Page != nil && held == nil:
				held = newHeldPage(ev.Page)
				send = ev
			case ev.Page != nil: // a new member's first page
				send.Changes = held.replace(ev.Page)
			default:
				held.apply(ev.Changes)
				send = ev
			}
			if send.Page == nil && len(send.Changes) == 0 {
				continue
			}
			select {
			case out <- send:
			case <-ctx.Done():
				return
			}
		}
		for {
			if ctx.Err() != nil {
				return
			}
			// A node that left its cell (or was removed from it) has
			// no store member to watch on: the watch ends, as a local
			// one does when the index closes.
			if _, _, err := s.roster(); err != nil {
				s.log.Info("store watch ended", "err", err)
				return
			}
			var err error
			if in, err = s.watchOn(ctx, q); err == nil {
				wait = rewatchFirst
				break
			}
			if !errors.Is(err, ErrNoStoreMember) {
				s.log.Info("store watch ended", "err", err)
				return
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(2*wait, rewatchMax)
		}
		s.log.Info("store watch set up again on another member")
	}
}

// heldPage is the page a watch's consumer holds: the hits it was sent,
// by entity, as JSON (to tell a changed hit from the same).
type heldPage struct {
	hits map[store.EntityID][]byte
}

func newHeldPage(p *store.Page) *heldPage {
	h := &heldPage{hits: make(map[store.EntityID][]byte, len(p.Hits))}
	for _, hit := range p.Hits {
		h.hits[hit.Entity.ID] = hitJSON(hit)
	}
	return h
}

func hitJSON(h store.Hit) []byte {
	b, _ := json.Marshal(h) // a Hit always marshals: its documents are valid JSON
	return b
}

// apply records changes the consumer was sent.
func (h *heldPage) apply(cs []store.Change) {
	for _, c := range cs {
		if c.Kind == store.Removed {
			delete(h.hits, c.Hit.Entity.ID)
			continue
		}
		h.hits[c.Hit.Entity.ID] = hitJSON(c.Hit)
	}
}

// replace makes p the page held and returns the changes from the old one
// to it: added and changed hits in p's order, then removed ones by ID.
func (h *heldPage) replace(p *store.Page) []store.Change {
	var cs []store.Change
	in := make(map[store.EntityID]bool, len(p.Hits))
	for _, hit := range p.Hits {
		in[hit.Entity.ID] = true
		b := hitJSON(hit)
		old, ok := h.hits[hit.Entity.ID]
		switch {
		case !ok:
			cs = append(cs, store.Change{Kind: store.Added, Hit: hit})
		case string(old) != string(b):
			cs = append(cs, store.Change{Kind: store.Changed, Hit: hit})
		}
	}
	var gone []store.EntityID
	for id := range h.hits {
		if !in[id] {
			gone = append(gone, id)
		}
	}
	slices.SortFunc(gone, func(a, b store.EntityID) int { return strings.Compare(string(a[:]), string(b[:])) })
	for _, id := range gone {
		cs = append(cs, store.Change{Kind: store.Removed, Hit: store.Hit{Entity: store.Entity{ID: id}}})
	}
	nh := newHeldPage(p)
	h.hits = nh.hits
	return cs
}

// normalizeEvent normalizes the entities of ev, in copies: the client
// may hold the event's slices still.
func normalizeEvent(ev *store.WatchEvent) {
	if ev.Page != nil {
		pg := *ev.Page
		pg.Hits = slices.Clone(pg.Hits)
		for i := range pg.Hits {
			normalize(&pg.Hits[i].Entity)
		}
		ev.Page = &pg
	}
	ev.Changes = slices.Clone(ev.Changes)
	for i := range ev.Changes {
		normalize(&ev.Changes[i].Hit.Entity)
	}
}
