package simnet

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	leveldb "github.com/ipfs/go-ds-leveldb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	bhost "github.com/libp2p/go-libp2p/p2p/host/basic"
	cmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	blobservice "github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/chain/replica"
	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/discovery"
	messageservice "github.com/exopeer/exopeer/message/service"
	xpeer "github.com/exopeer/exopeer/peer"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/service"
)

// Config shapes a simulated network. The zero value of a field means its
// default.
type Config struct {
	// Seed decides every random choice of the network, of the scenarios
	// that use its Rand (topology, which lookups, fault times) and of the
	// nodes: their keys, and the random source each node gets (see
	// Net.AddNode), from which come its cell's keys, secrets and invite
	// codes, its chain's nonces and its parts' random choices.
	Seed uint64
	// Latency returns the one-way latency of the link between the nodes
	// with indexes a and b. nil: DefaultLatency.
	Latency func(a, b int) time.Duration
	// Bandwidth limits each link, in bytes per second, shared by both
	// directions. 0: unlimited. mocknet's limiter is a token bucket holding
	// one second of bandwidth, so an idle link first lets a second's worth
	// through at once.
	Bandwidth float64
	// MaxConnections is each node's connection manager high water mark;
	// it trims to three quarters of it. 0: 32.
	MaxConnections int
	// Chain configures every node's chain replica. Its Rand and Now are
	// ignored: the node's own (see Net.AddNode) are used.
	Chain replica.Config
	// Logger receives the nodes' logs, each with its node index. nil:
	// discard.
	Logger *slog.Logger
}

// DefaultLatency is the one-way latency of every link when Config.Latency
// is nil.
const DefaultLatency = 10 * time.Millisecond

// Net is a simulated network of exopeer nodes: complete peer.Nodes on a
// libp2p mocknet. Create it, and use it, inside one testing/synctest bubble
// (RunInBubble does that), so that time is virtual. Its methods are safe for
// concurrent use.
type Net struct {
	cfg Config
	mn  mocknet.Mocknet
	log *slog.Logger

	mu       sync.Mutex
	nodes    []*Node
	byID     map[peer.ID]*Node
	group    map[peer.ID]int         // partition group; absent: group 0
	cuts     map[[2]peer.ID]struct{} // pairs cut by Cut, both orders
	segments map[string]*Segment
	links    map[peer.ID]map[peer.ID]mocknet.Link // both directions
	closed   bool
	hosts    map[peer.ID]*simHost // each node's host of its current life
	// streamFaults are the StallStreams and ResetStreams not lifted.
	streamFaults []*streamFault

	// oneWay holds the pairs {from, to} of OneWay cuts; copied on write,
	// as every stream write looks at it.
	oneWay atomic.Pointer[map[[2]peer.ID]struct{}]
	fmu    sync.Mutex
	// changed is closed and replaced when faults or connections change.
	changed chan struct{}
	// capture, if set, sees every byte written on a stream (Capture).
	capture atomic.Pointer[CaptureFunc]
}

// New returns an empty network.
func New(cfg Config) *Net {
	if cfg.Latency == nil {
		cfg.Latency = func(int, int) time.Duration { return DefaultLatency }
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = 32
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Net{
		cfg: cfg, mn: mocknet.New(), log: log,
		byID: make(map[peer.ID]*Node), group: make(map[peer.ID]int),
		cuts:     make(map[[2]peer.ID]struct{}),
		segments: make(map[string]*Segment),
		links:    make(map[peer.ID]map[peer.ID]mocknet.Link),
		hosts:    make(map[peer.ID]*simHost),
		changed:  make(chan struct{}),
	}
}

// Rand returns a random source for purpose, fixed by the seed: two runs
// with one seed make the same choices, whatever else they do first.
func (n *Net) Rand(purpose string) *rand.Rand {
	h := sha256.Sum256(fmt.Appendf(nil, "exopeer simnet %d %s", n.cfg.Seed, purpose))
	return rand.New(rand.NewPCG(binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16])))
}

