package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/blob/pin"
	blobservice "github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/discovery"
	"github.com/exopeer/exopeer/gossip"
	"github.com/exopeer/exopeer/internal/ambient"
	messageservice "github.com/exopeer/exopeer/message/service"
	"github.com/exopeer/exopeer/prekey"
	"github.com/exopeer/exopeer/store/service"
)

// Version is the exopeer version the node reports to peers and the CLI.
const Version = "0.1.0-dev"

// Network is what the node takes from its caller: the network it runs on.
// `exopeer run` passes RealNetwork; the simulator passes a simulated one, and
// the node above it is the very same code.
type Network struct {
	// NewHost builds the libp2p host for the node's key, listening. Required.
	// The node owns the host and closes it.
	NewHost func(priv crypto.PrivKey) (host.Host, error)
	// NewLAN builds the LAN discovery. nil: no LAN discovery.
	NewLAN func() discovery.LAN
	// Relays are the node's relays from the cell: its relay service for
	// the cell and AutoRelay (parts "relay" and "autorelay"). nil: neither
	// (simnet's network has no libp2p relays).
	Relays *Relays
}

// Options is everything a Node is built from.
type Options struct {
	// Key is the node's Ed25519 identity. Required.
	Key crypto.PrivKey
	// Datastore is the node's store, namespaced inside by each part
	// (/blocks, /dht, ...). Required. The caller owns it: the node never
	// closes it, so that it can outlive a node (a restart keeps its data).
	Datastore ds.Batching
	// Blobs is where the blocks of blobs (CIDs of codec raw or dag-pb) are
	// kept, a datastore of their own (the data dir's flatfs); nil keeps
	// them in Datastore, under /blobs (simnet does). The caller owns it as
	// it owns Datastore.
	Blobs ds.Batching
	// Network is the network the node runs on. NewHost is required.
	Network Network
	// DHT and Discovery configure those parts; zero values mean defaults.
	DHT       dht.Config
	Discovery discovery.Config
	// Blocks configures the block exchange; zero means defaults.
	Blocks blocks.Config
	// Cell configures the node's cell membership; zero means defaults.
	Cell cell.Config
	// Chain configures the node's replica of its cell's chain; zero means
	// defaults.
	Chain replica.Config
	// Files configures the node's part "blobs": blobs and the cell's
	// files (pin policy, budgets, spool); zero means defaults.
	Files blobservice.Config
	// Prekeys configures the node's part "prekeys": its prekey bundle,
	// published and served, and other devices' bundles; zero means
	// defaults.
	Prekeys prekey.Config
	// Store configures the node's store: Store.Dir is where a store-role
	// node keeps its index (NodeOptions: <data dir>/store); empty, the
	// node keeps none and sends its reads to a store member.
	Store service.Config
	// Contacts configures the node's contacts and the upkeep of its
	// cell's device list; zero means defaults.
	Contacts contactservice.Config
	// Messages configures the node's part "messages": conversations with
	// contacts; zero means defaults.
	Messages messageservice.Config
	// Logger receives the node's log; nil discards it.
	Logger *slog.Logger
	// Rand is the node's random source: keys, secrets, invite codes,
	// nonces and every random choice of its parts come from it. Each part
	// gets a stream of its own, forked from it while the node starts (so
	// that the order in which the parts draw changes nothing); a part
	// whose config has a Rand keeps that. nil: the system's.
	// The libraries under the parts (libp2p, kad-dht, memberlist) keep
	// their own randomness.
	Rand io.Reader
	// Doctor is what `exopeer doctor` checks beyond the node (its data
	// dir, the port asked for); zero: none of it.
	Doctor DoctorOptions
	// Now is the node's clock, handed to every part whose config has none.
	// nil: the real clock (internal/ambient). Simulations pass time.Now
	// inside their synctest bubble.
	Now func() time.Time
}

// Node is one exopeer peer: one libp2p host carrying the DHT, the block
// exchange and peer discovery. New builds nothing; Start starts everything;
// Close stops everything and waits. Its methods are safe for concurrent use
// once Start has returned.
type Node struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	parts   *parts // the long-lived parts, in start order
	began   bool   // Start was called
	started time.Time
	closed  bool

	host    host.Host
	store   *blocks.Store
	xchg    *blocks.Exchange
	provs   *blocks.Providers
	dht     *dht.DHT
	reach   *reachWatch
	disc    *discovery.Service
	cell    *cell.Service
	topics  *gossip.Topics
	windows *invWindows
	chain   *replica.Replica
	stor    *service.Service
	pins    *pin.Pins
	blobs   *blobservice.Service
	cons    *contactservice.Service
	prek    *prekey.Service
	msgs    *messageservice.Service
	relay   *relayService
	doc     *doctorPart
}

