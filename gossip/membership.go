package gossip

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/ambient"
)

// Errors of the Membership.
var (
	ErrClosed     = errors.New("gossip: membership closed")
	ErrNotStarted = errors.New("gossip: membership not started")
	ErrLeft       = errors.New("gossip: membership left the cell")
)

// packetBudget is memberlist's "UDP buffer": the most it packs into one
// packet (a probe plus piggybacked gossip). Far below MaxPacketSize, so
// that encryption and framing always fit, and above MaxBroadcastSize.
const packetBudget = 16 << 10

// Membership is this node's view of its cell: memberlist over the host's
// libp2p streams, admitting only allowed peers with signed metadata. Create
// it with New, then Start; Close stops it. All methods are safe for
// concurrent use. One Membership per host: the protocol IDs are fixed.
type Membership struct {
	h          host.Host
	cfg        Config
	log        *slog.Logger
	self       peer.ID
	selfName   string
	protectTag string
	tr         *transport
	keyring    *memberlist.Keyring
	bq         *memberlist.TransmitLimitedQueue
	stats      *counters
	topics     *Topics
	meta       atomic.Pointer[[]byte] // this node's signed metadata
	alive      atomic.Int64           // members alive, this node included
	seen       seenSet                // broadcast IDs already received
	seqs       seqTable               // highest metadata sequence number seen, per member
	staleMeta  atomic.Uint64          // metadata refused as older than seen
	incs       incTable               // highest incarnation seen, per member (liveness.go)
	notifiee   *network.NotifyBundle  // the host's connection events, while started

	lmu    sync.Mutex // guards lost
	lost   map[peer.ID]struct{}
	lostCh chan struct{} // wakes followConnectivity

	lc sync.Mutex // serialises Start, Leave and Close

	metaMu    sync.Mutex // serialises metadata updates; guards app, flags and metaSeq
	app       []byte
	flags     byte
	metaSeq   uint64           // sequence number of the metadata signed last
	now       func() time.Time // Config.Now: the clock of sequence numbers and of the members' times
	resigning atomic.Bool      // noteOwn's update is under way
	refuting  atomic.Bool      // refuteAccused's update is under way
	refutedAt atomic.Int64     // when refuteAccused last re-announced (m.now, UnixNano)
	refutes   atomic.Uint64    // Stats.Refutes
	accused   accusations      // the accusations refuteAccused answered (refute.go)

	rand io.Reader // Config.Rand: broadcast IDs

	mu        sync.Mutex // guards the fields below
	ml        *memberlist.Memberlist
	started   bool
	left      bool
	closed    bool
	members   map[peer.ID]*memberState
	subs      map[chan Event]struct{}
	protected map[peer.ID]struct{}
	logged    map[string]struct{}

	done chan struct{} // closed by Close
	wg   sync.WaitGroup
}

// New returns a Membership for host h, whose key must be cfg.Key. It
// starts nothing.
func New(h host.Host, cfg Config) (*Membership, error) {
	cfg.Timing = cfg.Timing.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("gossip: peer ID of Config.Key: %w", err)
	}
	if id != h.ID() {
		return nil, fmt.Errorf("gossip: Config.Key is the key of %s, not of the host %s", id, h.ID())
	}
	keyring, err := memberlist.NewKeyring(nil, slices.Clone(cfg.GossipKey))
	if err != nil {
		return nil, fmt.Errorf("gossip: keyring: %w", err)
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	topics := cfg.Topics
	if topics == nil {
		topics = NewTopics()
	}
	m := &Membership{
		h: h, cfg: cfg, log: lg, self: id, selfName: id.String(), topics: topics,
		protectTag: "exopeer-gossip-" + hex.EncodeToString(cfg.Tag[:]),
		keyring:    keyring,
		stats:      new(counters),
		members:    make(map[peer.ID]*memberState),
		subs:       make(map[chan Event]struct{}),
		protected:  make(map[peer.ID]struct{}),
		logged:     make(map[string]struct{}),
		done:       make(chan struct{}),
		lost:       make(map[peer.ID]struct{}),
		lostCh:     make(chan struct{}, 1),
		now:        ambient.NowOr(cfg.Now),
		rand:       ambient.RandOr(cfg.Rand),
	}
	m.tr = newTransport(h, cfg.Tag, cfg.Allow, cfg.Timing, lg, m.stats)
	m.tr.now = func() time.Time { return m.now() }
	m.tr.onPacket = m.notePacket
	m.tr.onReach = m.checkReach
	m.tr.onStream = m.noteStream
	m.bq = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(max(1, m.alive.Load())) },
		RetransmitMult: cfg.Timing.RetransmitMult,
	}
	return m, nil
}

