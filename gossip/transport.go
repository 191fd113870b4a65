package gossip

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/internal/ambient"
)

// The libp2p protocols of the transport. They are the same for every cell:
// identify tells every connected peer which protocols a host speaks, so
// they must not name the cell (the tag in the stream header does).
const (
	ProtocolPacket protocol.ID = "/exopeer/gossip/packet/1.0.0"
	ProtocolStream protocol.ID = "/exopeer/gossip/stream/1.0.0"
)

// FakePort is the port of every node's fake address.
const FakePort = 7946

// Transport errors.
var (
	ErrNotAllowed      = errors.New("gossip: peer not allowed")
	errUnknownPeer     = errors.New("gossip: no peer for address")
	errTransportClosed = errors.New("gossip: transport closed")
)

// FakeIP returns the address memberlist knows node id by: an IPv6 unique
// local address (fd00::/8) made of the first 15 bytes of
// SHA-256("exopeer gossip address\x00" || id). No packet is ever sent to it.
func FakeIP(id peer.ID) netip.Addr {
	h := sha256.Sum256(append([]byte("exopeer gossip address\x00"), id...))
	var a [16]byte
	a[0] = 0xfd
	copy(a[1:], h[:15])
	return netip.AddrFrom16(a)
}

// JoinAddress returns the address of node id in the form memberlist's
// Join takes: "<peer ID>/[<fake IP>]:<FakePort>".
func JoinAddress(id peer.ID) string {
	return id.String() + "/" + netip.AddrPortFrom(FakeIP(id), FakePort).String()
}

// transport is memberlist's NodeAwareTransport over a libp2p host: a
// packet is one short stream, a memberlist stream one libp2p stream. It
// talks only with allowed peers, whose identity libp2p has authenticated.
type transport struct {
	h       host.Host
	tag     [8]byte
	allow   func(peer.ID) bool
	timing  Timing
	log     *slog.Logger
	stats   *counters
	self    peer.ID
	selfIP  netip.Addr
	sem     chan struct{}
	packets chan *memberlist.Packet
	streams chan net.Conn

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	byIP   map[netip.Addr]peer.ID
	heard  map[peer.ID]time.Time
	now    func() time.Time // the clock of heard; the Membership's
	live   map[network.Stream]struct{}
	// onPacket, if set, reads each packet accepted from an allowed peer
	// (the Membership's notePacket); called before the packet is handed
	// on, and must not keep buf.
	onPacket func(buf []byte)
	// onReach, if set, checks for asker whether this node reaches target
	// (the Membership's checkReach); reachSem bounds the checks at once.
	onReach func(ctx context.Context, asker, target peer.ID) byte
	// onStream, if set, reads the first message of each direction of
	// every memberlist stream (the Membership's noteStream); it must not
	// keep the buffer.
	onStream func(msg []byte, sent bool)
	reachSem chan struct{}
}

func newTransport(h host.Host, tag [8]byte, allow func(peer.ID) bool, timing Timing, log *slog.Logger, stats *counters) *transport {
	ctx, cancel := context.WithCancel(context.Background())
	t := &transport{
		h: h, tag: tag, allow: allow, timing: timing, log: log, stats: stats,
		self: h.ID(), selfIP: FakeIP(h.ID()),
		sem:      make(chan struct{}, timing.MaxPacketsInFlight),
		reachSem: make(chan struct{}, maxReachChecks),
		packets:  make(chan *memberlist.Packet, 64),
		streams:  make(chan net.Conn),
		ctx:      ctx, cancel: cancel,
		byIP:  make(map[netip.Addr]peer.ID),
		heard: make(map[peer.ID]time.Time),
		live:  make(map[network.Stream]struct{}),
		now:   ambient.Now,
	}
	t.byIP[t.selfIP] = t.self
	return t
}

// allowLimited lets gossip's streams ride on a limited (relayed)
// connection: a member reachable only through a relay is probed, and
// gossiped with, through it, rather than declared dead because no direct
// connection can be had. Gossip is small (a probe round is a few packets
// of at most packetBudget bytes), well within a relay's limits, and the
// cell's own relays carry it without any (issue 15).
func allowLimited(ctx context.Context) context.Context {
	return network.WithAllowLimitedConn(ctx, "exopeer gossip")
}

// start registers the stream handlers.
func (t *transport) start() {
	t.h.SetStreamHandler(ProtocolPacket, t.handlePacket)
	t.h.SetStreamHandler(ProtocolStream, t.handleStream)
	t.h.SetStreamHandler(ProtocolReach, t.handleReach)
}

// learn records id's fake address.
func (t *transport) learn(id peer.ID) {
	ip := FakeIP(id)
	t.mu.Lock()
	t.byIP[ip] = id
	t.mu.Unlock()
}

