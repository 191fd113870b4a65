package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/index"
	"github.com/exopeer/exopeer/store/remote"
)

// Sentinel errors.
var (
	// ErrNotStore is an operation only a node with the store role does
	// (Reindex), asked of one without it.
	ErrNotStore = errors.New("store: this node does not have the store role (it keeps no index)")
	// ErrNoStoreMember is a read that no store member of the cell could
	// answer: none is on the roster, or none is reachable.
	ErrNoStoreMember = errors.New("store: no store member of the cell is reachable")
	// ErrNotMember is an operation of a node in no cell, or removed from
	// its cell.
	ErrNotMember = errors.New("store: this node is in no cell; create one with `exopeer cell create NAME` or join one with `exopeer cell join CODE`")
	// ErrClosed is an operation after Close.
	ErrClosed = errors.New("store: service closed")
)

// Chain is what the service needs of the node's replica of its cell's
// chain. *replica.Replica has it.
type Chain interface {
	// AppendMany writes payloads as the node's next entries, in order, on
	// disk (one synced write) when it returns.
	AppendMany(ctx context.Context, payloads [][]byte) ([]replica.Entry, error)
	// Arrivals returns up to limit entries in this node's arrival order,
	// from index from on.
	Arrivals(ctx context.Context, from uint64, limit int) ([]replica.Entry, error)
	// Tip returns the number of arrivals and the CID of the last, from
	// memory.
	Tip(ctx context.Context) (uint64, cid.Cid, error)
	// Watch signals each growth of the chain; the channel closes with
	// the replica.
	Watch() (<-chan struct{}, func())
	// Status says, among other things, how many entries the chain holds.
	Status(ctx context.Context) (replica.Status, error)
}

// Cell is what the service needs of the node's cell membership.
// *cell.Service has it.
type Cell interface {
	// Roster returns the current roster, or nil in no cell.
	Roster() *cell.Roster
}

// Config tunes a Service. Zero fields mean the defaults.
type Config struct {
	// Dir is the directory under which a store-role node keeps its index,
	// one per cell: Dir/<cell id>/ (`exopeer run`: <data dir>/store).
	// Empty: the node keeps no index, whatever its roles, and sends its
	// reads to a store member.
	Dir string
	// Registry holds the trait types the node knows. nil:
	// store.NewRegistry() (the built-in types). It must not change once
	// the service is built.
	Registry *store.Registry
	// Batch is how many chain arrivals the follower applies to the index
	// in one transaction, at most. Default 512.
	Batch int
	// BatchBytes bounds a batch's payloads, in bytes: the follower reads
	// the chain in chunks of at most ReadChunk arrivals and ends a batch
	// once its payloads reach BatchBytes, so that a chain of large
	// entries (up to 256 KiB each) does not make it hold Batch of them,
	// twice (one applied, one read ahead). Default 16 MiB.
	BatchBytes int
	// Poll is how often the follower looks at the roster for a change of
	// cell or of role, besides the chain's signals. Default 2 s.
	Poll time.Duration
	// Index tunes the index (package store/index); zero means its
	// defaults.
	Index index.Options
	// Rand is the source of new entity IDs. nil: the system's.
	Rand io.Reader
	// Now is the clock of the traits' created and modified times. nil:
	// the real clock.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Registry == nil {
		c.Registry = store.NewRegistry()
	}
	if c.Batch <= 0 {
		c.Batch = 512
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 16 << 20
	}
	if c.Poll <= 0 {
		c.Poll = 2 * time.Second
	}
	c.Rand = ambient.RandOr(c.Rand)
	c.Now = ambient.NowOr(c.Now)
	return c
}

// Options is what a Service is built from.
type Options struct {
	Host   host.Host
	Chain  Chain
	Cell   Cell
	Config Config
	Logger *slog.Logger
}

// Service is the store part of a node. Its methods are safe for
// concurrent use.
type Service struct {
	h     host.Host
	chain Chain
	cell  Cell
	cfg   Config
	reg   *store.Registry
	log   *slog.Logger

	mu      sync.Mutex
	started bool
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	kick    chan struct{} // cap 1: the follower is asked for a pass

	// imu guards the index of the node's current cell (nil: none open);
	// ixDone: Close closed it for good.
	imu    sync.Mutex
	ix     *index.Index
	ixCell string
	ixDone bool
	// idKey and idOf: the last cell key asked and its ID (cellID).
	idKey []byte
	idOf  string
	// amu serialises catch-ups (the follower, Reindex, writes) and
	// guards caught.
	amu    sync.Mutex
	caught caughtUp

	// The group commit (commit.go): slots bounds the writes waiting
	// (maxQueued); cmu guards the queue, busy (a commit is under way or
	// about to be) and cdone (Close refused further writes). commits
	// counts the commits, for tests and benchmarks.
	slots   chan struct{}
	cmu     sync.Mutex
	queue   []*write
	busy    bool
	cdone   bool
	commits atomic.Int64
	// commitHook, when set (by tests, before the first write), is called
	// by each commit before it appends.
	commitHook func()
	// omu guards own: the CIDs of the entries the commits appended lately
	// (commit.go), which the index does not validate again.
	omu sync.Mutex
	own ownSet

	// lmu guards the log limiters: skipped entries, failed passes.
	lmu     sync.Mutex
	skipLog limiter
	passLog limiter

	// The remote path: the server of this node's index to its cell, the
	// client of a store member's; rmu guards member (the store member
	// that answered last) and down (members that could not be reached,
	// since when).
	server *remote.Server
	client *remote.Client
	rmu    sync.Mutex
	member peer.ID
	down   map[peer.ID]time.Time
}

