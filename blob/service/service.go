package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/exopeer/exopeer/blob/pin"
	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/blocks/blobdisk"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/store"
	storesvc "github.com/exopeer/exopeer/store/service"
)

// Sentinel errors.
var (
	// ErrNoFile is a file that is not among the cell's files.
	ErrNoFile = errors.New("blobs: no such file")
	// ErrAmbiguous is a name that more than one file has; the error names
	// them (by entity ID, which File takes too).
	ErrAmbiguous = errors.New("blobs: more than one file has that name")
	// ErrNotMember is an operation on the cell's files by a node in no
	// cell (or removed from its cell).
	ErrNotMember = errors.New("blobs: this node is in no cell; create one with `exopeer cell create NAME` or join one with `exopeer cell join CODE`")
	// ErrTooManyFiles is a cell with more than MaxFiles files.
	ErrTooManyFiles = errors.New("blobs: too many files")
	// ErrClosed is an operation after Close (or before Start).
	ErrClosed = errors.New("blobs: service not running")
)

// Cell is what the service needs of the node's cell membership.
// *cell.Service has it.
type Cell interface {
	// Roster returns the current roster, or nil in no cell.
	Roster() *cell.Roster
	// BlobSecret returns the secret blob keys are derived from in the
	// current epoch.
	BlobSecret() (epoch uint64, secret []byte, err error)
}

// Entities is what the service needs of the node's store.
// *storesvc.Service (package store/service) has it.
type Entities interface {
	Put(ctx context.Context, e store.EntityID, traits []store.Trait) (storesvc.Written, error)
	Delete(ctx context.Context, e store.EntityID, traits []store.TraitID) (storesvc.Written, error)
	Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error)
	Query(ctx context.Context, q store.Query) (store.Page, error)
	Watch(ctx context.Context, q store.Query) (<-chan store.WatchEvent, error)
}

// Options is what a Service is built from. Every field but Logger is
// required.
type Options struct {
	Host      host.Host
	Exchange  *blocks.Exchange
	Blocks    *blocks.Store
	Pins      *pin.Pins
	Datastore ds.Batching // the node's: the service keeps its records under /blobservice
	Cell      Cell
	Store     Entities
	// Contacts, if set, lets the service serve the blobs the cell shares
	// with contacts to their devices, and fetch those shared with the
	// cell from the sharing contact's devices (share.go).
	Contacts Contacts
	// Finder, if set, finds a sharing contact's device this host knows
	// no address of.
	Finder Finder
	Config Config
	Logger *slog.Logger
}

// Service is the node's part "blobs": blobs and the cell's files. Its
// methods are safe for concurrent use once Start has returned.
type Service struct {
	h      host.Host
	xchg   *blocks.Exchange
	bs     *blocks.Store
	pins   *pin.Pins
	d      ds.Batching
	cell   Cell
	ents   Entities
	cons   Contacts // nil: no contact shares
	finder Finder
	cfg    Config
	log    *slog.Logger
	unreg  func() // removes the owner and asker from the exchange's gate

	mu      sync.Mutex
	started bool
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	kick    chan struct{} // cap 1: the follower is asked for a pass
	gcKick  chan struct{} // cap 1: the disk budget is to be checked
	// gcFloor is the blob bytes an automatic collection left over the
	// disk budget (what is pinned is more than it): the next one waits
	// until more is stored, or something is unpinned (unpins counts
	// those, so that one during a collection voids its floor). 0: none.
	floorMu sync.Mutex
	gcFloor int64
	unpins  uint64

	// recheck: the blob store scrubbed an unclean stop; the follower's
	// next pass checks the files it held whole. incomplete counts those
	// it found not whole.
	recheck    atomic.Bool
	incomplete atomic.Int64

	acl   access    // who may read which blob blocks
	fetch fetching  // the background fetches
	sizes trueSizes // files' sizes read from their held roots (sizes.go)
}

// New checks opts and returns a Service that has started nothing.
func New(opts Options) (*Service, error) {
	if opts.Host == nil || opts.Exchange == nil || opts.Blocks == nil || opts.Pins == nil ||
		opts.Datastore == nil || opts.Cell == nil || opts.Store == nil {
		return nil, errors.New("blobs: Host, Exchange, Blocks, Pins, Datastore, Cell and Store are required")
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		h: opts.Host, xchg: opts.Exchange, bs: opts.Blocks, pins: opts.Pins,
		d:    namespace.Wrap(opts.Datastore, ds.NewKey("/blobservice")),
		cell: opts.Cell, ents: opts.Store, cfg: opts.Config.withDefaults(),
		log:  log.With("part", "blobs"),
		kick: make(chan struct{}, 1), gcKick: make(chan struct{}, 1),
		cons: opts.Contacts, finder: opts.Finder,
	}
	s.acl.init()
	s.fetch.init()
	return s, nil
}