// Start signs this node's metadata, registers the transport's protocols
// and starts memberlist. It contacts nobody: see Join. ctx bounds only the
// start itself.
func (m *Membership) Start(ctx context.Context) error {
	m.lc.Lock()
	defer m.lc.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	bad := m.started || m.closed
	m.mu.Unlock()
	if bad {
		return errors.New("gossip: Start called twice or after Close")
	}
	for _, p := range m.h.Mux().Protocols() {
		if p == ProtocolPacket || p == ProtocolStream || p == ProtocolReach {
			return fmt.Errorf("gossip: %s already has a handler on this host", p)
		}
	}
	if err := m.setMeta(m.cfg.AppMeta(), 0); err != nil {
		return err
	}
	m.tr.start()
	ml, err := memberlist.Create(m.memberlistConfig())
	if err != nil {
		_ = m.tr.Shutdown()
		m.mu.Lock()
		m.closed = true // the transport cannot start again
		m.mu.Unlock()
		close(m.done)
		return fmt.Errorf("gossip: start memberlist: %w", err)
	}
	m.mu.Lock()
	m.ml, m.started = ml, true
	m.mu.Unlock()
	m.notifiee = &network.NotifyBundle{DisconnectedF: m.disconnected}
	m.h.Network().Notify(m.notifiee)
	m.wg.Go(m.followConnectivity)
	return nil
}

// memberlistConfig maps Config onto memberlist's.
func (m *Membership) memberlistConfig() *memberlist.Config {
	t := m.cfg.Timing
	c := memberlist.DefaultWANConfig()
	c.Name = m.selfName
	c.RequireNodeNames = true
	c.Transport = m.tr
	c.BindAddr, c.BindPort, c.AdvertisePort = "", FakePort, FakePort
	c.ProtocolVersion = memberlist.ProtocolVersionMax
	c.Keyring = m.keyring
	c.GossipVerifyIncoming, c.GossipVerifyOutgoing = true, true
	c.TCPTimeout = t.StreamTimeout
	c.ProbeInterval, c.ProbeTimeout = t.ProbeInterval, t.ProbeTimeout
	c.SuspicionMult, c.SuspicionMaxTimeoutMult = t.SuspicionMult, t.SuspicionMaxTimeoutMult
	c.IndirectChecks = t.IndirectChecks
	c.GossipInterval, c.GossipNodes, c.GossipToTheDeadTime = t.GossipInterval, t.GossipNodes, t.GossipToTheDead
	c.PushPullInterval = t.PushPullInterval
	c.RetransmitMult = t.RetransmitMult
	c.UDPBufferSize = packetBudget
	// Uncompressed, a message's length does not depend on what else
	// shares its packet (compression before encryption can leak that),
	// and a small cell's gossip is small anyway.
	c.EnableCompression = false
	d := delegate{m}
	c.Delegate, c.Events, c.Alive, c.Merge = d, d, d, d
	c.LogOutput, c.Logger = nil, log.New(logBridge{m.log}, "", 0)
	return c
}

// running returns memberlist if the Membership is started, not closed and
// has not left.
func (m *Membership) running() (*memberlist.Memberlist, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return nil, ErrClosed
	case !m.started:
		return nil, ErrNotStarted
	case m.left:
		return nil, ErrLeft
	}
	return m.ml, nil
}

