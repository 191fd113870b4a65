package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	dssync "github.com/ipfs/go-datastore/sync"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/internal/delimited"
)

const (
	// ProtocolPrefix keeps exopeer's DHT apart from the public IPFS DHT.
	ProtocolPrefix protocol.ID = "/exopeer"
	// ProtocolID is the protocol of the WAN table (or the only table).
	ProtocolID protocol.ID = ProtocolPrefix + "/kad/1.0.0"
	// LANProtocolID is the protocol of the LAN table.
	LANProtocolID protocol.ID = ProtocolPrefix + dual.LanExtension + "/kad/1.0.0"

	// DatastorePrefix is the namespace of the DHT in the node's datastore.
	DatastorePrefix = "/dht"

	// MaxMessageSize bounds a DHT message a peer sends us: a record of
	// MaxRecordSize, or 20 closer or provider peers with their addresses,
	// fit many times over. kad-dht itself would take 4 MiB and allocate it
	// from the length prefix; the gate (internal/delimited) hands kad-dht
	// a message only once it has arrived, into a buffer grown as it came.
	MaxMessageSize = 256 << 10
)

var (
	// ErrNotStarted is returned by operations before Start.
	ErrNotStarted = errors.New("dht: not started")
	// ErrClosed is returned by operations after Close.
	ErrClosed = errors.New("dht: closed")
	// ErrNoPeers means no routing table has a peer to ask.
	ErrNoPeers = errors.New("dht: no peers in the routing table")
	// ErrNotFound means no valid record exists under the key.
	ErrNotFound = errors.New("dht: record not found")
	// ErrPeerNotFound means a FindPeer lookup did not reach the peer.
	ErrPeerNotFound = errors.New("dht: peer not found")
	// ErrBootstrap means no configured bootstrap peer could be reached.
	ErrBootstrap = errors.New("dht: no bootstrap peer reachable")
)

// DHT is exopeer's Kademlia DHT on one libp2p host: signed records under
// "/exo/", provider records for rendezvous keys, and peer routing. It
// republishes what it published until Close. All methods are safe for
// concurrent use.
type DHT struct {
	h     host.Host
	priv  crypto.PrivKey
	store ds.Batching
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	val   Validator

	kick chan struct{}  // wakes the republisher; buffered, 1
	wg   sync.WaitGroup // the republisher and every kad-dht call (do)
	th   *trackHost     // the host as kad-dht sees it

	mu       sync.Mutex
	started  bool
	closed   bool
	life     context.Context // canceled by Close
	cancel   context.CancelFunc
	rt       routing.Routing // *kaddht.IpfsDHT or *dual.DHT
	closeKad func() error
	tables   []table
	records  map[string]*published
	provides map[cid.Cid]*provided

	closeOnce sync.Once
	closeErr  error
}

// table is one Kademlia routing table and its protocol.
type table struct {
	name  string // "main" or "lan"
	proto protocol.ID
	kad   *kaddht.IpfsDHT
}

