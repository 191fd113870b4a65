package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/exopeer/exopeer/store"
)

// Get returns entity id's live traits (of the types in traits, as
// Query.Traits: nil for all). It answers store.ErrNotFound for an entity
// with no live trait, ErrNoStoreMember when no index can answer. It
// blocks.
func (s *Service) Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error) {
	if err := s.readable(); err != nil {
		return store.Entity{}, err
	}
	return store.Entity{}, fmt.Errorf("store: get %s: %w", id, ErrNoStoreMember)
}

// Query runs q. Its errors wrap store.ErrQuery, naming the part of q at
// fault, or say why no index could answer (ErrNoStoreMember). It blocks.
func (s *Service) Query(ctx context.Context, q store.Query) (store.Page, error) {
	if err := s.readable(); err != nil {
		return store.Page{}, err
	}
	return store.Page{}, fmt.Errorf("store: query: %w", ErrNoStoreMember)
}

// Watch runs q as a watched query: the channel gets q's first page, then
// its changes (see store.WatchEvent), until ctx ends. It blocks until the
// watch is set up.
func (s *Service) Watch(ctx context.Context, q store.Query) (<-chan store.WatchEvent, error) {
	if err := s.readable(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("store: watch: %w", ErrNoStoreMember)
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
	return Reindexed{}, errors.New("store: reindex: the index is not built into this node yet")
}

// Status says what the service sees: its role, and the index's counts
// (its own, or for a remote node nothing but the member answering).
func (s *Service) Status(ctx context.Context) (Status, error) {
	if err := s.live(); err != nil {
		return Status{}, err
	}
	_, me, err := s.roster()
	if err != nil {
		return Status{}, err
	}
	st := Status{Role: RoleRemote, Skipped: map[string]int64{}}
	if s.isStore(me) {
		st.Role = RoleStore
		cs, err := s.chain.Status(ctx)
		if err != nil {
			return Status{}, fmt.Errorf("store: status: %w", err)
		}
		st.Behind = uint64(cs.Length)
	}
	return st, nil
}

// readable says why the node cannot read, if it cannot.
func (s *Service) readable() error {
	if err := s.live(); err != nil {
		return err
	}
	_, _, err := s.roster()
	return err
}
