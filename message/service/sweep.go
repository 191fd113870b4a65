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
	storeservice "github.com/exopeer/exopeer/store/service"
)

// storeStatus is what the sweeper reads of the store, if the store has
// it (*store/service.Service does): whether the index that answers the
// reads has caught up with the chain. A store without it is taken as
// always caught up.
type storeStatus interface {
	Status(ctx context.Context) (storeservice.Status, error)
}

// sweepState is the sweeper's own (only its goroutine touches it).
type sweepState struct {
	// named is the devices the contacts named at the last complete
	// sweep, and versions each contact's list version then, by its
	// cell's key; named is nil before the first.
	named    map[peer.ID]struct{}
	versions map[string]uint64
	// tentative is the devices named at a sweep that found devices to
	// drop it could not be sure of (see sweep); nil when none waits.
	// ripe: the retry timer fired since tentative was set, so a sweep
	// now reads the contacts at least SweepRetry after that one did.
	tentative map[peer.ID]struct{}
	ripe      bool
}

// sweepOutcome tells the sweeper's loop when to sweep again.
type sweepOutcome int

const (
	// sweepDone: on the next change, tick or list taken.
	sweepDone sweepOutcome = iota
	// sweepPostponed: also within SweepRetry (the retry timer armed if
	// it is not).
	sweepPostponed
	// sweepWaiting: a drop waits for a second read SweepRetry from now
	// (the retry timer armed again from now).
	sweepWaiting
)

// runSweeper sweeps at start, when the store's exo.contact entities
// change (a watch of the contact written last: a new device list, from
// this device or, through the chain, another, makes its contact the
// last written), when a message brought a newer list (listsChanged),
// every SweepEvery (a contact removed on another device, if it was not
// the last written, changes no watched page), and SweepRetry after a
// sweep postponed or waiting for a second read. Close waits for it.
func (s *Service) runSweeper() {
	defer s.wg.Done()
	ctx := s.ctx
	var events <-chan store.WatchEvent
	rewatch := true // a watch is (re)made at start and at each tick
	tick := time.NewTimer(0)
	defer tick.Stop()
	retry := time.NewTimer(SweepRetry)
	retry.Stop()
	defer retry.Stop()
	armed := false
	for {
		if events == nil && rewatch {
			rewatch = false
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
		case <-tick.C:
			tick.Reset(SweepEvery)
			rewatch = true
		case <-retry.C:
			armed = false
			s.sw.ripe = s.sw.tentative != nil
		case <-s.lists:
		case _, ok := <-events:
			if !ok {
				events = nil
			}
		}
		out, err := s.sweep(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("sessions of removed devices not swept", "err", err)
		}
		switch {
		case out == sweepWaiting, out == sweepPostponed && !armed:
			retry.Reset(SweepRetry) // a stopped or fired timer: no stale tick
			armed = true
		}
	}
}