// Seed returns the network's seed.
func (n *Net) Seed() uint64 { return n.cfg.Seed }

// NodeConfig is how one node is set up.
type NodeConfig struct {
	// Bootstrap are the nodes it bootstraps the DHT from and keeps
	// connected. Empty: none.
	Bootstrap []*Node
	// Segment is the LAN segment it sits on. nil: none.
	Segment *Segment
	// DHT and Discovery override the node's defaults for the simulator
	// (one DHT table in server mode; discovery defaults). Bootstrap in
	// them is ignored: it comes from Bootstrap above.
	DHT       *dht.Config
	Discovery *discovery.Config
	// Dir is the directory the node keeps files in besides its datastore
	// (its store's index, under Dir/store, peer.StoreDir), on disk; it
	// survives crashes, as the datastore does. Empty: none, so the node
	// keeps no index and sends its store reads to a store member.
	Dir string
	// Types are trait types the node's store knows besides the built-in
	// ones.
	Types []store.Schema
	// Files configures the node's blobs and files (its pin policy);
	// zero means defaults. Its Rand and Now are the node's.
	Files blobservice.Config
	// Messages configures the node's messages (its quotas, its
	// courier); zero means defaults. Its Rand and Now are the node's.
	Messages messageservice.Config
}

// Node is one simulated node: a key, a datastore that survives crashes,
// and, while it is up, a running peer.Node.
type Node struct {
	Index int
	ID    peer.ID

	net   *Net
	key   crypto.PrivKey
	addr  ma.Multiaddr
	store *leveldb.Datastore
	cfg   NodeConfig

	routable atomic.Bool // its host may be dialled: up, or starting
	mu       sync.Mutex
	node     *xpeer.Node
	lives    int // how many times it started
}

// Peer returns the running node, or nil while it is down.
func (nd *Node) Peer() *xpeer.Node {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.node
}

// Up reports whether the node runs.
func (nd *Node) Up() bool { return nd.Peer() != nil }

// AddrInfo returns the node's ID and simulated address.
func (nd *Node) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: nd.ID, Addrs: []ma.Multiaddr{nd.addr}}
}

// memStoreOptions keep an in-memory leveldb small: the defaults (a 4 MiB
// write buffer allocated up front, an 8 MiB block cache) cost more than a
// whole simulated node, and a cache is pointless over memory.
//
// They also turn off goleveldb's write slowdown: with 8 tables at level 0
// a write sleeps 1 ms (its one time.Sleep) to let compaction catch up. In
// a synctest bubble that sleep ends only when every goroutine is durably
// blocked, and one waiting for a sync.Mutex is not: when the writer holds
// a lock another goroutine wants (the chain replica persists under its
// mutex), the bubble stalls for good. Writes still pause, on channels, at
// 12 tables.
var memStoreOptions = &leveldb.Options{
	WriteBuffer:            64 << 10,
	DisableBlockCache:      true,
	WriteL0SlowdownTrigger: math.MaxInt32,
}

// nodeKey derives node i's key from the seed.
func nodeKey(seed uint64, i int) crypto.PrivKey {
	h := sha256.Sum256(fmt.Appendf(nil, "exopeer simnet key %d %d", seed, i))
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(h[:]))
	if err != nil {
		panic(err) // a 64-byte Ed25519 key always unmarshals
	}
	return k
}

// AddNode adds a node and starts it. Nodes join when they are added: add
// more later for nodes that join late. The node's key, and the random
// source it gets each time it starts (a ChaCha8 stream keyed by the seed,
// its index and how many times it started: for simulation only), come from
// the seed; its clock is the bubble's virtual one.
func (n *Net) AddNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, errors.New("simnet: network closed")
	}
	i := len(n.nodes)
	key := nodeKey(n.cfg.Seed, i)
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		n.mu.Unlock()
		return nil, err
	}
	store, err := leveldb.NewDatastore("", memStoreOptions) // in memory: kept across restarts
	if err != nil {
		n.mu.Unlock()
		return nil, err
	}
	nd := &Node{
		Index: i, ID: id, net: n, key: key, store: store, cfg: cfg,
		addr: ma.StringCast(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4777", (i+1)>>16&255, (i+1)>>8&255, (i+1)&255)),
	}
	n.nodes = append(n.nodes, nd)
	n.byID[id] = nd
	n.mu.Unlock()
	return nd, n.start(ctx, nd)
}

