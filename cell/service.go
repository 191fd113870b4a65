package cell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell/core"
	"github.com/exopeer/exopeer/gossip"
	"github.com/exopeer/exopeer/internal/ambient"
)

// Rendezvous is the part of peer discovery the cell uses: meeting, through
// the DHT, the other nodes that know a secret. *discovery.Service has it.
type Rendezvous interface {
	Rendezvous(secret []byte)
	StopRendezvous(secret []byte)
}

// memberRendezvous is a Rendezvous that can let only a few members
// advertise the cell on the DHT in each epoch (*discovery.Service can: see
// its RendezvousMembers). The cell's rendezvous uses it when there.
type memberRendezvous interface {
	RendezvousMembers(secret []byte, isMember func(peer.ID) bool)
}

// Config tunes the cell service. Zero fields mean defaults.
type Config struct {
	// Name is how this node is listed on its cell's roster when it creates
	// or joins one. Default: the host name.
	Name string
	// InviteTTL is how long an invite code stays valid. Default 10 min,
	// at most MaxInviteTTL.
	InviteTTL time.Duration
	// MaxAttempts is how many failed join attempts one remote peer may
	// make on an invite; it is then told the invite is exhausted, and the
	// others may go on trying. Default 3.
	MaxAttempts int
	// MaxInviteAttempts is how many failed join attempts, of all peers
	// together, kill an invite. Each is one online guess of the code's 33
	// bits. Default 20; at most 1000.
	MaxInviteAttempts int
	// MaintainInterval is how often the node checks that every member it
	// is connected to is in its gossip view, and asks for newer rosters.
	// Default 5 s.
	MaintainInterval time.Duration
	// Gossip tunes memberlist; zero means gossip's defaults, except that
	// the leave on Close is bounded by 1 s, so that a node stops fast
	// (`exopeer run` has 2 s for everything).
	Gossip gossip.Timing
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name, _ = os.Hostname()
		if !core.ValidName(c.Name) {
			c.Name = "node"
		}
	}
	if c.InviteTTL == 0 {
		c.InviteTTL = 10 * time.Minute
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.MaxInviteAttempts == 0 {
		c.MaxInviteAttempts = 20
	}
	if c.MaintainInterval == 0 {
		c.MaintainInterval = 5 * time.Second
	}
	if c.Gossip.LeaveTimeout == 0 {
		c.Gossip.LeaveTimeout = time.Second
	}
	return c
}

// Options is what a Service is built from.
type Options struct {
	Host      host.Host
	Key       crypto.PrivKey // the node's key; signs its gossip metadata
	Datastore ds.Batching    // the node's datastore; the cell keeps /cell
	// Rendezvous lets invites and members meet through the DHT; nil: LAN
	// and direct connections only.
	Rendezvous Rendezvous
	// Topics holds the riders on the cell's gossip (the chain, ...): each
	// topic's handler receives that topic's broadcasts and push/pull
	// states from the other members, on every gossip the cell runs (see
	// gossip.Topics for the handlers' rules: they may read
	// Service.Roster, which takes no lock, but must not call the
	// Service's other methods, which may be waiting for gossip). nil: an
	// empty registry of the Service's own.
	Topics *gossip.Topics
	// Cutoff gives a removal the removed member's cut-off from the
	// node's chain; with fetch, it first takes (bounded by ctx) what the
	// member holds. It may block; it must not call the Service. nil: no
	// chain, every cut-off is at 0.
	Cutoff func(ctx context.Context, id peer.ID, fetch bool) (Cutoff, error)
	Config Config
	Logger *slog.Logger
	// Rand is the random source of cell keys, secrets, box keys, invite
	// codes and join runs; nil: the system's (internal/ambient).
	Rand io.Reader
	// Now is the clock of rosters, invites and streams' deadlines; nil:
	// the real one (internal/ambient).
	Now func() time.Time
}

