package blocks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsclient "github.com/ipfs/boxo/bitswap/client"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	libp2pnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/internal/delimited"
)

// ErrNotRunning is wrapped by the error of a fetch on an Exchange that has
// not been started or has been closed.
var ErrNotRunning = errors.New("blocks: exchange not running")

// targetMessageSize is how many bytes of blocks bitswap's server gathers
// into one message before sending it (boxo's default is 16 KiB). The server
// opens a new stream for every message and does not notice when the
// receiver's libp2p resource manager resets it (the default limit is 64
// inbound streams per peer and protocol): the blocks are silently lost and
// the requester waits for its rebroadcast, measured at about 45 s. With
// 16 KiB messages, fetches of 100 blocks of 16 KiB (100 streams each) on
// loopback stalled so in a quarter to a half of the rounds we ran; with
// 256 KiB messages (7 streams each) none of about 150 did. Blocks of
// 256 KiB and more still go one per message. See ipfs/kubo#9824 and
// ipfs/boxo#66.
const targetMessageSize = 256 << 10

// dontHaveTimeouts is when bitswap's client gives up on a want-block a peer
// has not answered and asks another peer: boxo's defaults, but never
// before 2 s. Its own floor, 50 ms, and twice the recent message latency
// fire while a peer is still sending the blocks asked before (a 1 MiB
// leaf takes 84 ms over 100 Mbit/s, and a window of them is queued): the
// want then goes to a second peer and the block comes twice. Measured
// with exopeer-sim blob: see docs/simnet.md.
func dontHaveTimeouts() *bsclient.DontHaveTimeoutConfig {
	c := bsclient.DefaultDontHaveTimeoutConfig()
	c.MinTimeout = 2 * time.Second
	return c
}

// Exchange serves the blocks of a Store to peers and fetches missing
// blocks from them with bitswap (see the package documentation for the
// protocol). It serves a block only to the peers its Gate lets read it,
// and tells other peers nothing about it. It is safe for concurrent use.
//
// Bitswap sends every message on a new stream of ProtocolID, and a stream
// that the receiver's libp2p resource manager refuses loses its blocks
// until the requester asks again (about 45 s later). The exchange keeps
// the number of streams low (see targetMessageSize); a host that fetches
// from many peers at once, or whose resource manager is stricter than
// libp2p's defaults, should allow ProtocolID enough inbound streams per
// peer.
type Exchange struct {
	host  host.Host
	store *Store
	gate  *Gate
	watch *watch
	// public holds the CIDs that sessions of public blobs want, which
	// any peer may be asked for (registered as an Asker on gate).
	public *cidSet
	// named holds the CIDs that sessions naming their peers want
	// (SessionOptions.Peers), each with those peers (an Asker on gate).
	named *peerCIDSet
	cfg   Config
	log   *slog.Logger
	// repairs serialize the repairs of corrupt stored blocks, by CID
	// (repair.go).
	repairs [repairStripes]sync.Mutex

	mu     sync.Mutex // guards bs and closed; held for all of Start and Close
	bs     *bitswap.Bitswap
	closed bool
}

// NewExchange returns an Exchange for store over h, or an error wrapping
// ErrInvalidConfig. It starts nothing and sends nothing: call Start. The
// Exchange does not own h or store; close h only after the Exchange.
func NewExchange(h host.Host, store *Store, cfg Config) (*Exchange, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	e := &Exchange{host: h, store: store, gate: new(Gate), public: newCIDSet(), named: newPeerCIDSet(), cfg: cfg, log: cfg.Logger}
	e.gate.RegisterAsker(e.public)
	e.gate.RegisterAsker(e.named)
	e.watch = newWatch(cfg.JunkLimit, cfg.CutOff, ambient.NowOr(cfg.Now), func(p peer.ID) {
		e.log.Info("peer cut off: it sent blocks nobody wanted", "peer", p.String(), "for", cfg.CutOff)
		if err := h.Network().ClosePeer(p); err != nil {
			e.log.Debug("closing cut-off peer", "peer", p.String(), "err", err)
		}
	})
	return e, nil
}