// Nodes returns every node ever added, up or down, by index.
func (n *Net) Nodes() []*Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Node(nil), n.nodes...)
}

// start builds and starts nd's peer.Node on the simulated network.
func (n *Net) start(ctx context.Context, nd *Node) error {
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return errors.New("simnet: network closed")
	}
	var boot []peer.AddrInfo
	for _, b := range nd.cfg.Bootstrap {
		boot = append(boot, b.AddrInfo())
	}
	dcfg := dht.DefaultConfig()
	if nd.cfg.DHT != nil {
		dcfg = *nd.cfg.DHT
	} else {
		dcfg.LAN, dcfg.Mode = false, dht.ModeServer
	}
	dcfg.Bootstrap = boot
	disc := discovery.DefaultConfig()
	if nd.cfg.Discovery != nil {
		disc = *nd.cfg.Discovery
	}
	disc.Bootstrap = boot
	network := xpeer.Network{NewHost: func(priv crypto.PrivKey) (host.Host, error) { return n.newHost(nd, priv) }}
	if seg := nd.cfg.Segment; seg != nil {
		network.NewLAN = func() discovery.LAN { return seg.lan() }
	}
	chainCfg := n.cfg.Chain
	chainCfg.Rand, chainCfg.Now = nil, nil
	dcfg.Now, disc.Rand, disc.Now = nil, nil, nil
	nd.mu.Lock()
	rnd := nodeRand(n.cfg.Seed, nd.Index, nd.lives)
	nd.lives++
	nd.mu.Unlock()
	store, err := storeConfig(nd.cfg)
	if err != nil {
		return err
	}
	files := nd.cfg.Files
	files.Rand, files.Now = nil, nil
	if files.Spool == "" && nd.cfg.Dir != "" {
		files.Spool = filepath.Join(nd.cfg.Dir, xpeer.SpoolDir)
	}
	msgs := nd.cfg.Messages
	msgs.Rand, msgs.Now = nil, nil
	nd.routable.Store(true)
	node, err := xpeer.New(xpeer.Options{
		Key: nd.key, Datastore: nd.store, Network: network,
		DHT: dcfg, Discovery: disc, Chain: chainCfg, Logger: n.log.With("node", nd.Index),
		Store: store, Files: files, Messages: msgs,
		// time.Now is the bubble's virtual clock.
		Rand: rnd, Now: time.Now,
	})
	if err != nil {
		return err
	}
	if err := node.Start(ctx); err != nil {
		nd.routable.Store(false)
		return fmt.Errorf("simnet: start node %d: %w", nd.Index, err)
	}
	nd.mu.Lock()
	nd.node = node
	nd.mu.Unlock()
	return nil
}

// storeConfig is the store configuration of a node set up as cfg.
func storeConfig(cfg NodeConfig) (service.Config, error) {
	reg := store.NewRegistry()
	for _, s := range cfg.Types {
		if err := reg.Register(s); err != nil {
			return service.Config{}, fmt.Errorf("simnet: %w", err)
		}
	}
	c := service.Config{Registry: reg}
	if cfg.Dir != "" {
		c.Dir = filepath.Join(cfg.Dir, xpeer.StoreDir)
	}
	return c, nil
}

// nodeRand returns the random source of node i in its life-th start on a
// network of seed: a ChaCha8 stream (math/rand/v2) keyed by a hash of the
// three, safe for concurrent use. It is for simulation only: anyone who
// knows the seed knows every key and secret of the run. A stream per
// life, so that a restarted node never draws a nonce twice.
func nodeRand(seed uint64, i, life int) io.Reader {
	key := sha256.Sum256(fmt.Appendf(nil, "exopeer simnet node %d %d %d", seed, i, life))
	return &lockedReader{r: rand.NewChaCha8(key)}
}