// ErrNodeClosed is returned by Start after Close.
var ErrNodeClosed = errors.New("peer: node closed")

// New checks opts and returns a Node that has started nothing.
func New(opts Options) (*Node, error) {
	if opts.Key == nil {
		return nil, errors.New("peer: Options.Key is required")
	}
	if opts.Key.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("peer: node key is %v, want Ed25519", opts.Key.Type())
	}
	if opts.Datastore == nil {
		return nil, errors.New("peer: Options.Datastore is required")
	}
	if opts.Network.NewHost == nil {
		return nil, errors.New("peer: Options.Network.NewHost is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Node{opts: opts, log: log, now: ambient.NowOr(opts.Now), parts: newParts(log)}, nil
}

// Start builds the node's parts and starts them in order (see
// docs/architecture.md): the host, the block exchange, discovery, the
// reachability watch, the DHT, the prekeys, the cell, the chain, the store, the blobs, the contacts,
// the messages, the doctor, unrelay, punchretry and, on a network with relays, the relay service, AutoRelay and meet. If one fails, those started are stopped again in
// reverse order, the error names the part, and the node is closed. ctx
// bounds the start, not the node's life.
func (n *Node) Start(ctx context.Context) (err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrNodeClosed
	}
	if n.began {
		return errors.New("peer: Start called twice")
	}
	n.began = true
	defer func() {
		if err != nil {
			n.closed = true // the registry stopped what had started
		}
	}()
	// Every other part is built on the host, which listens from the
	// moment it exists: it starts first, on its own.
	hp := &hostPart{newHost: n.opts.Network.NewHost, key: n.opts.Key}
	n.parts.add("host", hp)
	if err := n.parts.start(ctx); err != nil {
		return err
	}
	n.host = hp.h
	if err := n.build(); err != nil {
		return errors.Join(err, n.parts.close())
	}
	if err := n.parts.start(ctx); err != nil {
		return err
	}
	n.started = n.now()
	n.log.Info("node started", "peer", n.host.ID(), "addrs", n.host.Addrs())
	return nil
}

