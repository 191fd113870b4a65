package service

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/index"
)

// Get returns entity id's live traits (of the types in traits, as
// Query.Traits: nil for all). It answers store.ErrNotFound for an entity
// with no live trait. A store-role node reads its own index; another asks
// a store member (ErrNoStoreMember when none answers). It blocks.
func (s *Service) Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error) {
	ix, err := s.route(ctx)
	if err != nil {
		return store.Entity{}, err
	}
	if ix != nil {
		return ix.Get(ctx, id, traits)
	}
	var e store.Entity
	err = s.remote(ctx, func(ctx context.Context, p peer.ID) (err error) {
		e, err = s.client.Get(ctx, p, id, traits)
		return err
	})
	normalize(&e)
	return e, err
}

// Trait returns entity e's live trait id, or store.ErrNotFound when it
// has none: Get of one trait. A store-role node reads it with one point
// read of its index (index.Index.Trait: after a write, a fraction of a
// Get, so it suits a check made before each write, such as a message's
// duplicate check); another asks a store member for the entity (Get).
// It blocks.
func (s *Service) Trait(ctx context.Context, e store.EntityID, id store.TraitID) (store.Trait, error) {
	ix, err := s.route(ctx)
	if err != nil {
		return store.Trait{}, err
	}
	if ix != nil {
		return ix.Trait(ctx, e, id)
	}
	var ent store.Entity
	err = s.remote(ctx, func(ctx context.Context, p peer.ID) (err error) {
		ent, err = s.client.Get(ctx, p, e, nil)
		return err
	})
	if err != nil {
		return store.Trait{}, err
	}
	for _, t := range ent.Traits {
		if t.ID == id {
			return t, nil
		}
	}
	return store.Trait{}, fmt.Errorf("store: trait %s/%s: %w", e, id, store.ErrNotFound)
}

// Query runs q. Its errors wrap store.ErrQuery, naming the part of q at
// fault, or say why no index could answer (ErrNoStoreMember). It blocks.
func (s *Service) Query(ctx context.Context, q store.Query) (store.Page, error) {
	ix, err := s.route(ctx)
	if err != nil {
		return store.Page{}, err
	}
	if ix != nil {
		return ix.Query(ctx, q)
	}
	var pg store.Page
	err = s.remote(ctx, func(ctx context.Context, p peer.ID) (err error) {
		pg, err = s.client.Query(ctx, p, q)
		return err
	})
	for i := range pg.Hits {
		normalize(&pg.Hits[i].Entity)
	}
	return pg, err
}

// Watch runs q as a watched query: the channel gets q's first page, then
// its changes (see store.WatchEvent), until ctx ends (or the node leaves
// its cell, or the service closes): then it is closed. On a node without
// the store role, a watch whose store member goes away is set up again on
// another, and the consumer gets the difference as changes. It blocks
// until the watch is set up.
func (s *Service) Watch(ctx context.Context, q store.Query) (<-chan store.WatchEvent, error) {
	ix, err := s.route(ctx)
	if err != nil {
		return nil, err
	}
	if ix != nil {
		return s.localWatch(ctx, ix, q)
	}
	return s.remoteWatch(ctx, q)
}

// localWatch is ix's watch, ended also when the service closes.
func (s *Service) localWatch(ctx context.Context, ix *index.Index, q store.Query) (<-chan store.WatchEvent, error) {
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	ch, err := ix.Watch(wctx, q)
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	context.AfterFunc(wctx, func() { stop() })
	return ch, nil
}

// Reindex empties the index and applies the whole chain again. Only a
// node with the store role has an index (else ErrNotStore). It blocks
// until the index has caught up with the chain.
func (s *Service) Reindex(ctx context.Context) (Reindexed, error) {
	if err := s.live(); err != nil {
		return Reindexed{}, err
	}
	_, me, err := s.roster()
	if err != nil {
		return Reindexed{}, err
	}
	if !s.isStore(me) {
		return Reindexed{}, ErrNotStore
	}
	ix, err := s.index(ctx, true)
	if err != nil {
		return Reindexed{}, err
	}
	if ix == nil {
		return Reindexed{}, ErrNotStore
	}
	began := s.cfg.Now()
	// One hold of amu for both: between them the follower would apply
	// what the reindex then finds done, and Reindexed would count it not.
	s.amu.Lock()
	s.caught = caughtUp{} // whatever Reset leaves, the checkpoint is read again
	err = ix.Reset(ctx)
	var n uint64
	if err == nil {
		s.log.Info("store reindex asked: index emptied, applying the chain again")
		n, err = s.catchUpLocked(ctx, ix)
	}
	s.amu.Unlock()
	if err != nil {
		return Reindexed{}, fmt.Errorf("store: reindex: %w", err)
	}
	st, err := ix.Stats(ctx)
	if err != nil {
		return Reindexed{}, fmt.Errorf("store: reindex: %w", err)
	}
	r := Reindexed{Entries: n, Entities: st.Entities, Took: s.cfg.Now().Sub(began)}
	s.log.Info("store reindexed", "entries", r.Entries, "entities", r.Entities, "took", r.Took.Round(time.Millisecond))
	return r, nil
}

// Status says what the service sees: its role, and the index's counts
// (for a remote node, which store member answers).
func (s *Service) Status(ctx context.Context) (Status, error) {
	if err := s.live(); err != nil {
		return Status{}, err
	}
	_, me, err := s.roster()
	if err != nil {
		return Status{}, err
	}
	if !s.isStore(me) {
		st := Status{Role: RoleRemote, Skipped: map[string]int64{}}
		if m := s.answering(); m != "" {
			st.Member = m.String()
		}
		return st, nil
	}
	ix, err := s.index(ctx, true)
	if err != nil {
		return Status{}, err
	}
	if ix == nil { // the roster changed meanwhile
		return Status{Role: RoleRemote, Skipped: map[string]int64{}}, nil
	}
	is, err := ix.Stats(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("store: status: %w", err)
	}
	cs, err := s.chain.Status(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("store: status: %w", err)
	}
	st := Status{Role: RoleStore, Next: is.Next, Entities: is.Entities, Traits: is.Traits, Skipped: is.Skipped, Bytes: is.Bytes}
	if n := uint64(cs.Length); n > is.Next {
		st.Behind = n - is.Next
	}
	return st, nil
}

// route returns the index that answers this node's reads: its own
// (opened if need be), or nil when reads go to a store member.
func (s *Service) route(ctx context.Context) (*index.Index, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	_, me, err := s.roster()
	if err != nil {
		return nil, err
	}
	if !s.isStore(me) {
		return nil, nil
	}
	ix, err := s.index(ctx, true)
	if err != nil {
		return nil, err
	}
	if ix != nil {
		s.kickFollower() // a freshly opened index catches up
	}
	return ix, nil
}

// normalize gives an entity from a store member the form the local index
// gives: no traits is nil, as the wire may not tell nil from empty.
func normalize(e *store.Entity) {
	if len(e.Traits) == 0 {
		e.Traits = nil
	}
}
