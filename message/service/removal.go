package service

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	contactservice "github.com/exopeer/exopeer/contact/service"
)

// A device that no contact's current device list names any more (its
// cell removed it, or the contact was removed) has its sessions dropped
// (doc.go, # Removed devices).
const (
	// SweepEvery is how often the sweeper looks again at every contact's
	// list, besides the store's changes of exo.contact it watches.
	SweepEvery = time.Minute
	// SweepRetry is how soon the sweeper looks again after a sweep it
	// postponed (the store's index not caught up with the chain, or its
	// state unknown), and how long a drop it could not be sure of waits
	// for a second read of the contacts to agree (sweep.go).
	SweepRetry = 5 * time.Second
	// maxSweepBatch bounds the devices one round of a sweep drops (and
	// holds in memory); a sweep goes on round after round.
	maxSweepBatch = 1024
)

// errRemoved is a device whose sessions are dropped: no contact's
// current list names it.
var errRemoved = fmt.Errorf("%w: its sessions are dropped", errNotContact)

// acquireNamed returns dev's entry in use (as sessionCache.acquire) if
// a contact's current list names dev, else errRemoved. The check comes
// after the acquire: a sweep that drops dev after it finds the entry in
// the cache and marks it gone, so that this call's step fails; one
// before it changed the store first, and the check sees it.
func (s *Service) acquireNamed(ctx context.Context, dev peer.ID) (*peerEntry, []contactservice.Contact, error) {
	e := s.cache.acquire(dev)
	cs, err := s.cons.ByDevice(ctx, dev)
	switch {
	case err != nil:
		s.cache.release(e)
		return nil, nil, err
	case len(cs) == 0:
		s.cache.release(e)
		s.cache.forget(dev)
		return nil, nil, errRemoved
	}
	return e, cs, nil
}

// listsChanged asks the sweeper for a sweep (a device list was taken
// from a message); it does not block.
func (s *Service) listsChanged() {
	select {
	case s.lists <- struct{}{}:
	default:
	}
}

// dropDevice drops every session held with id: its entry leaves the
// cache, its outbound streams are closed for good (their waiting
// deliveries fail, and none opens or writes on one again: errRemoved),
// the entry is marked gone (a call holding it fails at its next step or
// write: nothing more is sealed for the device or opened from it), its
// record is deleted and its inbound streams stop reading (the frames
// read are refused).
func (s *Service) dropDevice(ctx context.Context, id peer.ID) error {
	e := s.cache.remove(id)
	if e == nil {
		if err := s.ds.Delete(ctx, sessionKey(id)); err != nil {
			return fmt.Errorf("message: drop sessions of %s: %w", id, err)
		}
		s.log.Info("sessions of a removed device dropped", "peer", id)
		return nil
	}
	e.pool.shutAll() // first: no frame goes to the device from now on
	e.wmu.Lock()
	e.mu.Lock()
	e.gone = true
	e.rec = peerRecord{}
	e.mu.Unlock()
	err := s.ds.Delete(ctx, sessionKey(id))
	if err == nil {
		err = s.ds.Sync(ctx, sessionKey(id))
	}
	e.wmu.Unlock()
	e.stopInbound()
	if err != nil {
		return fmt.Errorf("message: drop sessions of %s: %w", id, err)
	}
	s.log.Info("sessions of a removed device dropped", "peer", id)
	return nil
}

// SessionsWith returns how many sessions this device holds with the
// device id, in memory or on disk (diagnostics, and the tests of other
// packages: a device removed from its cell's list has none). It blocks
// on the device's lock.
func (s *Service) SessionsWith(ctx context.Context, id peer.ID) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.wg.Done()
	s.cache.mu.Lock()
	e := s.cache.m[id]
	s.cache.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		loaded, n := e.loaded, len(e.rec.sessions)
		e.mu.Unlock()
		if loaded {
			return n, nil
		}
	}
	r, err := s.loadRecord(ctx, id)
	if err != nil {
		return 0, err
	}
	return len(r.sessions), nil
}