// build makes the parts on the host (their constructors start nothing) and
// registers them in start order, each with the reason for its place.
func (n *Node) build() error {
	in, err := n.opts.inputs()
	if err != nil {
		return err
	}
	blobs := n.opts.Blobs
	if blobs == nil {
		blobs = n.opts.Datastore
	}
	n.store = blocks.NewStoreWith(n.opts.Datastore, blobs)
	bcfg := n.opts.Blocks
	if bcfg.Logger == nil {
		bcfg.Logger = n.log.With("part", "blocks")
	}
	if bcfg.Now == nil {
		bcfg.Now = in.now
	}
	// Bitswap searches the DHT for providers of public blobs' blocks
	// only (those the blob service tracks); the DHT starts after the
	// exchange, so it is looked up at each search.
	n.provs = blocks.NewProviders(func() routing.ContentDiscovery {
		if n.dht == nil || n.dht.Routing() == nil {
			return nil
		}
		return dhtProviders{n.dht}
	})
	if bcfg.ProviderFinder == nil {
		bcfg.ProviderFinder = n.provs
	}
	if n.xchg, err = blocks.NewExchange(n.host, n.store, bcfg); err != nil {
		return fmt.Errorf("peer: build exchange: %w", err)
	}
	// Durable reachability: discovery keeps the last known addresses of
	// the cell's members and contacts' devices, and the DHT bootstraps
	// from the public ones too (peer/known.go).
	in.disc.Known, in.disc.Interesting, in.dht.BootstrapFunc = n.opts.Datastore, n.interesting, n.knownBootstrap
	in.disc.Member, in.disc.Owner = n.member, n.owner
	if n.dht, err = dht.New(n.host, n.opts.Key, n.opts.Datastore, in.dht, n.log.With("part", "dht")); err != nil {
		return fmt.Errorf("peer: build dht: %w", err)
	}
	var lan discovery.LAN
	if n.opts.Network.NewLAN != nil {
		lan = n.opts.Network.NewLAN()
	}
	if n.disc, err = discovery.New(n.host, in.disc, lan, n.dht, n.log.With("part", "discovery")); err != nil {
		return fmt.Errorf("peer: build discovery: %w", err)
	}
	// The chain rides on the cell's gossip, and reads the cell's roster:
	// both are built before either starts.
	n.topics = gossip.NewTopics()
	// Invite windows: the cell's and contacts' invites open the node to
	// strangers through its cell's relays (announced on the real network
	// only: simnet's has no relays); the relay reads the others' windows.
	if n.windows, err = newInvWindows(n.disc, n.opts.Datastore, n.opts.Key, in.now, n.opts.Network.Relays != nil,
		n.windowBroadcast, n.windowMember, n.log.With("part", "windows")); err != nil {
		return err
	}
	if err := n.topics.Register(windowTopic, n.windows, windowMsgMax); err != nil {
		return err
	}
	n.parts.addRun("windows", n.windows)
	var rep *replica.Replica
	if n.cell, err = cell.New(cell.Options{
		Host: n.host, Key: n.opts.Key, Datastore: n.opts.Datastore, Rendezvous: n.windows,
		Config: n.opts.Cell, Logger: n.log, Topics: n.topics, Rand: in.cellRand, Now: in.now,
		Cutoff: func(ctx context.Context, id peer.ID, fetch bool) (cell.Cutoff, error) {
			return rep.Cutoff(ctx, id, fetch)
		},
	}); err != nil {
		return fmt.Errorf("peer: build cell: %w", err)
	}
	if rep, err = replica.New(replica.Options{
		Host: n.host, Key: n.opts.Key, Blocks: n.store, Datastore: n.opts.Datastore,
		Cell: n.cell, Config: in.chain, Logger: n.log,
	}); err != nil {
		return fmt.Errorf("peer: build chain: %w", err)
	}
	n.chain = rep
	// The riders on the cell's gossip, one topic each.
	if err := n.topics.Register(replica.Topic, rep, chain.MaxAnnounce); err != nil {
		return fmt.Errorf("peer: build chain: %w", err)
	}
	// The exchange serves the chain's entries to the cell's members only,
	// and asks only them for entries; every block no owner vouches for is
	// served to nobody, and no peer is asked for a block no asker allows
	// (the blocks of a tracked public blob: anyone).
	n.xchg.Gate().Register(rep)
	n.xchg.Gate().RegisterAsker(rep)
	n.xchg.Gate().RegisterAsker(n.provs)

	// Start order. The exchange first, before any peer connects: bitswap
	// learns peers from connection events.
	n.parts.add("exchange", n.xchg)
	// Discovery before the DHT, so that it sees the DHT's first
	// connections (the DHT dials its bootstrap peers when it starts).
	n.parts.add("discovery", n.disc)
	// The node's reachability, from AutoNAT v2's verdicts on its
	// addresses, sets the DHT's mode in dht.ModeAuto: it tells the DHT
	// before the DHT starts, so that the tables start in that mode.
	n.reach = newReachWatch(n.host, n.dht.SetReachability, n.log.With("part", "reach"))
	n.parts.add("reach", n.reach)
	n.parts.add("dht", n.dht)
	// The prekeys publish their bundle on the DHT, so they start after
	// it; nothing before them uses them.
	if n.prek, err = prekey.New(prekey.Options{
		Host: n.host, Key: n.opts.Key, Datastore: n.opts.Datastore, Records: n.dht,
		Config: in.prekeys, Logger: n.log.With("part", "prekeys"),
	}); err != nil {
		return fmt.Errorf("peer: build prekeys: %w", err)
	}
	n.parts.add("prekeys", n.prek)
	// The cell loads the stored cell and starts gossip if the node is a
	// member; the chain, riding on it, follows.
	n.parts.add("cell", n.cell)
	n.parts.add("chain", n.chain)
	// The store follows the chain into its index (opened when there is
	// something to index or to read, not here) and writes to it.
	if n.stor, err = service.New(service.Options{
		Host: n.host, Chain: rep, Cell: n.cell, Config: in.store, Logger: n.log,
	}); err != nil {
		return fmt.Errorf("peer: build store: %w", err)
	}
	n.parts.add("store", n.stor)
	// Blobs and the cell's files: over the exchange (blocks), the store
	// (files are entities) and the cell (keys, who may read); it follows
	// the store's files, so it starts after it.
	n.pins = pin.New(n.opts.Datastore, n.store, n.log.With("part", "pins")).WithClock(in.now)
	if n.blobs, err = blobservice.New(blobservice.Options{
		Host: n.host, Exchange: n.xchg, Blocks: n.store, Pins: n.pins, Datastore: n.opts.Datastore,
		Cell: n.cell, Store: n.stor, Contacts: shareContacts{n}, Finder: n.dht,
		Config: in.blobs, Logger: n.log,
	}); err != nil {
		return fmt.Errorf("peer: build blobs: %w", err)
	}
	n.parts.add("blobs", n.blobs)
	// Contacts are store entities; an admin keeps the cell's signed
	// device list in the store: after the store.
	if n.cons, err = contactservice.New(contactservice.Options{
		Host: n.host, Rendezvous: n.windows, Cell: n.cell, Store: n.stor, Config: in.contacts, Logger: n.log,
	}); err != nil {
		return fmt.Errorf("peer: build contacts: %w", err)
	}
	n.parts.add("contacts", n.cons)
	// Messages are sent to contacts' devices over sessions made from
	// their prekeys, and recorded in the store: after both. Blind
	// mailboxes are DHT records under keys of the cell's mailbox keys.
	if n.msgs, err = messageservice.New(messageservice.Options{
		Host: n.host, Key: n.opts.Key, Datastore: n.opts.Datastore, Cell: n.cell, Contacts: n.cons,
		Prekeys: n.prek, Store: n.stor, Finder: n.dht, Files: n.blobs, Config: in.messages, Logger: n.log,
		Mailbox: n.dht, MailboxKeys: n.cons,
	}); err != nil {
		return fmt.Errorf("peer: build messages: %w", err)
	}
	n.parts.add("messages", n.msgs)
	// The doctor's part answers the time protocol for the cell's members
	// and contacts' devices (after both) and keeps identify's observed
	// addresses.
	n.doc = newDoctorPart(n.host, n.doctorRule(), in.now, n.log.With("part", "doctor"))
	n.parts.add("doctor", n.doc)
	// A peer reached directly (hole punching) loses its relayed connections.
	n.parts.addRun("unrelay", newUnrelay(n.host.Network(), in.now, n.log.With("part", "unrelay")))
	// A member or contact's device reached only through a relay this node
	// dialled is redialled with back-off, so that it punches again.
	n.parts.addRun("punchretry", newPunchRetry(n.host, in.now, n.doctorRule().allows, n.punches(), n.log.With("part", "punchretry")))
	// Relays from the cell: the relay admits the cell's members and its
	// contacts' devices, read as they are at each request; both parts
	// follow the reachability watch.
	return n.addRelays()
}