// setMeta makes app this node's app metadata and signs it, with the
// flags set so far (a node that is leaving stays so). add, if not zero, is
// set too, and app is ignored: the last one stays.
//
// The sequence number is the wall clock in Unix nanoseconds, or one more
// than the last one if the clock has not moved past it, so that it grows
// across restarts as well: the others refuse older metadata of this node
// (seqTable). The others forget that number when the node leaves or
// fails, so a node that restarts with its clock behind is admitted again;
// one that restarts before they noticed signs again above its earlier
// number when gossip brings that back (noteOwn).
func (m *Membership) setMeta(app []byte, add byte) error {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	if add != 0 {
		app = m.app
	}
	flags := m.flags | add
	seq := max(uint64(max(m.now().UnixNano(), 0)), m.metaSeq+1)
	b, err := encodeMeta(m.cfg.Key, m.cfg.Tag, m.self, seq, flags, app)
	if err != nil {
		return err
	}
	m.app, m.flags, m.metaSeq = slices.Clone(app), flags, seq
	m.meta.Store(&b)
	return nil
}

// Join contacts the given members of the cell and exchanges state with
// them; gossip then brings the rest. Their addresses come from the host's
// peerstore (or an existing connection). It returns how many it reached,
// and an error only if it reached none. It blocks until every contact
// ends: ctx bounds the dials, Timing.StreamTimeout each exchange.
func (m *Membership) Join(ctx context.Context, peers []peer.ID) (int, error) {
	ml, err := m.running()
	if err != nil {
		return 0, err
	}
	var (
		mu   sync.Mutex
		n    int
		errs []error
		wg   sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	seen := make(map[peer.ID]bool)
	for _, p := range peers {
		if p == m.self || seen[p] {
			continue
		}
		seen[p] = true
		if !m.cfg.Allow(p) {
			fail(fmt.Errorf("%w: %s", ErrNotAllowed, p))
			continue
		}
		wg.Go(func() {
			if err := m.h.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
				fail(fmt.Errorf("gossip: connect to %s: %w", p, err))
				return
			}
			if _, err := ml.Join([]string{JoinAddress(p)}); err != nil {
				fail(fmt.Errorf("gossip: join %s: %w", p, err))
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
		})
	}
	wg.Wait()
	if n > 0 {
		return n, nil
	}
	if len(errs) == 0 {
		return 0, errors.New("gossip: join: no peer to contact")
	}
	return 0, fmt.Errorf("gossip: join: %w", errors.Join(errs...))
}

// timeout returns the time left before ctx's deadline, or def if it has
// none. Never zero: memberlist waits forever on a zero timeout.
func timeout(ctx context.Context, def time.Duration) time.Duration {
	d := def
	if dl, ok := ctx.Deadline(); ok {
		d = ambient.Until(dl)
	}
	return max(d, time.Millisecond)
}

// UpdateMeta reads Config.AppMeta again, signs it and gossips it. It waits
// until the update went out to the cell or ctx's deadline passes
// (Timing.StreamTimeout if it has none), which it reports as an error; the
// new metadata is in force either way, and push/pull spreads it later.
func (m *Membership) UpdateMeta(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ml, err := m.running()
	if err != nil {
		return err
	}
	if err := m.setMeta(m.cfg.AppMeta(), 0); err != nil {
		return err
	}
	if err := ml.UpdateNode(timeout(ctx, m.cfg.Timing.StreamTimeout)); err != nil {
		return fmt.Errorf("gossip: update metadata: %w", err)
	}
	return nil
}

// AddGossipKey installs key for decryption only, so that this node reads
// members that already use it. Rotating in two steps (AddGossipKey on
// every member, then SetGossipKey) loses no message.
func (m *Membership) AddGossipKey(key []byte) error {
	if len(key) != GossipKeySize {
		return fmt.Errorf("gossip: gossip key has %d bytes, want %d", len(key), GossipKeySize)
	}
	if err := m.keyring.AddKey(slices.Clone(key)); err != nil {
		return fmt.Errorf("gossip: add gossip key: %w", err)
	}
	return nil
}

// SetGossipKey makes key the key this node encrypts with. The previous key
// still decrypts for Timing.KeyGrace, then it is removed. Members that do
// not have key yet cannot read this node until they do (see AddGossipKey).
func (m *Membership) SetGossipKey(key []byte) error {
	if err := m.AddGossipKey(key); err != nil {
		return err
	}
	old := m.keyring.GetPrimaryKey()
	if bytes.Equal(old, key) {
		return nil
	}
	if err := m.keyring.UseKey(key); err != nil {
		return fmt.Errorf("gossip: use gossip key: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.wg.Go(func() {
		t := time.NewTimer(m.cfg.Timing.KeyGrace)
		defer t.Stop()
		select {
		case <-t.C:
			// Removing the primary key fails; it is in use again.
			if !bytes.Equal(m.keyring.GetPrimaryKey(), old) {
				_ = m.keyring.RemoveKey(old)
			}
		case <-m.done:
		}
	})
	return nil
}

// Refresh applies a change of Config.Allow: peers no longer allowed lose
// the connection manager's protection and their open streams, and the
// transport no longer talks with them, so memberlist declares them failed
// after its usual suspicion. Refusals are logged anew.
func (m *Membership) Refresh() {
	m.mu.Lock()
	for id := range m.protected {
		if !m.cfg.Allow(id) {
			m.unprotectLocked(id)
		}
	}
	clear(m.logged)
	m.mu.Unlock()
	m.seqs.prune(m.cfg.Allow)
	m.incs.prune(m.cfg.Allow)
	m.tr.dropDisallowed()
}

func (m *Membership) protectLocked(id peer.ID) {
	if _, ok := m.protected[id]; ok || m.h.ConnManager() == nil {
		return
	}
	m.h.ConnManager().Protect(id, m.protectTag)
	m.protected[id] = struct{}{}
}

func (m *Membership) unprotectLocked(id peer.ID) {
	m.h.ConnManager().Unprotect(id, m.protectTag)
	delete(m.protected, id)
}

// Leave tells the cell that this node leaves on purpose, so that the
// others mark it Left rather than Failed: it gossips its metadata with the
// leaving flag, then memberlist's leave message. It blocks until both went
// out or ctx's deadline (Timing.LeaveTimeout if none) passes. The node
// keeps answering probes until Close, but cannot join again.
func (m *Membership) Leave(ctx context.Context) error {
	m.lc.Lock()
	defer m.lc.Unlock()
	ml, err := m.running()
	if err != nil {
		return err
	}
	return m.leave(ml, timeout(ctx, m.cfg.Timing.LeaveTimeout))
}

// leave does Leave; called with lc held.
func (m *Membership) leave(ml *memberlist.Memberlist, d time.Duration) error {
	m.mu.Lock()
	m.left = true
	m.mu.Unlock()
	deadline := ambient.Deadline(d)
	if err := m.setMeta(nil, flagLeaving); err != nil {
		return err
	}
	var errs []error
	if err := ml.UpdateNode(max(ambient.Until(deadline)/2, time.Millisecond)); err != nil {
		errs = append(errs, err)
	}
	if err := ml.Leave(max(ambient.Until(deadline), time.Millisecond)); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("gossip: leave: %w", errors.Join(errs...))
	}
	return nil
}

// Close leaves the cell (for at most Timing.LeaveTimeout), shuts
// memberlist and the transport down, removes the connection protections,
// closes the subscriptions and waits for the goroutines this package
// started. memberlist's own goroutines are not waited for: see the package
// documentation. Idempotent.
func (m *Membership) Close() error {
	m.lc.Lock()
	defer m.lc.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	ml, started, left := m.ml, m.started, m.left
	m.mu.Unlock()
	var err error
	if started {
		m.h.Network().StopNotify(m.notifiee)
		if !left {
			if lerr := m.leave(ml, m.cfg.Timing.LeaveTimeout); lerr != nil {
				m.log.Debug("gossip leave on close", "err", lerr)
			}
		}
		if serr := ml.Shutdown(); serr != nil {
			err = fmt.Errorf("gossip: shut memberlist down: %w", serr)
		}
	}
	m.mu.Lock()
	m.closed = true
	for id := range m.protected {
		m.unprotectLocked(id)
	}
	for ch := range m.subs {
		close(ch)
	}
	clear(m.subs)
	m.mu.Unlock()
	close(m.done)
	m.wg.Wait()
	return err
}