// Service is a node's membership of its cell: the stored roster and keys,
// gossip with the other members, invites, joins and removals. A node is in
// at most one cell (the stored state and the protocols leave room for more:
// every message names its cell).
type Service struct {
	h      host.Host
	key    crypto.PrivKey
	self   peer.ID
	st     store
	rz     Rendezvous
	topics *gossip.Topics
	cutoff func(ctx context.Context, id peer.ID, fetch bool) (Cutoff, error)
	cfg    Config
	log    *slog.Logger
	rand   io.Reader        // Options.Rand
	now    func() time.Time // Options.Now

	gossipRand io.Reader // forked from rand for gossip

	// roster is the current roster, readable without mu: gossip's
	// callbacks read it from memberlist's goroutines.
	roster atomic.Pointer[Roster]

	mu      sync.Mutex
	state   *state
	started bool
	closed  bool
	gossip  *gossip.Membership
	// leaving is closed when the gossip of a cell this node was removed
	// from has shut down (it leaves in the background); nil when none is
	// leaving. A new cell's gossip waits for it: one host, one gossip.
	leaving  chan struct{}
	rzSecret []byte      // the cell rendezvous secret in use
	admin    *core.Admin // the open invites and the admin's side of joins
	joining  bool
	tell     chan peer.ID // former members to tell of their removal

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Service that has started nothing.
func New(opts Options) (*Service, error) {
	if opts.Host == nil || opts.Key == nil || opts.Datastore == nil {
		return nil, errors.New("cell: Host, Key and Datastore are required")
	}
	cfg := opts.Config.withDefaults()
	if !core.ValidName(cfg.Name) {
		return nil, fmt.Errorf("cell: node name %q is empty, longer than %d bytes or not printable", cfg.Name, MaxNameLen)
	}
	if cfg.MaxAttempts < 0 || cfg.MaxInviteAttempts < 0 || cfg.MaxInviteAttempts > core.MaxInviteAttempts {
		return nil, fmt.Errorf("cell: MaxAttempts %d and MaxInviteAttempts %d: want 0 (default) or more, and at most %d attempts in all",
			cfg.MaxAttempts, cfg.MaxInviteAttempts, core.MaxInviteAttempts)
	}
	if cfg.InviteTTL < 0 || cfg.InviteTTL > MaxInviteTTL {
		return nil, fmt.Errorf("%w: InviteTTL %v: want 0 (default) to %v", ErrInviteTTL, cfg.InviteTTL, MaxInviteTTL)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rand := ambient.RandOr(opts.Rand)
	gossipRand, err := ambient.Fork(rand, "gossip")
	if err != nil {
		return nil, fmt.Errorf("cell: %w", err)
	}
	topics := opts.Topics
	if topics == nil {
		topics = gossip.NewTopics()
	}
	return &Service{
		h: opts.Host, key: opts.Key, self: opts.Host.ID(), st: newStore(opts.Datastore),
		rz: opts.Rendezvous, topics: topics, cutoff: opts.Cutoff, cfg: cfg, log: log.With("part", "cell"),
		rand: rand, now: ambient.NowOr(opts.Now), gossipRand: gossipRand,
		admin: core.NewAdmin(opts.Host.ID(), core.Limits{PerPeer: cfg.MaxAttempts, Total: cfg.MaxInviteAttempts}),
		tell:  make(chan peer.ID, tellQueue),
	}, nil
}

// Start loads the stored cell, if any, starts gossip with its members and
// serves the join and roster protocols.
func (s *Service) Start(ctx context.Context) error {
	st, err := s.st.load(ctx, s.rand)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("cell: Start called twice or after Close")
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.state = st
	s.h.SetStreamHandler(ProtocolJoin, s.serveJoin)
	s.h.SetStreamHandler(ProtocolRoster, s.serveRoster)
	s.wg.Add(2)
	go s.maintainLoop()
	go s.tellLoop()
	if st.roster == nil {
		return nil
	}
	s.roster.Store(st.roster)
	if !st.roster.Has(s.self) {
		s.log.Warn("this node was removed from its cell", "cell", st.roster.ID(), "name", st.roster.Name)
		return nil
	}
	s.log.Info("cell loaded", "cell", st.roster.ID(), "name", st.roster.Name,
		"version", st.roster.Version, "epoch", st.roster.Epoch, "members", len(st.roster.Members))
	if err := s.loadInvitesLocked(ctx, s.now()); err != nil {
		return err
	}
	return s.startGossipLocked()
}

// Close stops gossip (leaving the cell's view politely), stops serving and
// waits for every goroutine the service started.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	m := s.gossip
	s.gossip = nil
	s.stopRendezvousLocked()
	for _, inv := range s.admin.Invites {
		s.closeInviteLocked(inv) // stored: open again at the next Start
	}
	s.mu.Unlock()
	if !started {
		return nil
	}
	s.h.RemoveStreamHandler(ProtocolJoin)
	s.h.RemoveStreamHandler(ProtocolRoster)
	s.cancel()
	var err error
	if m != nil {
		err = m.Close()
	}
	s.wg.Wait()
	return err
}

// startGossipLocked starts memberlist for the current roster and the
// cell's rendezvous. Called with mu held.
func (s *Service) startGossipLocked() error {
	r := s.state.roster
	secret, ok := s.state.keys.Secret(r.Epoch)
	if !ok {
		return fmt.Errorf("%w %d (roster version %d)", ErrNoKey, r.Epoch, r.Version)
	}
	cfg := gossip.Config{
		Tag:       r.Tag(),
		Key:       s.key,
		Allow:     s.allowed,
		AppMeta:   s.appMeta,
		CheckMeta: checkMeta,
		GossipKey: secret.GossipKey(r.Cell),
		Topics:    s.topics,
		Timing:    s.cfg.Gossip,
		Logger:    s.log,
		Rand:      s.gossipRand,
		Now:       s.now,
	}
	m, err := gossip.New(s.h, cfg)
	if err != nil {
		return fmt.Errorf("cell: gossip: %w", err)
	}
	if err := m.Start(s.ctx); err != nil {
		return fmt.Errorf("cell: gossip: %w", err)
	}
	s.gossip = m
	events, cancel := m.Subscribe()
	s.wg.Add(1)
	go s.eventLoop(events, cancel)
	s.rendezvousLocked(secret.RendezvousSecret(r.Cell))
	// Members we are connected to already: join them now rather than at
	// the next maintenance round.
	var peers []peer.ID
	for _, mem := range r.Members {
		if mem.Peer != s.self && len(s.h.Network().ConnsToPeer(mem.Peer)) > 0 {
			peers = append(peers, mem.Peer)
		}
	}
	if len(peers) > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.joinGossip(m, peers)
		}()
	}
	return nil
}