// resolve finds the peer a memberlist address names: by its node name, or
// else by its fake IP.
func (t *transport) resolve(a memberlist.Address) (peer.ID, error) {
	if a.Name != "" {
		id, err := peer.Decode(a.Name)
		if err != nil {
			return "", fmt.Errorf("gossip: node name %q: %w", a.Name, err)
		}
		return id, nil
	}
	ap, err := netip.ParseAddrPort(a.Addr)
	if err != nil {
		return "", fmt.Errorf("gossip: address %q: %w", a.Addr, err)
	}
	t.mu.Lock()
	id, ok := t.byIP[ap.Addr()]
	t.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("%w %s", errUnknownPeer, a.Addr)
	}
	return id, nil
}

// heardFrom records that an allowed peer just spoke to us.
func (t *transport) heardFrom(id peer.ID, now time.Time) {
	t.mu.Lock()
	t.heard[id] = now
	t.byIP[FakeIP(id)] = id
	t.mu.Unlock()
}

// lastHeard returns when id last sent us a valid packet or stream.
func (t *transport) lastHeard(id peer.ID) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.heard[id]
	return at, ok
}

// enter registers a goroutine of the transport; false once it is closed.
func (t *transport) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// track records a stream to reset at shutdown; false once closed.
func (t *transport) track(s network.Stream) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.live[s] = struct{}{}
	return true
}

func (t *transport) untrack(s network.Stream) {
	t.mu.Lock()
	delete(t.live, s)
	t.mu.Unlock()
}

// conn wraps s as a net.Conn, tracked until it is closed.
func (t *transport) conn(s network.Stream, remote peer.ID) *streamConn {
	return newStreamConn(s,
		&net.TCPAddr{IP: t.selfIP.AsSlice(), Port: FakePort},
		&net.TCPAddr{IP: FakeIP(remote).AsSlice(), Port: FakePort},
		t.untrack)
}

// FinalAdvertiseAddr returns this node's fake address, whatever memberlist
// was configured with.
func (t *transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.selfIP.AsSlice(), FakePort, nil
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *transport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends b as one packet and returns at once: the stream is
// opened and written by a goroutine, bounded in number and in time. A
// packet to a peer that is not allowed, or beyond MaxPacketsInFlight, is
// dropped and counted, as UDP would lose it.
func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := ambient.Deadline(0) // for memberlist, which subtracts its own clock
	id, err := t.resolve(a)
	if err != nil {
		return now, err
	}
	if len(b) > MaxPacketSize {
		return now, fmt.Errorf("%w: %d bytes", ErrPacketTooLarge, len(b))
	}
	if id == t.self {
		return now, errors.New("gossip: packet to self")
	}
	if !t.allow(id) {
		t.stats.refusedOutbound.Add(1)
		return now, nil
	}
	select {
	case t.sem <- struct{}{}:
	default:
		t.stats.packetsDropped.Add(1)
		return now, nil
	}
	if !t.enter() {
		<-t.sem
		return now, errTransportClosed
	}
	frame := appendPacket(make([]byte, 0, headerSize+packetLenSize+len(b)), t.tag, b)
	go t.sendPacket(id, frame)
	return now, nil
}

