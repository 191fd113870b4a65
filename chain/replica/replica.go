// Package replica is a node's copy of its cell's chain: the shell around
// the pure core in package chain. It stores entries durably (blocks and an
// index, one synced batch per append or per received batch), appends this
// node's entries (keeping the plaintext of the last ones, bounded, so that
// reading them back soon decrypts nothing: recent.go), reads the chain in
// order or as it arrives, and syncs with the cell's other members: heads
// announced by gossip, missing entries pulled in one have/want round trip
// over ProtocolSync.
package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/gossip"
	"github.com/exopeer/exopeer/internal/ambient"
)

// Cell is what the replica needs of the node's cell membership.
// *cell.Service has it.
type Cell interface {
	// Roster returns the current roster, or nil when in no cell.
	Roster() *cell.Roster
	// Keys returns a copy of the epoch secrets held, or nil.
	Keys() *cell.Keys
	// Broadcast gossips msg on topic to the cell's members.
	Broadcast(topic string, msg []byte) error
	// Gossip returns the running membership, or nil.
	Gossip() *gossip.Membership
}

// Config tunes a Replica. Zero fields mean the defaults.
type Config struct {
	// AnnounceDelay is how long after a change the node announces its
	// chain to the cell, so that a burst of appends makes one
	// announcement. Default 100 ms.
	AnnounceDelay time.Duration
	// SyncInterval is how often the node asks a random live member for
	// what it lacks, whatever gossip said (anti-entropy). Default 5 s.
	SyncInterval time.Duration
	// IdleTimeout bounds the wait for each message of a sync exchange.
	// Default 30 s.
	IdleTimeout time.Duration
	// BanTime is how long a member that sent malformed or invalid data is
	// cut off from sync. Default 1 min.
	BanTime time.Duration
	// MaxPulls bounds the sync exchanges this node runs at once. Default 4.
	MaxPulls int
	// Waiting bounds the entries received whose parents are missing,
	// overall and per author (Stats.WaitingDropped counts what did not
	// fit). Zero fields: chain.MaxWaiting, chain.MaxWaitingBytes and
	// chain.MaxWaitingAuthorBytes.
	Waiting chain.Limits
	// Rand is the source of payload nonces and of random choices. nil:
	// the system's. Simulations pass a seeded stream.
	Rand io.Reader
	// Now is the clock of bans, pauses and of when members were heard;
	// nil: the real clock. Deadlines are on the runtime's clock (see
	// internal/ambient).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.AnnounceDelay == 0 {
		c.AnnounceDelay = 100 * time.Millisecond
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = 5 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.BanTime == 0 {
		c.BanTime = time.Minute
	}
	if c.MaxPulls == 0 {
		c.MaxPulls = 4
	}
	c.Rand = ambient.RandOr(c.Rand)
	c.Now = ambient.NowOr(c.Now)
	return c
}

// Options is what a Replica is built from.
type Options struct {
	Host      host.Host
	Key       crypto.PrivKey // the node's key: it signs this node's entries
	Blocks    *blocks.Store  // where entries are kept, as blocks
	Datastore ds.Batching    // the root datastore of Blocks; the index lives under /chain
	Cell      Cell
	Config    Config
	Logger    *slog.Logger
}

// ErrNoCell is returned while the node is in no cell.
var ErrNoCell = errors.New("chain: this node is in no cell; create one with `exopeer cell create NAME` or join one with `exopeer cell join CODE`")

// ErrRemoved is returned once the node was removed from its cell (the
// error says by which roster version).
var ErrRemoved = errors.New("chain: this node was removed from its cell")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("chain: replica closed")

