package discovery

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/exopeer/exopeer/internal/ambient"
)

// Source says how a peer was found.
type Source string

// The sources of peers.
const (
	SourceMDNS      Source = "mdns"      // heard on the LAN
	SourceDHT       Source = "dht"       // a rendezvous provider, or dialled by the DHT itself
	SourceBootstrap Source = "bootstrap" // the configured bootstrap list
	SourceManual    Source = "manual"    // `exopeer connect`
	SourceInbound   Source = "inbound"   // it connected to us
	SourceKnown     Source = "known"     // the known table: met before, of the cell or a contact
)

// Errors returned by Connect.
var (
	ErrNotExopeer = errors.New("discovery: peer does not speak exopeer's protocols")
	ErrClosed     = errors.New("discovery: service closed")
)

// PeerInfo describes one connected exopeer peer.
type PeerInfo struct {
	ID             peer.ID
	Addr           ma.Multiaddr  // remote address of the connection in use
	Sources        []Source      // every way it was found, first first
	RTT            time.Duration // last measured round trip; 0 before the first
	ConnectedSince time.Time
}

// entry is what the service knows of one peer. Guarded by Service.mu.
type entry struct {
	sources      []Source
	sticky       bool // bootstrap or manual: never forgotten
	failures     int  // dials failed in a row
	nextDial     time.Time
	wantDial     bool
	dialing      bool
	ignoredUntil time.Time
	exopeer      bool // connected and identified as an exopeer node
	since        time.Time
	rtt          time.Duration
	record       *record.Envelope // identify's signed peer record, the last given; nil: none
}

func (e *entry) has(s Source) bool { return slices.Contains(e.sources, s) }

// Service finds peers from every source and keeps the node connected to
// them. Create it with New; it starts nothing until Start. All methods are
// safe for concurrent use.
type Service struct {
	h      host.Host
	cfg    Config
	lan    LAN
	router Router
	log    *slog.Logger
	known  *knownStore // nil: no known table

	lc       sync.Mutex       // held across Start and Close
	mu       sync.Mutex       // guards the fields below
	rng      *rand.Rand       // back-off jitter, seeded from rand
	rand     io.Reader        // Config.Rand: ping payloads
	now      func() time.Time // Config.Now
	peers    map[peer.ID]*entry
	inflight int
	secrets  map[string]rendezvous // by secret
	provided map[string]uint64     // rendezvous key (string of CID) → epoch
	started  bool
	closed   bool

	wake   chan struct{}
	rzWake chan struct{}
	noteq  chan peer.ID // peers identified, for the known table
	lostq  chan peer.ID // known peers lost, for knownLoop to judge
	ctx    context.Context
	cancel context.CancelFunc
	sub    event.Subscription
	wg     sync.WaitGroup
}

// New returns a Service for h. lan and router may be nil (no LAN discovery,
// no DHT rendezvous); log may be nil (discard).
func New(h host.Host, cfg Config, lan LAN, router Router, log *slog.Logger) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// Jitter is drawn from Config.Rand, so that a simulated run replays.
	rnd := ambient.RandOr(cfg.Rand)
	var seed [16]byte
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return nil, fmt.Errorf("discovery: seed the jitter: %w", err)
	}
	return &Service{
		h: h, cfg: cfg, lan: lan, router: router, log: log, known: newKnownStore(cfg.Known, cfg.Member),
		rand: rnd, now: ambient.NowOr(cfg.Now),
		rng:      rand.New(rand.NewPCG(binary.BigEndian.Uint64(seed[:8]), binary.BigEndian.Uint64(seed[8:16]))),
		peers:    make(map[peer.ID]*entry),
		secrets:  make(map[string]rendezvous),
		provided: make(map[string]uint64),
		wake:     make(chan struct{}, 1),
		rzWake:   make(chan struct{}, 1),
		noteq:    make(chan peer.ID, KnownQueue),
		lostq:    make(chan peer.ID, KnownQueue),
	}, nil
}