// Gate returns the gate that decides which peers the exchange serves which
// blocks to, and which peers it asks for which blocks. It serves nothing
// until owners are registered on it, and asks nobody for a block until an
// asker lets it, but for the blocks that sessions of public blobs want
// (SessionOptions.Public), which any peer may be asked for.
func (e *Exchange) Gate() *Gate { return e.gate }

// Start constructs bitswap on the host: it registers the stream handler for
// /exopeer/ipfs/bitswap/1.2.0 and subscribes to the host's connection
// events, from which bitswap learns its peers. Call Start before the host
// connects to peers. Peers already connected when Start runs are adopted
// too, but one that connects or disconnects while Start runs may be missed
// until bitswap next hears from it.
//
// Start does not block on the network. ctx is used only for its values:
// cancelling it does not stop the exchange; Close does. Start fails if the
// Exchange was already started or closed.
func (e *Exchange) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("blocks: start: %w", ErrNotRunning)
	}
	if e.bs != nil {
		return errors.New("blocks: exchange already started")
	}

	evm := bsnetwork.NewConnectEventManager()
	// bitswap's reader allocates a message's announced length (up to
	// 4 MiB) from its prefix: the gate hands it a message only once all of
	// it has arrived.
	network := bsnet.NewFromIpfsHost(delimited.GateHost(e.host, libp2pnet.MessageSizeMax),
		bsnet.Prefix(protocolPrefix),
		// The prefix is added to these IDs; the slice must be fresh
		// because bsnet rewrites it in place.
		bsnet.SupportedProtocols([]protocol.ID{bsnet.ProtocolBitswap}),
		bsnet.WithConnectEventManager(evm),
	)
	e.bs = bitswap.New(context.WithoutCancel(ctx), gatedNetwork{watchedNetwork{network, e.watch}, e.gate}, e.cfg.ProviderFinder,
		e.store.served(), // what it serves is hashed by the receiver
		// Refused wants are dropped on arrival (their block is not even
		// looked up); gatedNetwork checks again what is sent.
		bitswap.WithPeerBlockRequestFilter(e.gate.MayRead),
		bitswap.ProviderSearchDelay(e.cfg.ProviderSearchDelay),
		bitswap.WithTargetMessageSize(targetMessageSize),
		bitswap.EngineBlockstoreWorkerCount(e.cfg.BlockstoreWorkers),
		bitswap.EngineTaskWorkerCount(e.cfg.TaskWorkers),
		bitswap.TaskWorkerCount(e.cfg.TaskWorkers),
		// The watch attributes fetched blocks to peers and counts junk.
		bitswap.WithTracer(e.watch),
		// Otherwise bitswap's client looks every received block up in
		// the store, for a duplicate counter nobody reads (go-ds-leveldb
		// reads the whole value to answer Has).
		bitswap.WithoutDuplicatedBlockStats(),
		bitswap.WithClientOption(bsclient.WithDontHaveTimeoutConfig(dontHaveTimeouts())),
	)

	// bitswap only hears of connections made from now on; tell it about
	// the existing ones, skipping limited (relayed) connections as bsnet
	// itself does.
	for _, p := range e.host.Network().Peers() {
		if hasUnlimitedConn(e.host, p) {
			evm.Connected(p)
		}
	}
	e.log.Debug("exchange started", "protocol", string(ProtocolID))
	return nil
}

func hasUnlimitedConn(h host.Host, p peer.ID) bool {
	for _, c := range h.Network().ConnsToPeer(p) {
		if !c.Stat().Limited {
			return true
		}
	}
	return false
}

// running returns bitswap, or nil before Start and after Close.
func (e *Exchange) running() *bitswap.Bitswap {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bs
}

// Close stops bitswap: it removes the stream handler, stops listening to
// connection events, ends pending fetches, and waits for bitswap's request
// workers. Some of bitswap's client goroutines exit shortly after Close
// returns (boxo does not wait for them). Close is idempotent; a Close
// concurrent with another waits for it. It does not close the host or the
// store.
func (e *Exchange) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if e.bs == nil {
		return nil
	}
	// bsnet registers its handler at Start but never removes it.
	e.host.RemoveStreamHandler(ProtocolID)
	err := e.bs.Close()
	e.bs = nil
	e.log.Debug("exchange stopped")
	return err
}