// sweep drops the sessions of every device no contact's current list
// names: those in the cache, and those on disk. Only the sweeper calls
// it.
//
// It reads the contacts from an index caught up with the chain only:
// the store's status (storeStatus) is read before and after the
// contacts, and the sweep is postponed, dropping nothing, unless both
// say so (storeCaughtUp). A reindex empties the index before it applies
// the chain again, and the contacts read meanwhile name few devices or
// none. Even so, a reindex begun after the first status read and done
// before the second goes unseen; so a drop is made at once only when it
// is sure: the device was named at the last complete sweep and every
// contact of that sweep is read again with its list at the same version
// or newer (one of them signed a newer list without the device: no
// index behind the chain reads a list newer than it held). Any other
// drop (a contact gone or its list older, a device the last complete
// sweep did not name, the first sweep of the run) waits: it is made
// when a read at least SweepRetry later names the same devices.
//
// A sweep that cannot read the contacts drops nothing. A sweep whose
// contacts name the same devices as the last complete one does nothing:
// since then, sessions were made and stored only with named devices
// (acquireNamed).
func (s *Service) sweep(ctx context.Context) (sweepOutcome, error) {
	if _, err := s.cellKey(); err != nil {
		return sweepDone, nil // no cell: no contacts to read
	}
	before, ok := s.storeCaughtUp(ctx, nil)
	if !ok {
		return sweepPostponed, nil
	}
	cs, err := s.cons.List(ctx)
	if err != nil {
		return sweepDone, err
	}
	if _, ok := s.storeCaughtUp(ctx, &before); !ok {
		return sweepPostponed, nil
	}
	named, versions := namedBy(cs)
	sw := &s.sw
	sure := sw.sure(versions)
	if sw.named != nil && maps.Equal(named, sw.named) {
		if sure {
			sw.versions = versions
		}
		sw.tentative, sw.ripe = nil, false
		return sweepDone, nil
	}
	confirmed := sw.ripe && sw.tentative != nil && maps.Equal(named, sw.tentative)
	waits := false
	stale := func(id peer.ID) bool {
		if _, ok := named[id]; ok {
			return false
		}
		if _, ok := sw.named[id]; confirmed || ok && sure {
			return true
		}
		waits = true
		return false
	}
	for _, id := range s.cache.ids() {
		if stale(id) {
			if err := s.dropDevice(ctx, id); err != nil {
				return sweepDone, err
			}
		}
	}
	for {
		gone, more, err := s.staleRecords(ctx, stale)
		if err != nil {
			return sweepDone, err
		}
		for _, id := range gone {
			if err := s.dropDevice(ctx, id); err != nil {
				return sweepDone, err
			}
		}
		if !more {
			break
		}
	}
	if waits {
		if sw.tentative != nil && maps.Equal(named, sw.tentative) {
			return sweepPostponed, nil // the timer set with it runs
		}
		sw.tentative, sw.ripe = named, false
		s.log.Info("sessions of devices no contact names kept until a second read of the contacts agrees", "after", SweepRetry)
		return sweepWaiting, nil
	}
	sw.named, sw.versions, sw.tentative, sw.ripe = named, versions, nil, false
	return sweepDone, nil
}

// namedBy returns the devices the contacts' lists name, and each list's
// version by its cell's key (the highest, if two contacts have lists of
// one cell).
func namedBy(cs []contactservice.Contact) (map[peer.ID]struct{}, map[string]uint64) {
	named := make(map[peer.ID]struct{})
	versions := make(map[string]uint64)
	for _, c := range cs {
		if c.Devices == nil {
			continue
		}
		k := string(c.Devices.Cell)
		versions[k] = max(versions[k], c.Devices.Version)
		for _, d := range c.Devices.Devices {
			named[d] = struct{}{}
		}
	}
	return named, versions
}

// sure reports whether a read of the contacts whose lists have versions
// is no older than the last complete sweep's: each contact of that
// sweep is there, its list at the same version or newer. False before
// the first complete sweep.
func (sw *sweepState) sure(versions map[string]uint64) bool {
	if sw.named == nil {
		return false
	}
	for k, v := range sw.versions {
		if cur, ok := versions[k]; !ok || cur < v {
			return false
		}
	}
	return true
}

// storeCaughtUp reads the store's status and reports whether the index
// that answers this node's reads has caught up with the chain: no
// arrival behind, and, on a node that keeps the index, at least one
// applied (an index that applied nothing, freshly opened or just
// emptied, over a chain not here yet or read as empty, names no
// contact, though this node held sessions). With before (the status
// read before the contacts), also the same role and no fewer arrivals
// applied than then (fewer: the index was emptied in between). A status
// that cannot be read is not caught up. A store without a status is.
func (s *Service) storeCaughtUp(ctx context.Context, before *storeservice.Status) (storeservice.Status, bool) {
	ss, ok := s.store.(storeStatus)
	if !ok {
		return storeservice.Status{}, true
	}
	st, err := ss.Status(ctx)
	why := ""
	switch {
	case err != nil:
		why = err.Error()
	case st.Behind > 0:
		why = fmt.Sprintf("the index is %d arrivals behind the chain", st.Behind)
	case st.Role == storeservice.RoleStore && st.Next == 0:
		why = "the index has applied nothing"
	case before != nil && st.Role != before.Role:
		why = "the store's role changed"
	case before != nil && st.Next < before.Next:
		why = "the index went back"
	default:
		return st, true
	}
	s.log.Debug("sweep postponed: the store's index may not hold the contacts", "why", why, "retry", SweepRetry)
	return st, false
}

// staleRecords returns up to maxSweepBatch devices with a record on disk
// for which stale is true, and whether there may be more.
func (s *Service) staleRecords(ctx context.Context, stale func(peer.ID) bool) ([]peer.ID, bool, error) {
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
		if !stale(id) {
			continue
		}
		if len(gone) == maxSweepBatch {
			return gone, true, nil
		}
		gone = append(gone, id)
	}
	return gone, false, nil
}