// Start registers the ping protocol, starts LAN discovery, dials the
// bootstrap peers and starts the background loops. It does not block on the
// network; ctx bounds only the start itself.
func (s *Service) Start(ctx context.Context) error {
	s.lc.Lock()
	defer s.lc.Unlock()
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return fmt.Errorf("discovery: Start called twice or after Close")
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Unlock()

	sub, err := s.h.EventBus().Subscribe([]any{
		new(event.EvtPeerIdentificationCompleted),
		new(event.EvtPeerProtocolsUpdated),
		new(event.EvtPeerConnectednessChanged),
	})
	if err != nil {
		return fmt.Errorf("discovery: subscribe to host events: %w", err)
	}
	s.sub = sub
	s.h.SetStreamHandler(ProtocolPing, servePing)

	// Peers connected before we subscribed: identify has run for them.
	for _, id := range s.h.Network().Peers() {
		if s.speaksExopeer(id) {
			var c network.Conn
			if cs := s.h.Network().ConnsToPeer(id); len(cs) > 0 {
				c = cs[0]
			}
			s.markExopeer(id, c)
		}
	}

	s.wg.Add(3)
	go s.eventLoop()
	go s.dialLoop()
	go s.pingLoop()
	if s.router != nil {
		s.wg.Add(1)
		go s.rendezvousLoop()
	}
	if s.known != nil {
		s.wg.Add(1)
		go s.knownLoop()
	}
	for _, b := range s.cfg.Bootstrap {
		s.Found(SourceBootstrap, b)
	}
	// The table is read here, not on the network: a datastore that
	// cannot be read leaves the node without it, as without a LAN.
	if known, err := s.loadKnown(ctx); err != nil {
		s.log.Warn("known peers unavailable", "err", err)
	} else {
		for _, ai := range known {
			s.Found(SourceKnown, ai)
		}
	}
	if s.lan != nil {
		// A machine with no LAN interface (offline, or a container with
		// only loopback) still runs a node: LAN discovery is one source of
		// several, so its failure is a warning.
		if err := s.lan.Start(s.h, func(ai peer.AddrInfo) { s.Found(SourceMDNS, ai) }); err != nil {
			s.log.Warn("LAN discovery unavailable", "err", err)
			s.lan = nil
		}
	}
	return nil
}

// Close stops every loop and LAN discovery and waits for the goroutines the
// service started. Connections stay up: the host owns them. Idempotent.
func (s *Service) Close() error {
	s.lc.Lock()
	defer s.lc.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	var err error
	if s.lan != nil {
		err = s.lan.Close()
	}
	s.cancel()
	s.h.RemoveStreamHandler(ProtocolPing)
	if s.sub != nil {
		err = errors.Join(err, s.sub.Close())
	}
	s.wg.Wait()
	// Withdraw the rendezvous we no longer look up.
	s.mu.Lock()
	keys := s.provided
	s.provided = make(map[string]uint64)
	s.mu.Unlock()
	for k := range keys {
		if c, cerr := cid.Cast([]byte(k)); cerr == nil {
			s.router.Unprovide(c)
		}
	}
	return err
}

// Found reports a peer found by src. It never blocks on the network: the
// peer is dialled in the background, with back-off.
func (s *Service) Found(src Source, ai peer.AddrInfo) { s.found(src, ai, true) }

// found books a peer; with dial, the dial loop is asked to dial it.
func (s *Service) found(src Source, ai peer.AddrInfo, dial bool) {
	if ai.ID == "" || ai.ID == s.h.ID() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	e := s.peers[ai.ID]
	if e == nil {
		if len(ai.Addrs) == 0 {
			return // nothing to dial, nothing to remember
		}
		e = &entry{}
		s.peers[ai.ID] = e
	}
	ttl := peerstore.AddressTTL
	if src == SourceBootstrap || src == SourceManual {
		ttl = peerstore.PermanentAddrTTL
	}
	s.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, ttl)
	if !e.has(src) {
		e.sources = append(e.sources, src)
		s.log.Info("peer found", "peer", ai.ID, "source", src, "addrs", ai.Addrs)
	}
	if src == SourceBootstrap || src == SourceManual {
		e.sticky = true
	}
	if e.exopeer || e.dialing || s.now().Before(e.ignoredUntil) {
		return
	}
	e.wantDial = dial
	if dial {
		s.kick(s.wake)
	}
}

