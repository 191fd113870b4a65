package service

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"

	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/store"
)

// A device that no contact's current device list names any more (its
// cell removed it, or the contact was removed) has its sessions dropped
// (doc.go, # Removed devices).
const (
	// SweepEvery is how often the sweeper looks again at every contact's
	// list, besides the store's changes of exo.contact it watches.
	SweepEvery = time.Minute
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

// runSweeper sweeps at start, when the store's exo.contact entities
// change (a watch of the contact written last: a new device list, from
// this device or, through the chain, another, makes its contact the
// last written), when a message brought a newer list (listsChanged),
// and every SweepEvery (a contact removed on another device, if it was
// not the last written, changes no watched page). Close waits for it.
func (s *Service) runSweeper() {
	defer s.wg.Done()
	ctx := s.ctx
	var events <-chan store.WatchEvent
	retry := true // a watch is (re)made at start and at each tick
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if events == nil && retry {
			retry = false
			if _, err := s.cellKey(); err == nil {
				q := store.Query{Type: contactservice.ContactType, Order: store.OrderModified, Limit: 1}
				if events, err = s.store.Watch(ctx, q); err != nil {
					s.log.Debug("contacts not watched", "err", err)
					events = nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			timer.Reset(SweepEvery)
			retry = true
		case <-s.lists:
		case _, ok := <-events:
			if !ok {
				events = nil
			}
		}
		if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sessions of removed devices not swept", "err", err)
		}
	}
}

// sweep drops the sessions of every device no contact's current list
// names: those in the cache, and those on disk. It reads the contacts
// first and drops nothing if it cannot. A sweep whose contacts name the
// same devices as the last complete one does nothing: since then,
// sessions were made and stored only with named devices
// (acquireNamed). Only the sweeper calls it.
func (s *Service) sweep(ctx context.Context) error {
	cs, err := s.cons.List(ctx)
	if err != nil {
		return err
	}
	named := make(map[peer.ID]struct{})
	for _, c := range cs {
		if c.Devices == nil {
			continue
		}
		for _, d := range c.Devices.Devices {
			named[d] = struct{}{}
		}
	}
	if s.swept != nil && maps.Equal(named, s.swept) {
		return nil
	}
	for _, id := range s.cache.ids() {
		if _, ok := named[id]; !ok {
			if err := s.dropDevice(ctx, id); err != nil {
				return err
			}
		}
	}
	for {
		gone, more, err := s.staleRecords(ctx, named)
		if err != nil {
			return err
		}
		for _, id := range gone {
			if err := s.dropDevice(ctx, id); err != nil {
				return err
			}
		}
		if !more {
			break
		}
	}
	s.swept = named
	return nil
}

// staleRecords returns up to maxSweepBatch devices with a record on disk
// that named does not hold, and whether there may be more.
func (s *Service) staleRecords(ctx context.Context, named map[peer.ID]struct{}) ([]peer.ID, bool, error) {
	res, err := s.ds.Query(ctx, query.Query{Prefix: sessionsPrefix.String(), KeysOnly: true})
	if err != nil {
		return nil, false, fmt.Errorf("message: list sessions: %w", err)
	}
	defer res.Close()
	var gone []peer.ID
	for r := range res.Next() {
		if r.Error != nil {
			return nil, false, fmt.Errorf("message: list sessions: %w", r.Error)
		}
		name := strings.TrimPrefix(r.Key, sessionsPrefix.String()+"/")
		id, err := peer.Decode(name)
		if err != nil {
			// Not a key this service writes: left alone.
			continue
		}
		if _, ok := named[id]; ok {
			continue
		}
		if len(gone) == maxSweepBatch {
			return gone, true, nil
		}
		gone = append(gone, id)
	}
	return gone, false, nil
}

// dropDevice drops every session held with id: its entry leaves the
// cache, marked gone (a call holding it fails at its next step or
// write: nothing more is sealed for the device or opened from it), its
// record is deleted, its outbound streams are closed (their waiting
// deliveries fail) and its inbound streams stop reading (the frames read
// are refused).
func (s *Service) dropDevice(ctx context.Context, id peer.ID) error {
	e := s.cache.remove(id)
	if e == nil {
		if err := s.ds.Delete(ctx, sessionKey(id)); err != nil {
			return fmt.Errorf("message: drop sessions of %s: %w", id, err)
		}
		s.log.Info("sessions of a removed device dropped", "peer", id)
		return nil
	}
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
	e.pool.closeAll()
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