// New checks its arguments and returns a DHT that is not running yet. priv
// must be the host's Ed25519 key: it signs our records. d is the node's
// datastore; the DHT keeps its records and provider records under
// DatastorePrefix. nil d means an in-memory datastore. A nil log discards.
// New starts nothing.
func New(h host.Host, priv crypto.PrivKey, d ds.Batching, cfg Config, log *slog.Logger) (*DHT, error) {
	if h == nil {
		return nil, errors.New("dht: nil host")
	}
	if priv == nil || priv.Type() != cryptopb.KeyType_Ed25519 {
		return nil, errors.New("dht: node key must be Ed25519")
	}
	if id, err := peer.IDFromPrivateKey(priv); err != nil || id != h.ID() {
		return nil, errors.New("dht: node key does not match the host's peer ID")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Bootstrap = slices.Clone(cfg.Bootstrap)
	if d == nil {
		d = dssync.MutexWrap(ds.NewMapDatastore())
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DHT{
		h:        h,
		priv:     priv,
		store:    namespace.Wrap(d, ds.NewKey(DatastorePrefix)),
		cfg:      cfg,
		log:      log,
		now:      ambient.NowOr(cfg.Now),
		val:      NewValidator(cfg.Now),
		kick:     make(chan struct{}, 1),
		th:       newTrackHost(h),
		records:  make(map[string]*published),
		provides: make(map[cid.Cid]*provided),
	}, nil
}

// Start builds the routing table(s), registers the protocol handlers,
// dials the bootstrap peers and starts the republisher. It blocks until
// the bootstrap dials finish or ctx is done; ctx does not bound the DHT's
// lifetime (Close does). An unreachable bootstrap list is logged, not
// returned: the node keeps retrying whenever its table runs empty.
func (d *DHT) Start(ctx context.Context) error {
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return ErrClosed
	case d.started:
		d.mu.Unlock()
		return errors.New("dht: already started")
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := d.build(runCtx); err != nil {
		d.mu.Unlock()
		cancel()
		return err
	}
	d.started, d.life, d.cancel = true, runCtx, cancel
	d.wg.Add(1)
	go d.republishLoop(runCtx)
	d.mu.Unlock()

	d.log.Info("dht started", "tables", len(d.tables), "mode", d.cfg.Mode.String(), "bootstrapPeers", len(d.cfg.Bootstrap))
	if err := d.Bootstrap(ctx); err != nil {
		d.log.Warn("dht bootstrap failed", "err", err)
	}
	return nil
}

// build creates kad-dht; d.mu is held.
func (d *DHT) build(ctx context.Context) error {
	opts := []kaddht.Option{
		kaddht.ProtocolPrefix(ProtocolPrefix),
		kaddht.Datastore(d.store),
		kaddht.NamespacedValidator(Namespace, d.val),
		kaddht.BootstrapPeersFunc(d.BootstrapPeers),
	}
	if d.cfg.BucketSize > 0 {
		opts = append(opts, kaddht.BucketSize(d.cfg.BucketSize))
	}
	if d.cfg.Concurrency > 0 {
		opts = append(opts, kaddht.Concurrency(d.cfg.Concurrency))
	}
	mode := kadMode(d.cfg.Mode)
	if !d.cfg.LAN {
		k, err := kaddht.New(ctx, delimited.GateHost(d.th, MaxMessageSize), append(opts, kaddht.Mode(mode))...)
		if err != nil {
			return fmt.Errorf("dht: start kad-dht: %w", err)
		}
		d.rt, d.closeKad = k, k.Close
		d.tables = []table{{name: "main", proto: ProtocolID, kad: k}}
		return nil
	}
	dd, err := dual.New(ctx, delimited.GateHost(d.th, MaxMessageSize),
		dual.DHTOption(opts...),
		dual.WanDHTOption(kaddht.Mode(mode)),
		// dual.New appends /lan to the prefix before our options run, and
		// ProtocolPrefix above overwrites it: append it again.
		dual.LanDHTOption(kaddht.ProtocolExtension(dual.LanExtension), kaddht.Mode(kaddht.ModeServer)),
	)
	if err != nil {
		return fmt.Errorf("dht: start dual kad-dht: %w", err)
	}
	d.rt, d.closeKad = dd, dd.Close
	d.tables = []table{
		{name: "wan", proto: ProtocolID, kad: dd.WAN},
		{name: "lan", proto: LANProtocolID, kad: dd.LAN},
	}
	return nil
}

func kadMode(m Mode) kaddht.ModeOpt {
	switch m {
	case ModeServer:
		return kaddht.ModeServer
	case ModeClient:
		return kaddht.ModeClient
	}
	return kaddht.ModeAuto
}

// Close stops the republisher, ends the calls under way (their ctx is
// canceled and every stream of the DHT's protocols that kad-dht holds is
// reset, which ends a write blocked on a peer that stopped reading), waits
// for them, closes kad-dht and removes its protocol handlers. It does not
// close the host or the datastore. Close is idempotent; later calls return
// the first call's result.
func (d *DHT) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		cancel, closeKad, tables := d.cancel, d.closeKad, d.tables
		d.mu.Unlock()
		if cancel == nil {
			return // never started
		}
		cancel()
		d.th.resetAll()
		d.wg.Wait()
		if err := closeKad(); err != nil {
			d.closeErr = fmt.Errorf("dht: close kad-dht: %w", err)
		}
		for _, t := range tables {
			d.h.RemoveStreamHandler(t.proto)
		}
		d.log.Info("dht closed")
	})
	return d.closeErr
}