// Close stops meet, AutoRelay, the relay service, punchretry, unrelay, the doctor, the messages, the contacts, the blobs, the store, the chain, the cell,
// the prekeys, the DHT, the reachability watch, discovery, the block
// exchange, the invite windows and the host, in
// that order (the reverse of Start's), and waits for their goroutines.
// Each error names its part. The datastore stays open: it
// belongs to the caller. Idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	if err := n.parts.close(); err != nil {
		return err
	}
	if !n.started.IsZero() {
		n.log.Info("node stopped")
	}
	return nil
}

// ID returns the node's peer ID. It is known before Start.
func (n *Node) ID() peer.ID {
	id, _ := peer.IDFromPrivateKey(n.opts.Key)
	return id
}

// Host returns the node's libp2p host; nil before Start.
func (n *Node) Host() host.Host { return n.host }

// Blocks returns the node's block store; nil before Start.
func (n *Node) Blocks() *blocks.Store { return n.store }

// Exchange returns the node's block exchange; nil before Start.
func (n *Node) Exchange() *blocks.Exchange { return n.xchg }

// Providers is the exchange's provider finder: a public blob's root and
// blocks tracked on it are searched for on the DHT (by the root's
// providers); nothing else is.
func (n *Node) Providers() *blocks.Providers { return n.provs }

// DHT returns the node's DHT; nil before Start.
func (n *Node) DHT() *dht.DHT { return n.dht }

// Chain returns the node's replica of its cell's chain; nil before Start.
func (n *Node) Chain() *replica.Replica { return n.chain }

// Store returns the node's store: entities over the chain, their index
// and queries; nil before Start.
func (n *Node) Store() *service.Service { return n.stor }