// sendPacket writes one packet stream. Run by WriteToAddress.
func (t *transport) sendPacket(id peer.ID, frame []byte) {
	defer t.wg.Done()
	defer func() { <-t.sem }()
	ctx, cancel := context.WithTimeout(t.ctx, t.timing.PacketTimeout)
	defer cancel()
	s, err := t.h.NewStream(allowLimited(ctx), id, ProtocolPacket)
	if err != nil {
		t.stats.packetsFailed.Add(1)
		t.log.Debug("gossip packet not sent", "peer", id, "err", err)
		return
	}
	c := t.conn(s, id)
	if !t.track(s) {
		s.Reset()
		return
	}
	_ = c.SetWriteDeadline(ambient.Deadline(t.timing.PacketTimeout))
	if _, err := c.Write(frame); err != nil {
		t.stats.packetsFailed.Add(1)
		t.log.Debug("gossip packet not sent", "peer", id, "err", err)
		c.reset()
		return
	}
	t.stats.packetsSent.Add(1)
	_ = c.Close()
}

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream to the node and writes its header. A
// node that is not allowed is refused (ErrNotAllowed), and counted.
func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	id, err := t.resolve(a)
	if err != nil {
		return nil, err
	}
	if !t.allow(id) {
		t.stats.refusedOutbound.Add(1)
		return nil, fmt.Errorf("%w: %s", ErrNotAllowed, id)
	}
	if !t.enter() {
		return nil, errTransportClosed
	}
	defer t.wg.Done()
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	s, err := t.h.NewStream(allowLimited(ctx), id, ProtocolStream)
	if err != nil {
		return nil, fmt.Errorf("gossip: open stream to %s: %w", id, err)
	}
	if !t.track(s) {
		s.Reset()
		return nil, errTransportClosed
	}
	c := t.conn(s, id)
	_ = c.SetWriteDeadline(ambient.Deadline(timeout))
	if _, err := c.Write(appendHeader(nil, t.tag)); err != nil {
		c.reset()
		return nil, fmt.Errorf("gossip: write stream header to %s: %w", id, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	c.limitReads(MaxStreamSize)
	c.teeFirst(t.onStream)
	return c, nil
}

// admit checks an incoming stream: its peer must be allowed and its header
// right, read within StreamTimeout. It returns the stream as a conn, or nil
// after resetting it.
func (t *transport) admit(s network.Stream) *streamConn {
	id := s.Conn().RemotePeer()
	if !t.allow(id) {
		t.stats.rejectedInbound.Add(1)
		s.Reset()
		return nil
	}
	if !t.track(s) {
		s.Reset()
		return nil
	}
	c := t.conn(s, id)
	_ = c.SetReadDeadline(ambient.Deadline(t.timing.StreamTimeout))
	if err := readHeader(c, t.tag); err != nil {
		t.stats.rejectedInbound.Add(1)
		t.log.Debug("gossip stream rejected", "peer", id, "err", err)
		c.reset()
		return nil
	}
	return c
}

// handlePacket receives one packet stream.
func (t *transport) handlePacket(s network.Stream) {
	if !t.enter() {
		s.Reset()
		return
	}
	defer t.wg.Done()
	c := t.admit(s)
	if c == nil {
		return
	}
	id := s.Conn().RemotePeer()
	_ = c.SetReadDeadline(ambient.Deadline(t.timing.PacketTimeout))
	buf, err := readPacketBody(c)
	if err != nil {
		t.stats.rejectedInbound.Add(1)
		t.log.Debug("gossip packet rejected", "peer", id, "err", err)
		c.reset()
		return
	}
	// Heard from before the close, which the sender sees.
	t.heardFrom(id, t.now())
	t.stats.packetsReceived.Add(1)
	if t.onPacket != nil {
		t.onPacket(buf)
	}
	_ = c.Close()
	// The timestamp is memberlist's: it measures round trips with it
	// against its own reading of the runtime's clock.
	p := &memberlist.Packet{Buf: buf, From: &net.UDPAddr{IP: FakeIP(id).AsSlice(), Port: FakePort}, Timestamp: ambient.Deadline(0)}
	select {
	case t.packets <- p:
	case <-t.ctx.Done():
	}
}

// handleStream receives one memberlist stream and hands it to memberlist.
func (t *transport) handleStream(s network.Stream) {
	if !t.enter() {
		s.Reset()
		return
	}
	defer t.wg.Done()
	c := t.admit(s)
	if c == nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	c.limitReads(MaxStreamSize)
	c.teeFirst(t.onStream)
	t.heardFrom(s.Conn().RemotePeer(), t.now())
	select {
	case t.streams <- c:
	case <-t.ctx.Done():
		c.reset()
	}
}

// dropDisallowed resets the open streams of peers no longer allowed.
func (t *transport) dropDisallowed() {
	t.mu.Lock()
	var drop []network.Stream
	for s := range t.live {
		if !t.allow(s.Conn().RemotePeer()) {
			drop = append(drop, s)
		}
	}
	t.mu.Unlock()
	for _, s := range drop {
		s.Reset()
	}
}

// Shutdown removes the handlers, resets every open stream and waits for
// the transport's goroutines. memberlist calls it first in its Shutdown.
func (t *transport) Shutdown() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	live := make([]network.Stream, 0, len(t.live))
	for s := range t.live {
		live = append(live, s)
	}
	t.mu.Unlock()
	t.h.RemoveStreamHandler(ProtocolPacket)
	t.h.RemoveStreamHandler(ProtocolStream)
	t.h.RemoveStreamHandler(ProtocolReach)
	t.cancel()
	for _, s := range live {
		s.Reset()
	}
	t.wg.Wait()
	return nil
}

// counters are the Stats, updated atomically.
type counters struct {
	packetsSent, packetsReceived, packetsDropped, packetsFailed    atomic.Uint64
	refusedOutbound, rejectedInbound, rejectedNodes, eventsDropped atomic.Uint64
	badBroadcasts, suspectedLost, lostUnknown, lostChecked         atomic.Uint64
	lostReachable, lostUndecided, reachBusy                        atomic.Uint64
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)