// New returns a Service that has started nothing.
func New(opts Options) (*Service, error) {
	if opts.Host == nil || opts.Chain == nil || opts.Cell == nil {
		return nil, errors.New("store: Host, Chain and Cell are required")
	}
	cfg := opts.Config.withDefaults()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		h: opts.Host, chain: opts.Chain, cell: opts.Cell, cfg: cfg, reg: cfg.Registry,
		log: log.With("part", "store"), kick: make(chan struct{}, 1), slots: make(chan struct{}, maxQueued),
		client: remote.NewClient(opts.Host), down: make(map[peer.ID]time.Time),
	}, nil
}

// Start starts the follower. It opens nothing: the index is opened when
// there is something to index or to read.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("store: Start called twice or after Close")
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.server = remote.NewServer(s.h, backend{s}, s.allow, s.log)
	if err := s.server.Start(s.ctx); err != nil {
		return err
	}
	s.wg.Add(1)
	go s.follow(s.ctx)
	return nil
}

// Close stops the service and waits for its goroutines. Idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	s.closeQueue()
	var err error
	if started {
		err = s.server.Close()
		s.cancel()
		s.wg.Wait()
	}
	s.imu.Lock()
	defer s.imu.Unlock()
	ix := s.ix
	s.ix, s.ixCell, s.ixDone = nil, "", true
	if ix != nil {
		err = errors.Join(err, ix.Close())
	}
	return err
}

// Types returns the trait types the node knows, by name.
func (s *Service) Types() []store.Schema { return s.reg.Types() }

// Written is what a write appended to the chain.
type Written struct {
	// Entity is the entity written (the new one's ID for a new entity).
	Entity store.EntityID
	// CID and Pos are the chain entry's that holds the write. Writes
	// committed together share one entry, a batch of transactions
	// (store.EncodeBatch): Tx is the write's transaction's index in it,
	// 0 for an entry of one transaction. The write's operations are
	// ordered after the entry's earlier transactions' (store.OpPlace).
	CID cid.Cid
	Pos chain.Pos
	Tx  int
}

// Reindexed is what a reindex did.
type Reindexed struct {
	Entries  uint64 // chain arrivals applied
	Entities int64  // entities in the index after it
	Took     time.Duration
}

// Status is what the service sees.
type Status struct {
	// Role is "store" (this node keeps an index) or "remote" (it sends
	// its reads to a store member).
	Role string
	// Member is the store member that answers this node's reads (remote).
	Member string
	// Next is the number of chain arrivals indexed; Behind those not yet.
	Next, Behind uint64
	// Entities and Traits are the live ones in the index.
	Entities, Traits int64
	// Skipped counts the chain's store transactions not applied, by
	// reason (store.SkipDecode, store.SkipSchema): a batch entry's one by
	// one (index.Stats.Skipped).
	Skipped map[string]int64
	// Bytes is the index's size on disk.
	Bytes int64
}

// The roles Status reports.
const (
	RoleStore  = "store"
	RoleRemote = "remote"
)

// roster returns the node's current roster and its own entry, or
// ErrNotMember.
func (s *Service) roster() (*cell.Roster, cell.Member, error) {
	ro := s.cell.Roster()
	if ro == nil {
		return nil, cell.Member{}, ErrNotMember
	}
	me, ok := ro.Member(s.h.ID())
	if !ok {
		return nil, cell.Member{}, fmt.Errorf("removed from cell %s by roster version %d: %w", ro.ID(), ro.Version, ErrNotMember)
	}
	return ro, me, nil
}

// isStore reports whether a node with roster entry me keeps an index.
func (s *Service) isStore(me cell.Member) bool {
	return me.Roles&cell.RoleStore != 0 && s.cfg.Dir != ""
}

// live reports whether the service may be used, or why not.
func (s *Service) live() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.started {
		return errors.New("store: service not started")
	}
	return nil
}