// Blobs returns the node's blobs and the cell's files; nil before Start.
func (n *Node) Blobs() *blobservice.Service { return n.blobs }

// Contacts returns the node's contacts and its cell's device list; nil
// before Start.
func (n *Node) Contacts() *contactservice.Service { return n.cons }

// Messages returns the node's conversations with its contacts; nil
// before Start.
func (n *Node) Messages() *messageservice.Service { return n.msgs }

// Prekeys returns the node's prekeys: its bundle, and other devices'
// bundles (Fetch); nil before Start.
func (n *Node) Prekeys() *prekey.Service { return n.prek }

// Pins returns the node's pins of blob roots; nil before Start.
func (n *Node) Pins() *pin.Pins { return n.pins }

// Cell returns the node's cell membership; nil before Start.
func (n *Node) Cell() *cell.Service { return n.cell }

// Topics returns the riders on the node's cell gossip, with their
// counters; nil before Start.
func (n *Node) Topics() *gossip.Topics { return n.topics }

// Reach returns the node's reachability as of now: overall, and each of
// its addresses with AutoNAT v2's verdict on it. Before Start it is the
// zero Reach. It does not block.
func (n *Node) Reach() Reach {
	if n.reach == nil {
		return Reach{}
	}
	return n.reach.Reach()
}

// Discovery returns the node's peer discovery; nil before Start.
func (n *Node) Discovery() *discovery.Service { return n.disc }

// Addrs returns the node's full listen addresses, each ending in /p2p/<id>.
func (n *Node) Addrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// Status is a snapshot of what the node sees. The control API shows it as
// api.Status.
type Status struct {
	ID        string
	Version   string
	Addrs     []string
	StartedAt time.Time
	Uptime    time.Duration
	Peers     int
	DHTTable  int // peers in the DHT's routing table
	// DHTMode is the WAN table's configured mode (auto, server, client);
	// DHTModes each table's mode as of now, as table:mode.
	DHTMode  string
	DHTModes []string
	// Reach is the node's reachability, overall and per address.
	Reach  Reach
	Blocks int
	// Removed says why the node takes no appends when it was removed from
	// its cell; empty otherwise.
	Removed string
}

// Status reports what the node sees. It blocks only on counting the blocks.
func (n *Node) Status(ctx context.Context) (Status, error) {
	count, err := n.store.Count(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("peer: count blocks: %w", err)
	}
	st := Status{
		ID:        n.host.ID().String(),
		Version:   Version,
		StartedAt: n.started,
		Uptime:    n.now().Sub(n.started),
		Peers:     len(n.disc.Peers()),
		DHTTable:  n.dht.RoutingTableSize(),
		DHTMode:   n.opts.DHT.Mode.String(),
		Reach:     n.Reach(),
		Blocks:    count,
	}
	for _, a := range n.Addrs() {
		st.Addrs = append(st.Addrs, a.String())
	}
	for _, m := range n.dht.Mode() {
		st.DHTModes = append(st.DHTModes, fmt.Sprintf("%s:%s", m.Table, m.Mode))
	}
	if r := n.cell.Roster(); r != nil && !r.Has(n.host.ID()) {
		st.Removed = fmt.Sprintf("removed from cell %s (%q) by roster version %d: this node takes no more appends, and the cell accepts nothing it writes now",
			r.ID(), r.Name, r.Version)
	}
	return st, nil
}

// Connect dials a peer given by hand, as `exopeer connect` does. maddr must
// end in /p2p/<peer ID>. It blocks until connected or ctx ends.
func (n *Node) Connect(ctx context.Context, maddr ma.Multiaddr) (peer.ID, error) {
	ai, err := peer.AddrInfoFromP2pAddr(maddr)
	if err != nil {
		return "", fmt.Errorf("peer: %s: %w (the address must end in /p2p/<peer ID>)", maddr, err)
	}
	return ai.ID, n.disc.Connect(ctx, *ai)
}

// dhtProviders is the DHT as bitswap's provider finder. Its channel closes
// once ctx is done even while kad-dht is held in a write to a peer that
// stopped reading, which kad-dht's own (DHT.Routing) does not do.
type dhtProviders struct{ d *dht.DHT }

func (p dhtProviders) FindProvidersAsync(ctx context.Context, c cid.Cid, count int) <-chan peer.AddrInfo {
	return p.d.FindProviders(ctx, c, count)
}