// lockedReader makes a reader safe for concurrent use.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// newHost adds nd to the mocknet and wraps its host (see simHost).
func (n *Net) newHost(nd *Node, priv crypto.PrivKey) (host.Host, error) {
	n.mu.Lock()
	n.unlinkAll(nd.ID) // links of a previous life point at its closed network
	n.mu.Unlock()
	h, err := n.mn.AddPeer(priv, nd.addr)
	if err != nil {
		return nil, fmt.Errorf("simnet: add peer: %w", err)
	}
	bh, ok := h.(*bhost.BasicHost)
	if !ok {
		h.Close()
		return nil, fmt.Errorf("simnet: mocknet host is a %T", h)
	}
	cm, err := cmgr.NewConnManager(n.cfg.MaxConnections*3/4, n.cfg.MaxConnections, cmgr.WithGracePeriod(20*time.Second))
	if err != nil {
		h.Close()
		return nil, err
	}
	h.Network().Notify(cm.Notifee())
	// A dial that got its link before a Partition or a Crash removed it may
	// finish after: the connection it makes must not live.
	sh := &simHost{BasicHost: bh, net: n, cm: cm, streams: make(map[*simStream]struct{})}
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			if !n.allowed(c.LocalPeer(), c.RemotePeer()) {
				go c.Close()
			}
		},
		// A stream stalled by a fault ends when its connection does.
		DisconnectedF: func(network.Network, network.Conn) {
			sh.pruneStreams()
			n.wake()
		},
	})
	n.mu.Lock()
	n.hosts[nd.ID] = sh
	n.mu.Unlock()
	return sh, nil
}

// allowed reports whether a and b may be connected now: both known and up
// (or starting), on the same side of any partition, and their pair not cut.
func (n *Net) allowed(a, b peer.ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	na, nb := n.byID[a], n.byID[b]
	_, cut := n.cuts[[2]peer.ID{a, b}]
	return na != nil && nb != nil && na.routable.Load() && nb.routable.Load() && n.group[a] == n.group[b] && !cut
}

// route makes sure a link joins a and b, or says why there is no route.
func (n *Net) route(a, b peer.ID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	na, nb := n.byID[a], n.byID[b]
	switch {
	case na == nil || nb == nil:
		return noRoute(a, b, "unknown node")
	case !na.routable.Load() || !nb.routable.Load():
		return noRoute(a, b, "node is down")
	case n.group[a] != n.group[b]:
		return noRoute(a, b, "partitioned")
	}
	if _, cut := n.cuts[[2]peer.ID{a, b}]; cut {
		return noRoute(a, b, "link cut")
	}
	if _, ok := n.links[a][b]; ok {
		return nil
	}
	l, err := n.mn.LinkPeers(a, b)
	if err != nil {
		return noRoute(a, b, err.Error())
	}
	l.SetOptions(mocknet.LinkOptions{Latency: n.cfg.Latency(na.Index, nb.Index), Bandwidth: n.cfg.Bandwidth})
	n.addLink(a, b, l)
	n.addLink(b, a, l)
	return nil
}

func (n *Net) addLink(a, b peer.ID, l mocknet.Link) {
	m := n.links[a]
	if m == nil {
		m = make(map[peer.ID]mocknet.Link)
		n.links[a] = m
	}
	m[b] = l
}

// unlink removes the link between a and b, if any. Called with mu held.
func (n *Net) unlink(a, b peer.ID) {
	l, ok := n.links[a][b]
	if !ok {
		return
	}
	_ = n.mn.Unlink(l)
	delete(n.links[a], b)
	delete(n.links[b], a)
}

// unlinkAll removes every link of id. Called with mu held.
func (n *Net) unlinkAll(id peer.ID) {
	for other := range n.links[id] {
		n.unlink(id, other)
	}
}
