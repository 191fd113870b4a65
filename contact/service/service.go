package service

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/store"
	storeservice "github.com/exopeer/exopeer/store/service"
)

// Sentinel errors.
var (
	ErrNoContact    = errors.New("contact: no such contact")
	ErrNameTaken    = errors.New("contact: another contact has that name (choose another with --name)")
	ErrSelf         = errors.New("contact: that is this cell's own card")
	ErrNoDeviceList = errors.New("contact: this cell's device list is not signed yet: run `exopeer contact card` once on an admin device (one that holds the cell key); it keeps it up to date from then on")
	ErrTooMany      = errors.New("contact: too many contacts")
	ErrNotListed    = errors.New("contact: this device is not on its cell's signed device list yet, and another cell takes a card by code only from a device on it: invite or accept on a device that is, or once an admin device signed the list again (it does within seconds of seeing the roster)")
	ErrClosed       = errors.New("contact: service closed")
)

// MaxContacts bounds the contacts of a cell a node lists (and so holds in
// memory at once).
const MaxContacts = 10_000

// Cell is what the service needs of the node's cell membership.
// *cell.Service has it.
type Cell interface {
	// Roster returns the current roster, or nil in no cell.
	Roster() *cell.Roster
	// WithCellKey calls sign with the cell key if this node holds it
	// (cell.ErrNotAdmin otherwise).
	WithCellKey(sign func(key ed25519.PrivateKey, r *cell.Roster) error) error
	// Keys returns a copy of the epoch secrets the node holds (every
	// epoch's: the roster's history carries the earlier ones), or nil in
	// no cell.
	Keys() *cell.Keys
}

// Store is what the service needs of the node's store. *store/service.Service
// has it; each method blocks.
type Store interface {
	Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error)
	Put(ctx context.Context, e store.EntityID, traits []store.Trait) (storeservice.Written, error)
	Delete(ctx context.Context, e store.EntityID, traits []store.TraitID) (storeservice.Written, error)
	Query(ctx context.Context, q store.Query) (store.Page, error)
	// TypesVersion is a number that moves whenever a commit touches one
	// of the trait types, and true, when this node's own index answers
	// its reads; false when it cannot tell. It does not block.
	TypesVersion(ctx context.Context, types ...string) (uint64, bool)
}

// Config tunes a Service. Zero fields mean the defaults.
type Config struct {
	// Check is how often an admin device looks whether the roster
	// changed since it last signed the cell's device list. Default 2 s.
	Check time.Duration
	// Now is the clock of the times written and of invites. nil: the
	// real clock.
	Now func() time.Time
	// Rand is the source of invite codes and of the invite exchange's
	// secrets. nil: the system's.
	Rand io.Reader
}

func (c Config) withDefaults() Config {
	if c.Check <= 0 {
		c.Check = 2 * time.Second
	}
	c.Now = ambient.NowOr(c.Now)
	c.Rand = ambient.RandOr(c.Rand)
	return c
}

// Rendezvous is the part of peer discovery invites use: meeting, through
// the DHT, the other nodes that know a nameplate. *discovery.Service has
// it.
type Rendezvous interface {
	Rendezvous(secret []byte)
	StopRendezvous(secret []byte)
}

// Options is what a Service is built from.
type Options struct {
	Host host.Host // the node's host: its peer ID, the invite protocol
	// Rendezvous lets invites meet through the DHT; nil: connected peers
	// only.
	Rendezvous Rendezvous
	Cell       Cell
	Store      Store
	Config     Config
	Logger     *slog.Logger
}

// Service is the contacts part of a node: the cell's contacts as store
// entities (exo.contact) and, on an admin device, the upkeep of the
// cell's own signed device list (exo.devices). Its methods are safe for
// concurrent use.
type Service struct {
	h     host.Host
	rz    Rendezvous
	self  peer.ID
	cell  Cell
	store Store
	cfg   Config
	log   *slog.Logger

	mu      sync.Mutex
	started bool
	closed  bool
	ctx     context.Context // ends with Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// imu guards invites, the open invites by nameplate.
	imu     sync.Mutex
	invites map[uint16]*openInvite

	// pmu serialises the device list's upkeep; mine is the list this
	// node signed and stored, or found stored, last (nil: none yet).
	pmu  sync.Mutex
	mine *contact.DeviceList
	// mineKeys is the keys record of the document this node last read
	// or wrote with its list: what it writes when the list held cannot
	// be read, rather than a record of the current epoch alone.
	mineKeys []publishedKey

	// cache is the cell's contacts, own its device list held, kept while
	// their types' version is the same (cache.go); bounded by
	// MaxContacts, and one list.
	cache kept[*contactSet]
	own   kept[ownList]
}