// Connect dials ai now, as `exopeer connect` does, and keeps it in the list
// of peers redialled when lost. It blocks until the peer is connected and
// identified or ctx ends, and fails with ErrNotExopeer if the peer does not
// speak exopeer's protocols. A peer that cannot be reached is not kept (the
// address may be a typo).
func (s *Service) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if ai.ID == s.h.ID() {
		return fmt.Errorf("discovery: %s is this node", ai.ID)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	e, known := s.peers[ai.ID]
	if known {
		e.ignoredUntil = time.Time{} // the user insists
	}
	s.mu.Unlock()
	s.found(SourceManual, ai, false) // we dial it ourselves, right here
	if err := s.h.Connect(ctx, ai); err != nil {
		s.mu.Lock()
		if e := s.peers[ai.ID]; e != nil && !known && !e.exopeer {
			delete(s.peers, ai.ID)
		}
		s.mu.Unlock()
		return fmt.Errorf("discovery: connect %s: %w", ai.ID, err)
	}
	s.waitIdentified(ctx, ai.ID)
	if !s.awaitExopeer(ctx, ai.ID) {
		s.ignore(ai.ID)
		return fmt.Errorf("%w: %s", ErrNotExopeer, ai.ID)
	}
	// awaitExopeer read the peerstore; the identify event that books the
	// peer may still be on its way to the event loop. Book it here, so
	// that Peers lists it as soon as Connect returns.
	if conns := s.h.Network().ConnsToPeer(ai.ID); len(conns) > 0 {
		s.markExopeer(ai.ID, conns[0])
	}
	return nil
}

// Peers lists the connected exopeer peers, sorted by peer ID.
func (s *Service) Peers() []PeerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PeerInfo
	for id, e := range s.peers {
		if !e.exopeer {
			continue
		}
		conns := s.h.Network().ConnsToPeer(id)
		if len(conns) == 0 {
			continue
		}
		out = append(out, PeerInfo{
			ID: id, Addr: conns[0].RemoteMultiaddr(), Sources: slices.Clone(e.sources),
			RTT: e.rtt, ConnectedSince: e.since,
		})
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return cmpString(string(a.ID), string(b.ID)) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ignore disconnects a peer that does not speak exopeer and leaves it alone
// for IgnoreFor.
func (s *Service) ignore(id peer.ID) {
	s.mu.Lock()
	if e := s.peers[id]; e != nil {
		e.ignoredUntil = s.now().Add(s.cfg.IgnoreFor)
		e.exopeer, e.rtt = false, 0
		// Bootstrap and hand-added peers are tried again once the ignore
		// ends (the peer may be upgraded); others must be found again.
		e.wantDial = e.sticky
		e.nextDial = e.ignoredUntil
	}
	s.kick(s.wake)
	s.mu.Unlock()
	s.log.Info("peer ignored", "peer", id, "reason", "does not speak exopeer")
	_ = s.h.Network().ClosePeer(id)
}

// kick wakes a loop without blocking.
func (s *Service) kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// backoff returns the wait after n failures in a row. Called with mu held.
func (s *Service) backoff(n int) time.Duration {
	d := s.cfg.BackoffMin
	for i := 1; i < n && d < s.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.BackoffMax)
	jitter := time.Duration(s.rng.Int64N(int64(d)/2+1)) - d/4
	return d + jitter
}

// withoutLoopback drops loopback addresses: heard on a real LAN, they point
// at the listener's own machine, not at the peer.
func withoutLoopback(ai peer.AddrInfo) peer.AddrInfo {
	addrs := make([]ma.Multiaddr, 0, len(ai.Addrs))
	for _, a := range ai.Addrs {
		if !manet.IsIPLoopback(a) {
			addrs = append(addrs, a)
		}
	}
	return peer.AddrInfo{ID: ai.ID, Addrs: addrs}
}

