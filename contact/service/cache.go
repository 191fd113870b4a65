package service

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/store"
)

// kept is a value read from the store, kept while the version of its
// trait types (Store.TypesVersion) stays the same: it is read again
// once a commit touched one of them, and every time on a node that
// cannot tell (TypesVersion false: reads go to a store member). The
// value is replaced whole, never changed in place, so a caller may keep
// what it was given. drop forgets it (the service's own writes, before
// they return).
type kept[T any] struct {
	bmu sync.Mutex // one read at a time replaces the value
	cmu sync.Mutex // guards gen
	gen uint64     // moved by drop: a read begun before it is not kept
	cur atomic.Pointer[keptAt[T]]
}

// keptAt is a value and the version read just before it.
type keptAt[T any] struct {
	v   uint64
	val T
}

// get returns the value kept if version is still its own, else what read
// returns (kept when version could tell). It blocks while another call
// reads it.
func (k *kept[T]) get(ctx context.Context, version func() (uint64, bool), read func(context.Context) (T, error)) (T, error) {
	v, ok := version()
	if !ok {
		return read(ctx)
	}
	if c := k.cur.Load(); c != nil && c.v == v {
		return c.val, nil
	}
	k.bmu.Lock()
	defer k.bmu.Unlock()
	k.cmu.Lock()
	gen := k.gen
	k.cmu.Unlock()
	// Read again under bmu: another call may have read it meanwhile,
	// and the version must be read before the value.
	if v, ok = version(); !ok {
		return read(ctx)
	}
	if c := k.cur.Load(); c != nil && c.v == v {
		return c.val, nil
	}
	val, err := read(ctx)
	if err != nil {
		return val, err
	}
	k.cmu.Lock()
	if k.gen == gen {
		k.cur.Store(&keptAt[T]{v: v, val: val})
	}
	k.cmu.Unlock()
	return val, nil
}

// drop forgets the value: the next get reads it again.
func (k *kept[T]) drop() {
	k.cmu.Lock()
	k.gen++
	k.cur.Store(nil)
	k.cmu.Unlock()
}

// contactSet is the cell's contacts as one read found them, decoded and
// their device lists verified, by name and by device. At most
// MaxContacts (a read of more fails). Never changed once made.
type contactSet struct {
	list   []Contact // by name
	byName map[string]int
	byDev  map[peer.ID][]int // the contacts whose device list names it
}

// contacts returns the cell's contacts, from memory while no commit
// touched a contact since they were read.
func (s *Service) contacts(ctx context.Context) (*contactSet, error) {
	return s.cache.get(ctx, func() (uint64, bool) {
		return s.store.TypesVersion(ctx, ContactType, DeviceListType)
	}, s.readContacts)
}

// readContacts reads every contact of the cell from the store.
func (s *Service) readContacts(ctx context.Context) (*contactSet, error) {
	cs := &contactSet{byName: map[string]int{}, byDev: map[peer.ID][]int{}}
	q := store.Query{Type: ContactType, Order: "name", Limit: store.MaxLimit, Traits: []string{ContactType, DeviceListType}}
	for {
		pg, err := s.store.Query(ctx, q)
		if err != nil {
			return nil, wrapStore("list contacts", err)
		}
		for _, h := range pg.Hits {
			c, ok := decodeContact(h.Entity)
			if !ok {
				s.log.Warn("stored contact skipped", "entity", h.Entity.ID)
				continue
			}
			i := len(cs.list)
			cs.list = append(cs.list, c)
			cs.byName[c.Name] = i
			for _, d := range c.Devices.Devices {
				cs.byDev[d] = append(cs.byDev[d], i)
			}
		}
		if len(cs.list) > MaxContacts {
			return nil, fmt.Errorf("contact: the cell has more than %d contacts: %w", MaxContacts, ErrTooMany)
		}
		if pg.Next == "" {
			return cs, nil
		}
		q.After = pg.Next
	}
}

// ByDevice returns the contacts whose current device list names device
// id (any cell may sign a list naming any peer ID, so there may be more
// than one), none (nil) when no contact's does. A device a contact's
// newer list dropped is no longer named as soon as that list is in this
// node's index. The contacts' DeviceLists are shared: do not modify
// them.
func (s *Service) ByDevice(ctx context.Context, id peer.ID) ([]Contact, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	if _, err := s.roster(); err != nil {
		return nil, err
	}
	cs, err := s.contacts(ctx)
	if err != nil {
		return nil, err
	}
	var out []Contact
	for _, i := range cs.byDev[id] {
		out = append(out, cs.list[i])
	}
	return out, nil
}

// copyList returns a copy of the contacts, by name (nil when none).
func (cs *contactSet) copyList() []Contact {
	if len(cs.list) == 0 {
		return nil
	}
	return slices.Clone(cs.list)
}

// ownList is the cell's own device list as read from the store (nil:
// none held), the mailbox keys its document says were published, and the
// cell it was read for.
type ownList struct {
	cell ed25519.PublicKey
	l    *contact.DeviceList
	keys []publishedKey
}