// New returns a Service that has started nothing.
func New(opts Options) (*Service, error) {
	if opts.Host == nil || opts.Cell == nil || opts.Store == nil {
		return nil, errors.New("contact: Host, Cell and Store are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		h: opts.Host, rz: opts.Rendezvous, self: opts.Host.ID(), cell: opts.Cell, store: opts.Store,
		cfg: opts.Config.withDefaults(), log: log.With("part", "contacts"),
		invites: make(map[uint16]*openInvite),
	}, nil
}

// Start serves the invite protocol and starts the upkeep of the cell's
// device list (which does anything only on an admin device).
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("contact: Start called twice or after Close")
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.wg.Add(1)
	go s.upkeep(s.ctx)
	s.h.SetStreamHandler(ProtocolInvite, s.serveInvite)
	return nil
}

// enter counts a stream handler in, unless the service is closing.
func (s *Service) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.started {
		return false
	}
	s.wg.Add(1)
	return true
}

// Close stops the service and waits for its goroutine. Idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	if started {
		s.h.RemoveStreamHandler(ProtocolInvite)
		s.cancel()
		s.wg.Wait()
		s.imu.Lock()
		for np := range s.invites {
			s.endLocked(np)
		}
		s.imu.Unlock()
	}
	return nil
}

func (s *Service) live() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.started {
		return errors.New("contact: service not started")
	}
	return nil
}

// upkeep signs a new device list, on an admin device, whenever the
// roster moves past the one held, once the cell uses contacts (it holds a
// device list, or a contact). A cell that never did writes nothing. It
// looks every Config.Check, and reads the store only when the roster's
// version changed since its last look (or that look failed).
func (s *Service) upkeep(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Check)
	defer t.Stop()
	var seen uint64   // the roster version of the last look that ended well
	var warned uint64 // the roster version whose failure was logged
	for {
		if r := s.cell.Roster(); r != nil && r.Has(s.self) && r.Version != seen {
			err := s.keepUp(ctx)
			switch {
			case err == nil || errors.Is(err, cell.ErrNotAdmin):
				seen = r.Version
			case ctx.Err() == nil && warned != r.Version:
				warned = r.Version
				s.log.Warn("device list not kept up", "version", r.Version, "err", err)
			}
		}
		s.imu.Lock()
		s.expireLocked(s.cfg.Now())
		s.imu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// keepUp signs a new device list if the cell uses contacts and the one
// held is older than the roster.
func (s *Service) keepUp(ctx context.Context) error {
	if err := s.cell.WithCellKey(func(ed25519.PrivateKey, *cell.Roster) error { return nil }); err != nil {
		return err
	}
	held, err := s.heldList(ctx)
	if err != nil {
		return err
	}
	if held == nil {
		pg, err := s.store.Query(ctx, store.Query{Type: ContactType, Limit: 1, Traits: []string{}})
		if err != nil {
			return wrapStore("look for contacts", err)
		}
		if len(pg.Hits) == 0 {
			return nil
		}
	}
	_, err = s.publish(ctx)
	return err
}

// roster returns the node's roster, or an error saying why it has none.
func (s *Service) roster() (*cell.Roster, error) {
	r := s.cell.Roster()
	if r == nil {
		return nil, cell.ErrNoCell
	}
	if !r.Has(s.self) {
		return nil, fmt.Errorf("removed from cell %s by roster version %d: %w", r.ID(), r.Version, storeservice.ErrNotMember)
	}
	return r, nil
}

// wrapStore gives a store read's error its context.
func wrapStore(what string, err error) error {
	return fmt.Errorf("contact: %s: %w", what, err)
}