// Put stores b and announces it to bitswap, so that peers already waiting
// for it receive it now. It blocks like Store.Put. Before Start and after
// Close it only stores b.
func (e *Exchange) Put(ctx context.Context, b blockformat.Block) error {
	return e.PutMany(ctx, []blockformat.Block{b})
}

// PutMany stores bs as Store.PutMany does and announces them as Put does.
// The Exchange keeps no reference to the slice bs.
func (e *Exchange) PutMany(ctx context.Context, bs []blockformat.Block) error {
	if err := e.store.PutMany(ctx, bs); err != nil {
		return err
	}
	if b := e.running(); b != nil {
		return b.NotifyNewBlocks(ctx, bs...)
	}
	return nil
}

// keep stores fetched blocks and announces them to peers that want them.
// It does not hash them again: every block bitswap hands out was made by
// its message decoder from the received bytes, under the CID it computed
// from them (bsmsg.NewWantlistBlock: prefix.Sum of the data), and callers
// pass only blocks whose CID equals one they wanted. That hash is the one
// check of bytes from the network; a second one here cost a SHA-256 pass
// per fetched byte (BenchmarkFetchLoopback, README.md).
func (e *Exchange) keep(ctx context.Context, bs *bitswap.Bitswap, blks []blockformat.Block) error {
	if err := e.store.PutOwn(ctx, blks); err != nil {
		return err
	}
	return bs.NotifyNewBlocks(ctx, blks...)
}

// Get returns the block for c from the store, or else fetches it from
// connected peers (and from ProviderFinder's, if configured), verifies it,
// stores it and returns it. It blocks until the block arrives or ctx ends:
// with no peer that has the block it waits for ctx, so give ctx a
// deadline. A stored record that fails verification is deleted and
// fetched again (logged once, with its CID); before Start and after Close
// it gives an error wrapping ErrCorrupt. The returned block's data belongs
// to the caller.
func (e *Exchange) Get(ctx context.Context, c cid.Cid) (blockformat.Block, error) {
	bs := e.running()
	if bs == nil {
		b, err := e.store.Get(ctx, c)
		if err == nil || !errors.Is(err, ErrNotFound) || !c.Defined() {
			return b, err
		}
		return nil, fmt.Errorf("blocks: fetch %s: %w", c, ErrNotRunning)
	}
	b, err := e.getOrMissing(ctx, c)
	if b != nil || err != nil {
		return b, err
	}
	done := e.watch.want(nil, []cid.Cid{c})
	fb, err := bs.GetBlock(ctx, c)
	done()
	if err != nil {
		if ctx.Err() == nil && e.running() == nil {
			err = ErrNotRunning
		}
		return nil, fmt.Errorf("blocks: fetch %s: %w", c, err)
	}
	// Bitswap only hands out a block whose data hashed to a wanted CID
	// (see keep); one under any other CID is hashed against c here.
	b, err = blockformat.NewBlockWithCid(fb.RawData(), c)
	if err != nil {
		return nil, fmt.Errorf("blocks: fetch %s: %w", c, err)
	}
	if !fb.Cid().Equals(c) {
		if err := checkBlock(b); err != nil {
			return nil, fmt.Errorf("blocks: fetch %s: %w", c, err)
		}
	}
	if err := e.keep(ctx, bs, []blockformat.Block{b}); err != nil {
		return nil, fmt.Errorf("blocks: fetch %s: %w", c, err)
	}
	e.log.Debug("block fetched", "cid", c.String(), "size", len(b.RawData()))
	return b, nil
}

// GetMany returns the blocks for cs, in the order of cs (a repeated CID
// gives the same block twice). Blocks missing from the store are fetched
// together in one bitswap session (a Session of its own), verified and
// stored. It blocks until all have arrived or ctx ends; then it returns an
// error, but keeps the blocks fetched so far in the store. It does not
// modify cs.
func (e *Exchange) GetMany(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	s := e.NewSession(ctx, SessionOptions{})
	defer s.Close()
	return s.GetBlocks(ctx, cs)
}