func (s *Service) joinGossip(m *gossip.Membership, peers []peer.ID) {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	if n, err := m.Join(ctx, peers); err != nil && n == 0 {
		s.log.Debug("gossip join failed", "peers", len(peers), "err", err)
	}
}

func (s *Service) rendezvousLocked(secret []byte) {
	s.stopRendezvousLocked()
	if s.rz == nil {
		return
	}
	s.rzSecret = secret
	if mr, ok := s.rz.(memberRendezvous); ok {
		mr.RendezvousMembers(secret, s.allowed)
		return
	}
	s.rz.Rendezvous(secret)
}

func (s *Service) stopRendezvousLocked() {
	if s.rz != nil && s.rzSecret != nil {
		s.rz.StopRendezvous(s.rzSecret)
	}
	s.rzSecret = nil
}

// allowed is gossip's Allow: on the current roster, and not us removed.
// A former member is refused, and told of its removal.
func (s *Service) allowed(id peer.ID) bool {
	r := s.roster.Load()
	ok := r != nil && r.Has(id) && r.Has(s.self)
	if !ok {
		s.noteFormer(id)
	}
	return ok
}

// appMeta is what this node gossips about itself: its roster version and
// epoch, so that members notice a newer roster and fetch it.
func (s *Service) appMeta() []byte {
	r := s.roster.Load()
	if r == nil {
		return nil
	}
	return core.EncodeMeta(r.Version, r.Epoch)
}