// Replica is a node's copy of its cell's chain. Its methods are safe for
// concurrent use.
type Replica struct {
	h      host.Host
	key    crypto.PrivKey
	self   peer.ID
	blocks *blocks.Store
	d      ds.Batching
	cell   Cell
	cfg    Config
	log    *slog.Logger

	// announce is the latest encoded Announce, for memberlist's push/pull
	// (read from its goroutines, without mu).
	announce atomic.Pointer[[]byte]

	mu       sync.Mutex
	st       *chain.State // the current cell's chain; nil until loaded
	recent   recent       // plaintext of st's entries appended lately
	rng      *rand.Rand
	remotes  map[peer.ID]*remote
	banned   map[peer.ID]time.Time
	pulling  map[peer.ID]bool // running pulls; true: run another after it
	watchers map[chan struct{}]struct{}
	stats    Stats
	// cutVersion is the roster version whose cut-offs st obeys.
	cutVersion uint64
	// hushed: members whose last pull offered only entries past a
	// cut-off, not pulled on their announcements until then.
	hushed  map[peer.ID]time.Time
	started bool
	closed  bool

	changed chan struct{} // cap 1: the chain grew, announce it
	pulls   chan peer.ID  // members to pull from
	inbox   chan []byte   // announcements received
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// remote is what this node last heard of a member's chain.
type remote struct {
	ann   chain.Announce
	heard time.Time
}

// Stats counts what sync did since the node started.
type Stats struct {
	Pulls              uint64    `json:"pulls"`                  // sync exchanges this node asked for
	PullErrors         uint64    `json:"pullErrors"`             // and those that failed
	Served             uint64    `json:"served"`                 // sync exchanges this node answered
	Received           uint64    `json:"received"`               // new entries received
	Sent               uint64    `json:"sent"`                   // entries sent
	Deferred           uint64    `json:"deferred"`               // entries set aside: unknown author or epoch (roster behind)
	Rejected           uint64    `json:"rejected"`               // entries refused as invalid
	PastCutoff         uint64    `json:"pastCutoff"`             // entries of removed members past their cut-off, refused
	Dropped            uint64    `json:"dropped"`                // entries held, then dropped when a removal's cut-off came
	Banned             uint64    `json:"banned"`                 // times a member was cut off
	LastRejected       string    `json:"lastRejected,omitempty"` // why the last entry was refused
	LastRejectedAuthor peer.ID   `json:"lastRejectedAuthor,omitempty"`
	LastRejectedFrom   peer.ID   `json:"lastRejectedFrom,omitempty"`
	LastRejectedAt     time.Time `json:"lastRejectedAt,omitzero"`
	LastBanned         peer.ID   `json:"lastBanned,omitempty"`
	LastBannedBecause  string    `json:"lastBannedBecause,omitempty"`
	AnnouncesSent      uint64    `json:"announcesSent"` // announcements sent
	AnnouncesSeen      uint64    `json:"announcesSeen"` // announcements received

	// The bounds (chain.MaxForkWidth, Config.Waiting): entries of a
	// forked author refused past the two kept (chain.ErrForked); entries
	// received whose parents are missing, not kept because the waiting
	// budget was spent (fetched again later), and of those, how many
	// because their author's share of it was.
	ForkRefused          uint64 `json:"forkRefused"`
	WaitingDropped       uint64 `json:"waitingDropped"`
	WaitingDroppedAuthor uint64 `json:"waitingDroppedAuthor"`
}

// New returns a Replica that has started nothing.
func New(opts Options) (*Replica, error) {
	if opts.Host == nil || opts.Key == nil || opts.Blocks == nil || opts.Datastore == nil || opts.Cell == nil {
		return nil, errors.New("chain: Host, Key, Blocks, Datastore and Cell are required")
	}
	cfg := opts.Config.withDefaults()
	var seed [16]byte
	if _, err := io.ReadFull(cfg.Rand, seed[:]); err != nil {
		return nil, fmt.Errorf("chain: seed: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Replica{
		h: opts.Host, key: opts.Key, self: opts.Host.ID(), blocks: opts.Blocks, d: opts.Datastore,
		cell: opts.Cell, cfg: cfg, log: log.With("part", "chain"),
		rng:      rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))),
		remotes:  make(map[peer.ID]*remote),
		banned:   make(map[peer.ID]time.Time),
		pulling:  make(map[peer.ID]bool),
		watchers: make(map[chan struct{}]struct{}),
		changed:  make(chan struct{}, 1),
		pulls:    make(chan peer.ID, 64),
		inbox:    make(chan []byte, 256),
	}, nil
}

// Start loads the chain of the node's cell, if any, serves ProtocolSync
// and starts announcing and syncing.
func (r *Replica) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed {
		return errors.New("chain: Start called twice or after Close")
	}
	r.started = true
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if _, err := r.stateLocked(ctx); err != nil && !errors.Is(err, ErrNoCell) && !errors.Is(err, ErrRemoved) {
		return err
	}
	r.h.SetStreamHandler(ProtocolSync, r.serve)
	r.wg.Add(3)
	go r.announceLoop()
	go r.syncLoop()
	go r.inboxLoop()
	r.signalLocked()
	return nil
}

// Close stops serving and syncing and waits for every goroutine the
// replica started. Appends that returned are on disk. Idempotent.
func (r *Replica) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	started := r.started
	for w := range r.watchers {
		close(w)
		delete(r.watchers, w)
	}
	r.mu.Unlock()
	if !started {
		return nil
	}
	r.h.RemoveStreamHandler(ProtocolSync)
	r.cancel()
	r.wg.Wait()
	return nil
}

// stateLocked returns the chain of the node's current cell, loading it
// from the store when the cell changed (or on first use).
func (r *Replica) stateLocked(ctx context.Context) (*chain.State, error) {
	if r.closed {
		return nil, ErrClosed
	}
	ro := r.cell.Roster()
	if ro == nil {
		return nil, ErrNoCell
	}
	if !ro.Has(r.self) {
		return nil, removedError(ro)
	}
	if r.st == nil || string(r.st.Cell()) != string(ro.Cell) {
		st, err := load(ctx, r.blocks, r.d, ro, r.cfg.Waiting)
		if err != nil {
			return nil, err
		}
		if r.st != nil {
			r.remotes = make(map[peer.ID]*remote)
		}
		r.st, r.cutVersion = st, 0
		r.recent.reset()
		r.log.Info("chain loaded", "cell", ro.ID(), "entries", st.Len(), "forks", len(st.Forks()))
	}
	if err := r.applyCutoffsLocked(ctx, ro); err != nil {
		return nil, err
	}
	return r.st, nil
}

// signalLocked wakes the announcer and the watchers.
func (r *Replica) signalLocked() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
	for w := range r.watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Watch returns a channel that receives a value (at most one is queued)
// whenever the chain grows, and a function to stop watching. The channel
// is closed when the replica closes.
func (r *Replica) Watch() (<-chan struct{}, func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := make(chan struct{}, 1)
	if r.closed {
		close(w)
		return w, func() {}
	}
	r.watchers[w] = struct{}{}
	return w, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.watchers[w]; ok {
			delete(r.watchers, w)
			close(w)
		}
	}
}

// secrets adapts a cell's keys to chain.Secrets.
func secrets(k *cell.Keys) chain.Secrets {
	return func(epoch uint64) ([]byte, bool) {
		if k == nil {
			return nil, false
		}
		s, ok := k.Secret(epoch)
		if !ok {
			return nil, false
		}
		return s[:], true
	}
}