// Start loads who may read what (public blobs, shares), removes the
// uploads a crash left in its spool, registers the
// service on the exchange's gate, and starts the policy follower and the
// background fetches. ctx bounds the start.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("blobs: Start called twice or after Close")
	}
	if err := s.loadAccess(ctx); err != nil {
		return err
	}
	s.cleanSpool()
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	unOwn, unAsk := s.xchg.Gate().Register(s), s.xchg.Gate().RegisterAsker(s)
	s.unreg = func() { unOwn(); unAsk() }
	s.wg.Add(3)
	go s.follow(s.ctx)
	go s.fetchLoop(s.ctx)
	go s.followShares(s.ctx)
	return nil
}

// Close stops the follower and the fetches, imports and exports under way,
// waits for them, and takes the service off the gate. Idempotent.
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
		s.cancel()
		s.wg.Wait()
		s.unreg()
	}
	return nil
}

// live returns the service's context, or ErrClosed.
func (s *Service) live() (context.Context, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.started {
		return nil, ErrClosed
	}
	return s.ctx, nil
}

// bound returns ctx, also ended when the service closes, for an
// operation that Close waits for: until the returned cancel is called.
func (s *Service) bound(ctx context.Context) (context.Context, context.CancelFunc, error) {
	s.mu.Lock()
	if s.closed || !s.started {
		s.mu.Unlock()
		return nil, nil, ErrClosed
	}
	sctx := s.ctx
	s.wg.Add(1)
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(sctx, cancel)
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			stop()
			cancel()
			s.wg.Done()
		})
	}, nil
}

// member returns the node's roster, or ErrNotMember.
func (s *Service) member() (*cell.Roster, error) {
	ro := s.cell.Roster()
	if ro == nil {
		return nil, ErrNotMember
	}
	if !ro.Has(s.h.ID()) {
		return nil, fmt.Errorf("removed from cell %s by roster version %d: %w", ro.ID(), ro.Version, ErrNotMember)
	}
	return ro, nil
}

// Config returns the service's configuration, defaults filled in.
func (s *Service) Config() Config { return s.cfg }

// Status is what the service holds.
type Status struct {
	// Policy is the device's pin policy; Budget its pin budget (bytes,
	// under PolicyBudget) and DiskBudget the bytes past which it collects
	// garbage by itself (0: never).
	Policy             string
	Budget, DiskBudget int64
	// Usage is the blob blocks held.
	Usage blocks.Usage
	// Pinned is the number of pinned roots.
	Pinned int
	// Files is the number of the cell's files (0 in no cell).
	Files int
	// Fetching is the number of roots waiting for or under a background
	// fetch.
	Fetching int
	// Scrub is what the blob store's scrub found after an unclean stop
	// (blocks damaged and deleted), and Incomplete the files held whole
	// before it that the follower then found missing blocks, and fetches
	// again (they stay in Fetching while no peer has the blocks; a file's
	// Held tells how much of it is here).
	Scrub      blobdisk.ScrubStats
	Incomplete int64
}

// Status reports what the service holds. It blocks on the datastore and,
// in a cell, on listing the files.
func (s *Service) Status(ctx context.Context) (Status, error) {
	if _, err := s.live(); err != nil {
		return Status{}, err
	}
	u, err := s.bs.Usage(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("blobs: usage: %w", err)
	}
	ps, err := s.pins.List(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("blobs: pins: %w", err)
	}
	st := Status{Policy: s.cfg.Policy, DiskBudget: s.cfg.DiskBudget, Usage: u, Pinned: len(ps), Fetching: s.fetch.count(), Incomplete: s.incomplete.Load()}
	st.Scrub, _ = s.bs.Scrub()
	if s.cfg.Policy == PolicyBudget {
		st.Budget = s.cfg.PinBudget
	}
	if _, err := s.member(); err == nil {
		fs, err := s.listFiles(ctx)
		if err != nil {
			return Status{}, err
		}
		st.Files = len(fs)
	}
	return st, nil
}

// pinnedRoots returns the pinned roots, by key string.
func (s *Service) pinnedRoots(ctx context.Context) (map[cid.Cid][]string, error) {
	ps, err := s.pins.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("blobs: pins: %w", err)
	}
	out := make(map[cid.Cid][]string, len(ps))
	for _, p := range ps {
		out[p.Root] = p.Reasons
	}
	return out, nil
}