// eventLoop follows connections: a peer counts as connected once identify
// shows it speaks exopeer, and is redialled when lost if it should be.
func (s *Service) eventLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev, ok := <-s.sub.Out():
			if !ok {
				return
			}
			switch ev := ev.(type) {
			case event.EvtPeerIdentificationCompleted:
				s.identified(ev)
			case event.EvtPeerProtocolsUpdated:
				s.protocolsUpdated(ev)
			case event.EvtPeerConnectednessChanged:
				// Limited: connected through a relay that limits the
				// circuit; the peer is still there.
				if ev.Connectedness != network.Connected && ev.Connectedness != network.Limited {
					s.disconnected(ev.Peer)
				}
			}
		}
	}
}

func (s *Service) identified(ev event.EvtPeerIdentificationCompleted) {
	if slices.Contains(ev.Protocols, ProtocolPing) {
		s.markExopeer(ev.Peer, ev.Conn)
		s.queueKnown(ev)
		return
	}
	// A listed peer whose new protocol list lacks ours stopped being an
	// exopeer node. Peers we dial are checked by dial(); others are left
	// to the connection manager.
	s.mu.Lock()
	e := s.peers[ev.Peer]
	listed := e != nil && e.exopeer
	s.mu.Unlock()
	if listed {
		// Ask the peer itself before dropping it: this identify answer
		// may be older than a push that listed our protocol.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if !s.probe(s.ctx, ev.Peer) {
				s.ignore(ev.Peer)
			}
		}()
	}
}

// protocolsUpdated follows identify pushes: a peer that registered our
// protocol late is an exopeer peer after all, and one that dropped it is no
// longer.
func (s *Service) protocolsUpdated(ev event.EvtPeerProtocolsUpdated) {
	conns := s.h.Network().ConnsToPeer(ev.Peer)
	switch {
	case slices.Contains(ev.Added, ProtocolPing) && len(conns) > 0:
		s.mu.Lock()
		if e := s.peers[ev.Peer]; e != nil {
			e.ignoredUntil = time.Time{}
		}
		s.mu.Unlock()
		s.markExopeer(ev.Peer, conns[0])
	case slices.Contains(ev.Removed, ProtocolPing):
		s.mu.Lock()
		e := s.peers[ev.Peer]
		listed := e != nil && e.exopeer
		s.mu.Unlock()
		if listed {
			s.ignore(ev.Peer)
		}
	}
}

// markExopeer books id as a connected exopeer peer (over c, which may be
// nil), logs it and measures its round trip the first time.
func (s *Service) markExopeer(id peer.ID, c network.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	e := s.peers[id]
	if e == nil {
		e = &entry{}
		s.peers[id] = e
	}
	if len(e.sources) == 0 {
		src := SourceDHT
		if c != nil && c.Stat().Direction == network.DirInbound {
			src = SourceInbound
		}
		e.sources = append(e.sources, src)
	}
	fresh := !e.exopeer
	e.exopeer, e.failures, e.wantDial = true, 0, false
	if fresh {
		e.since = s.now()
		s.wg.Add(1) // under mu, so never after Close's Wait began
	}
	sources := slices.Clone(e.sources)
	s.mu.Unlock()
	if fresh {
		var addr ma.Multiaddr
		if c != nil {
			addr = c.RemoteMultiaddr()
		}
		s.log.Info("peer connected", "peer", id, "addr", addr, "sources", sources)
		go func() {
			defer s.wg.Done()
			s.ping(id)
		}()
	}
}

func (s *Service) disconnected(id peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.peers[id]
	if e == nil {
		return
	}
	if e.exopeer {
		e.exopeer, e.rtt = false, 0
		s.log.Info("peer disconnected", "peer", id)
	}
	if !e.sticky && !e.has(SourceMDNS) && e.has(SourceKnown) && s.known != nil {
		// Whether it is still of the cell or a contact's is for knownLoop
		// to say (lostKnown): the event loop never waits on Interesting.
		select {
		case s.lostq <- id:
			return
		default: // redialled; dial asks Interesting before forgetting it
		}
	}
	if e.sticky || e.has(SourceMDNS) || e.has(SourceKnown) {
		e.wantDial = true
		e.nextDial = s.now().Add(s.backoff(e.failures + 1))
		s.kick(s.wake)
		return
	}
	if !e.dialing && !s.now().Before(e.ignoredUntil) {
		delete(s.peers, id)
	}
}