// running returns the routing and tables, or why there are none.
func (d *DHT) running() (routing.Routing, []table, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return nil, nil, ErrClosed
	case !d.started:
		return nil, nil, ErrNotStarted
	}
	return d.rt, d.tables, nil
}

// do runs op in a goroutine counted by d.wg and returns its error, or
// ctx's as soon as ctx is done. kad-dht watches ctx while it waits for an
// answer but not while it writes a request: a peer that stops reading
// would hold op, and without do its caller, until the stream resets (Close
// resets it, then waits for op). op's ctx ends with ctx or at Close.
func (d *DHT) do(ctx context.Context, op func(context.Context) error) error {
	life, err := d.enter()
	if err != nil {
		return err
	}
	opCtx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(life, cancel)
	done := make(chan error, 1)
	go func() {
		defer d.wg.Done()
		defer cancel()
		defer stop()
		done <- op(opCtx)
	}()
	select {
	case err := <-done:
		if err != nil && ctx.Err() == nil && life.Err() != nil {
			return ErrClosed
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enter counts a goroutine that Close must wait for in d.wg and returns
// the context that Close cancels; after Close it returns ErrClosed.
func (d *DHT) enter() (context.Context, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return nil, ErrClosed
	case !d.started:
		return nil, ErrNotStarted
	}
	d.wg.Add(1)
	return d.life, nil
}

// BootstrapPeers returns the peers kad-dht bootstraps from when its
// routing table runs empty: Config.Bootstrap, then those of
// Config.BootstrapFunc not among them (this node left out), each peer
// once.
func (d *DHT) BootstrapPeers() []peer.AddrInfo {
	out := slices.Clone(d.cfg.Bootstrap)
	if d.cfg.BootstrapFunc == nil {
		return out
	}
	for _, ai := range d.cfg.BootstrapFunc() {
		if ai.ID == "" || ai.ID == d.h.ID() || len(ai.Addrs) == 0 ||
			slices.ContainsFunc(out, func(b peer.AddrInfo) bool { return b.ID == ai.ID }) {
			continue
		}
		out = append(out, ai)
	}
	return out
}

// Bootstrap dials every configured bootstrap peer not yet connected, in
// parallel, and asks kad-dht to refresh its tables. It blocks until the
// dials end or ctx is done, and returns ErrBootstrap if peers are
// configured and none could be reached. The refresh runs in the background.
func (d *DHT) Bootstrap(ctx context.Context) error {
	rt, _, err := d.running()
	if err != nil {
		return err
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		reached int
		errs    []error
	)
	for _, ai := range d.cfg.Bootstrap {
		if ai.ID == d.h.ID() {
			continue
		}
		wg.Go(func() {
			err := d.h.Connect(ctx, ai)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ai.ID, err))
				return
			}
			reached++
		})
	}
	wg.Wait()
	if err := rt.Bootstrap(ctx); err != nil {
		return fmt.Errorf("dht: bootstrap: %w", err)
	}
	if len(errs) > 0 && reached == 0 {
		return fmt.Errorf("dht: %w: %w", errors.Join(errs...), ErrBootstrap)
	}
	return nil
}