// Create makes a new cell with this node as its admin and only member,
// listed as member ("": Config.Name).
func (s *Service) Create(ctx context.Context, name, member string) (*Roster, error) {
	if !core.ValidName(name) {
		return nil, fmt.Errorf("cell: cell name %q is empty, longer than %d bytes or not printable", name, MaxNameLen)
	}
	if member == "" {
		member = s.cfg.Name
	}
	if !core.ValidName(member) {
		return nil, fmt.Errorf("cell: member name %q is empty, longer than %d bytes or not printable", member, MaxNameLen)
	}
	if err := s.waitLeft(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return nil, err
	}
	if s.state.roster != nil && s.state.roster.Has(s.self) {
		return nil, fmt.Errorf("%w (%s, %q)", ErrAlreadyInCell, s.state.roster.ID(), s.state.roster.Name)
	}
	if s.joining {
		return nil, errors.New("cell: a join is in progress")
	}
	r, cellKey, keys, err := core.NewCell(name, Founder{Peer: s.self, Name: member, BoxKey: s.state.box.Public()}, s.now(), s.rand)
	if err != nil {
		return nil, err
	}
	st := &state{box: s.state.box, roster: r, keys: keys, cellKey: cellKey}
	if err := s.st.save(ctx, st); err != nil {
		return nil, err
	}
	s.state = st
	s.roster.Store(r)
	s.log.Info("cell created", "cell", r.ID(), "name", name)
	if err := s.startGossipLocked(); err != nil {
		return nil, err
	}
	return r, nil
}

// waitLeft waits, without holding mu, until the gossip of a cell this node
// was removed from has shut down, so that a new cell's gossip can take the
// host's gossip protocols. It returns at once when none is leaving.
func (s *Service) waitLeft(ctx context.Context) error {
	s.mu.Lock()
	leaving := s.leaving
	s.mu.Unlock()
	if leaving == nil {
		return nil
	}
	select {
	case <-leaving:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cell: waiting for the old cell's gossip to stop: %w", ctx.Err())
	}
}

func (s *Service) usableLocked() error {
	if s.closed || !s.started {
		return errors.New("cell: service not running")
	}
	return nil
}

// Roster returns the current roster, or nil when the node is in no cell.
func (s *Service) Roster() *Roster { return s.roster.Load() }

// Keys returns a copy of the epoch secrets held, or nil.
func (s *Service) Keys() *Keys {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == nil || s.state.keys == nil {
		return nil
	}
	return s.state.keys.Clone()
}

// BlobSecret returns the secret from which blob keys are derived in the
// current key epoch (see core.Secret.BlobSecret), with that epoch. ErrNoCell
// when the node is in no cell; an error wrapping core.ErrNoKey when it does
// not hold the epoch's secret (a removed node). The slice is the caller's.
func (s *Service) BlobSecret() (epoch uint64, secret []byte, err error) {
	r := s.Roster()
	if r == nil {
		return 0, nil, ErrNoCell
	}
	keys := s.Keys()
	if keys == nil {
		return 0, nil, ErrNoCell
	}
	sec, ok := keys.Secret(r.Epoch)
	if !ok {
		return 0, nil, fmt.Errorf("cell: blob secret of epoch %d: %w", r.Epoch, core.ErrNoKey)
	}
	return r.Epoch, sec.BlobSecret(r.Cell), nil
}

// Gossip returns the running membership, or nil.
func (s *Service) Gossip() *gossip.Membership {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gossip
}

// Topics returns the registry of the riders on the cell's gossip.
func (s *Service) Topics() *gossip.Topics { return s.topics }

// Broadcast sends msg on topic (registered in Topics; msg at most its size
// limit) to every member of the cell through gossip. It does not block on
// the network. ErrNoCell when the node is in no cell (or gossip is not
// running). The members get it through the handler of that topic, best
// effort (see gossip.Membership.Broadcast); msg is copied. Safe for
// concurrent use.
func (s *Service) Broadcast(topic string, msg []byte) error {
	m := s.Gossip()
	if m == nil {
		return ErrNoCell
	}
	return m.Broadcast(topic, msg)
}
