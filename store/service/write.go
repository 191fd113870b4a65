package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/store"
)

// Put writes traits into entity e as one transaction, in one chain entry
// (synced to disk with the writes committed at the same time: see
// commit.go). A zero e makes a new entity (its ID is in Written). A trait
// with an empty ID takes its type as ID; a zero Modified time is now; a
// zero Created time is now, but a trait that is live keeps its Created
// (when this node can read it: from its index, or from a store member;
// offline, now). Put reads the entity's live traits for that, and only
// for that: a caller that sets every Created (or makes a new entity)
// costs no read. Before anything is
// appended, it refuses a document over store.MaxDoc (an error wrapping
// store.ErrTooLarge), a document its schema refuses (a *store.FieldError,
// wrapping store.ErrSchema), and a malformed trait or transaction (no
// traits, a bad ID or type, a repeated trait ID: store.ErrMalformed). It
// blocks until the entry is on disk and, on a store-role node, in the
// index; traits is not retained.
func (s *Service) Put(ctx context.Context, e store.EntityID, traits []store.Trait) (Written, error) {
	if err := s.live(); err != nil {
		return Written{}, err
	}
	if _, _, err := s.roster(); err != nil {
		return Written{}, err
	}
	if len(traits) == 0 {
		return Written{}, fmt.Errorf("store: put: no traits: %w", store.ErrMalformed)
	}
	if len(traits) > store.MaxOps {
		return Written{}, fmt.Errorf("store: put: %d traits, over %d: %w", len(traits), store.MaxOps, store.ErrTooLarge)
	}
	ts := slices.Clone(traits)
	seen := make(map[store.TraitID]bool, len(ts))
	for i := range ts {
		t := &ts[i]
		if len(t.Doc) > store.MaxDoc {
			return Written{}, fmt.Errorf("store: put: trait %d (%s): document of %d bytes, over %d: %w", i, t.Type, len(t.Doc), store.MaxDoc, store.ErrTooLarge)
		}
		// The documents validated are the ones written, whatever the
		// caller does with its slices meanwhile: the index trusts this
		// node's own entries (Arrival.Validated) and does not check them
		// again.
		t.Doc = bytes.Clone(t.Doc)
		if t.ID == "" {
			t.ID = store.TraitID(t.Type)
		}
		if seen[t.ID] {
			return Written{}, fmt.Errorf("store: put: trait id %q twice: %w", t.ID, store.ErrMalformed)
		}
		seen[t.ID] = true
	}
	newEntity := e.IsZero()
	if newEntity {
		id, err := store.NewEntityID(s.cfg.Rand)
		if err != nil {
			return Written{}, err
		}
		e = id
	}
	now := s.cfg.Now().UTC()
	keep := make([]bool, len(ts)) // Created is the live trait's, if any
	tx := store.Transaction{Ops: make([]store.Op, len(ts))}
	for i := range ts {
		t := &ts[i]
		if t.Created.IsZero() {
			t.Created, keep[i] = now, !newEntity
		}
		if t.Modified.IsZero() {
			t.Modified = now
		}
		tx.Ops[i] = store.PutTrait(e, *t)
	}
	if err := tx.Check(); err != nil {
		return Written{}, fmt.Errorf("store: put: %w", err)
	}
	for i := range ts {
		if err := s.reg.Validate(ts[i].Type, ts[i].Doc); err != nil {
			return Written{}, fmt.Errorf("store: put: trait %q: %w", ts[i].ID, err)
		}
	}
	if slices.Contains(keep, true) {
		live := s.liveTraits(ctx, e)
		moved := false
		for i := range tx.Ops {
			if old, ok := live[tx.Ops[i].Trait.ID]; ok && keep[i] && !old.Created.IsZero() {
				tx.Ops[i].Trait.Created, moved = old.Created, true
			}
		}
		if moved { // a time read from a store member, maybe over the network
			if err := tx.Check(); err != nil {
				return Written{}, fmt.Errorf("store: put: a live trait's created time: %w", err)
			}
		}
	}
	return s.append(ctx, e, tx)
}

// Delete deletes traits of entity e as one transaction, or the whole
// entity when traits is nil. It returns store.ErrNotFound, appending
// nothing, when the entity has no live trait, or one of traits is not
// live, as far as this node can read (offline, it appends the delete,
// which is harmless for what does not exist). It blocks until the entry
// is on disk; traits is not retained.
func (s *Service) Delete(ctx context.Context, e store.EntityID, traits []store.TraitID) (Written, error) {
	if err := s.live(); err != nil {
		return Written{}, err
	}
	if _, _, err := s.roster(); err != nil {
		return Written{}, err
	}
	if e.IsZero() {
		return Written{}, fmt.Errorf("store: delete: zero entity id: %w", store.ErrMalformed)
	}
	if traits != nil && len(traits) == 0 {
		return Written{}, fmt.Errorf("store: delete: no traits: %w", store.ErrMalformed)
	}
	if len(traits) > store.MaxOps {
		return Written{}, fmt.Errorf("store: delete: %d traits, over %d: %w", len(traits), store.MaxOps, store.ErrTooLarge)
	}
	var tx store.Transaction
	if traits == nil {
		tx.Ops = []store.Op{store.DeleteEntity(e)}
	} else {
		seen := make(map[store.TraitID]bool, len(traits))
		for _, t := range traits {
			if seen[t] {
				return Written{}, fmt.Errorf("store: delete: trait id %q twice: %w", t, store.ErrMalformed)
			}
			seen[t] = true
			tx.Ops = append(tx.Ops, store.DeleteTrait(e, t))
		}
	}
	if err := tx.Check(); err != nil {
		return Written{}, fmt.Errorf("store: delete: %w", err)
	}
	ent, err := s.Get(noDial(ctx), e, nil)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Written{}, fmt.Errorf("store: delete %s: %w", e, store.ErrNotFound)
	case err == nil:
		for _, t := range traits {
			if !slices.ContainsFunc(ent.Traits, func(l store.Trait) bool { return l.ID == t }) {
				return Written{}, fmt.Errorf("store: delete %s: trait %q: %w", e, t, store.ErrNotFound)
			}
		}
	default:
		s.log.Debug("delete without reading the entity", "entity", e, "err", err)
	}
	return s.append(ctx, e, tx)
}

// liveTraits returns the live traits of e by ID, as far as this node can
// read them now; nil when it cannot.
func (s *Service) liveTraits(ctx context.Context, e store.EntityID) map[store.TraitID]store.Trait {
	ent, err := s.Get(noDial(ctx), e, nil)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Debug("put without reading the live traits", "entity", e, "err", err)
		}
		return nil
	}
	m := make(map[store.TraitID]store.Trait, len(ent.Traits))
	for _, t := range ent.Traits {
		m[t.ID] = t
	}
	return m
}

// append encodes tx, which the caller has checked (Transaction.Check),
// and appends it to the chain, with the writes that are committed
// alongside it (commit.go).
func (s *Service) append(ctx context.Context, e store.EntityID, tx store.Transaction) (Written, error) {
	p, err := store.EncodeChecked(tx)
	if err != nil {
		return Written{}, err
	}
	return s.commit(ctx, e, p)
}

// settle brings a store node's index up to its chain, so that a write is
// in the index when it returns (a node reads its own writes). A failure
// is logged: the write is on the chain, and the follower goes on.
func (s *Service) settle(ctx context.Context) {
	ix, err := s.route(ctx)
	if err == nil && ix != nil {
		_, err = s.catchUp(ctx, ix)
	}
	if err != nil {
		s.log.Warn("store index not caught up after a write", "err", err)
	}
}

// noDial keeps a write's read from dialling: a node without the store
// role asks only the store members it is connected to, so that a write
// offline does not wait for dials that cannot succeed.
func noDial(ctx context.Context) context.Context {
	return network.WithNoDial(ctx, "store: a write reads only from connected members")
}
