package peer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
)

// RelayMode says when a node runs the relay service for its cell.
type RelayMode string

const (
	// RelayAuto runs it while the node is reachable from the internet
	// (AutoNAT v2's verdicts, as the DHT's mode follows them).
	RelayAuto RelayMode = "auto"
	// RelayOn runs it from the start: a machine known to be public (a
	// VPS) does not wait for the verdicts.
	RelayOn RelayMode = "on"
	// RelayOff never runs it.
	RelayOff RelayMode = "off"
)

// relayResources are the relay service's resources: go-libp2p's defaults
// with no limit on a circuit and larger counts. A limited circuit (the
// defaults: 2 minutes, 128 KiB) is marked Limited at both ends, and
// bitswap, the DHT and most exopeer protocols do not open streams over
// one; the limit is the same for every peer (go-libp2p sends one to all),
// so the relay admits only the cell's members and contacts' devices
// (relayACL) instead. Resources replaces the whole struct: every count is
// set here, none left at zero (which refuses everything).
func relayResources() relay.Resources {
	res := relay.DefaultResources()
	res.Limit = nil
	// A member behind NAT gets one circuit per peer that reaches it,
	// counted per source and per destination: a cell of 50 devices.
	// go-libp2p's relay service scope allows 64 streams per peer.
	res.MaxCircuits = 64
	res.MaxReservations = 256
	// A household behind one NAT address.
	res.MaxReservationsPerIP = 32
	// The copy buffer of each direction of a circuit. A circuit holds two
	// streams of go-libp2p's relay service scope (the hop stream in, the
	// stop stream out) and two buffers of its memory; the scope allows
	// 256 streams and 16 MiB at the smallest memory budget (128 MiB), and
	// as much again per GiB of budget, so the streams bind: about 128
	// circuits through the relay at once, 128 more per GiB
	// (TestRelayScopeCircuits).
	res.BufferSize = 32 << 10
	return res
}

// RelayStats are the relay service's counts since the node started.
type RelayStats struct {
	// Running is true while the service runs.
	Running bool
	// CircuitsOpen are the circuits open now; Circuits those opened in all.
	CircuitsOpen int64
	Circuits     int64
	// Reservations are the reservations granted (refreshes included).
	Reservations int64
	// Bytes is what the service relayed, both directions.
	Bytes int64
	// Refused are the circuit and reservation requests refused, by
	// status (PERMISSION_DENIED: the ACL; RESOURCE_LIMIT_EXCEEDED; ...).
	Refused map[string]int64
}

// relayCounts is the relay service's relay.MetricsTracer: counts kept in
// memory for RelayStats. go-libp2p calls it from the relay's goroutines.
type relayCounts struct {
	running      atomic.Bool
	open         atomic.Int64
	circuits     atomic.Int64
	reservations atomic.Int64
	bytes        atomic.Int64

	mu      sync.Mutex
	refused map[pbv2.Status]int64 // bounded: one key per status of the protocol
}

var _ relay.MetricsTracer = (*relayCounts)(nil)

func (c *relayCounts) RelayStatus(enabled bool)                { c.running.Store(enabled) }
func (c *relayCounts) ConnectionOpened()                       { c.open.Add(1); c.circuits.Add(1) }
func (c *relayCounts) ConnectionClosed(time.Duration)          { c.open.Add(-1) }
func (c *relayCounts) ReservationAllowed(bool)                 { c.reservations.Add(1) }
func (c *relayCounts) ReservationClosed(int)                   {}
func (c *relayCounts) BytesTransferred(n int)                  { c.bytes.Add(int64(n)) }
func (c *relayCounts) ConnectionRequestHandled(s pbv2.Status)  { c.handled(s) }
func (c *relayCounts) ReservationRequestHandled(s pbv2.Status) { c.handled(s) }

func (c *relayCounts) handled(s pbv2.Status) {
	if s == pbv2.Status_OK {
		return
	}
	if _, known := pbv2.Status_name[int32(s)]; !known {
		s = pbv2.Status_UNUSED // a peer's made-up status: one key for all
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused == nil {
		c.refused = make(map[pbv2.Status]int64)
	}
	c.refused[s]++
}

func (c *relayCounts) stats() RelayStats {
	st := RelayStats{
		Running: c.running.Load(), CircuitsOpen: c.open.Load(), Circuits: c.circuits.Load(),
		Reservations: c.reservations.Load(), Bytes: c.bytes.Load(), Refused: map[string]int64{},
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for s, n := range c.refused {
		st.Refused[s.String()] = n
	}
	return st
}

// relayService is the node's part "relay": circuit relay v2 for the
// cell's members and its contacts' devices (relayACL), run while the
// node is reachable from the internet (RelayAuto, following reachWatch's
// held value, as the DHT's mode does), always (RelayOn) or never
// (RelayOff). Running it sets the hop protocol's handler, which identify
// pushes to connected peers: their AutoRelay then finds it.
type relayService struct {
	h      host.Host
	mode   RelayMode
	acl    relay.ACLFilter
	res    relay.Resources
	counts *relayCounts
	book   *circuitBook // the circuits, as the sweep judges them
	log    *slog.Logger

	mu      sync.Mutex
	public  bool // the last reachability told was public
	started bool
	closed  bool
	r       *relay.Relay // nil: not running
	// stopSweep tells the sweep that runs with r to end, and returns a
	// wait for it: called with mu held, the wait runs after mu is
	// released, since a sweep may be waiting for mu itself.
	stopSweep func() (wait func())
	// sweeps are the sweep goroutines running, stopped or not: Close
	// waits for them all (a sweep stopped by reach may outlive its r).
	sweeps sync.WaitGroup
}

// relaySweep is how often the running service ends the circuits the ACL
// no longer admits (a member removed from the cell, a contact deleted, a
// stranger's invite window closed) and frees the window slots no circuit
// holds: the ACL is read when a circuit opens, and a circuit has no limit.
const relaySweep = 2 * time.Second

// circuitACL is what the sweep asks of the ACL (relayACL has it).
type circuitACL interface {
	admitsCircuit(src, dest peer.ID) verdict
	freeSlots(live func(src, dest peer.ID) int)
}

// sweep judges the circuits book holds, by (source, destination): it
// resets the stop stream of each one acl says no to (an unknown verdict
// keeps it), which ends the circuit. It first drops from book the
// circuits whose stop stream is gone, and frees the window slots of the
// strangers with no circuit left to that member.
func sweep(h host.Host, book *circuitBook, acl circuitACL) {
	noted := book.ids() // before the streams are listed: a circuit noted later is kept
	stops := map[string]network.Stream{}
	for _, c := range h.Network().Conns() {
		for _, st := range c.GetStreams() {
			if st.Protocol() == proto.ProtoIDv2Stop && st.Stat().Direction == network.DirOutbound {
				stops[st.ID()] = st
			}
		}
	}
	book.keep(func(id string) bool { return !noted[id] || stops[id] != nil })
	live, n := map[circuit]verdict{}, map[circuit]int{}
	for id := range stops {
		if c, ok := book.get(id); ok {
			live[c] = verdictUnknown
			n[c]++
		}
	}
	acl.freeSlots(func(src, dest peer.ID) int { return n[circuit{src, dest}] })
	for c := range live {
		live[c] = acl.admitsCircuit(c.src, c.dest)
	}
	for id, st := range stops {
		if c, ok := book.get(id); ok && live[c] == verdictNo {
			_ = st.Reset()
			book.remove(id)
		}
	}
}

// startSweep runs sweep every relaySweep until stopSweep. Called with mu
// held.
func (s *relayService) startSweep() {
	acl, ok := s.acl.(circuitACL)
	if !ok {
		s.stopSweep = func() func() { return func() {} }
		return
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	s.sweeps.Add(1)
	go func() {
		defer s.sweeps.Done()
		defer wg.Done()
		t := time.NewTicker(relaySweep)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sweep(s.h, s.book, acl)
			}
		}
	}()
	s.stopSweep = func() func() { close(done); return wg.Wait }
}

func newRelayService(h host.Host, mode RelayMode, acl relay.ACLFilter, log *slog.Logger) (*relayService, error) {
	switch mode {
	case RelayAuto, RelayOn, RelayOff:
	case "":
		mode = RelayAuto
	default:
		return nil, fmt.Errorf("peer: relay service mode %q is not one of auto, on, off", mode)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &relayService{h: h, mode: mode, acl: acl, res: relayResources(), counts: &relayCounts{},
		book: newCircuitBook(maxCircuitBook), log: log}, nil
}

// reach is reachWatch's listener: it runs the service while r is public
// (in RelayAuto), once the part has started.
func (s *relayService) reach(r network.Reachability) {
	s.mu.Lock()
	s.public = r == network.ReachabilityPublic
	wait, _ := s.apply()
	s.mu.Unlock()
	wait()
}

// Start runs the service if it should run now. It does not block.
func (s *relayService) Start(context.Context) error {
	s.mu.Lock()
	s.started = true
	wait, err := s.apply()
	s.mu.Unlock()
	wait()
	return err
}

// apply starts or stops the relay as the mode and the reachability say.
// Called with mu held; the caller runs wait once it has released mu (a
// stopped sweep's end).
func (s *relayService) apply() (wait func(), err error) {
	want := s.mode == RelayOn || (s.mode == RelayAuto && s.public)
	switch {
	case !s.started || s.closed:
	case want && s.r == nil:
		rsv, _ := s.acl.(reservationHooks)
		r, err := relay.New(relayHost{Host: s.h, book: s.book, rsv: rsv}, relay.WithResources(s.res), relay.WithACL(s.acl), relay.WithMetricsTracer(s.counts))
		if err != nil {
			s.log.Warn("relay service did not start", "err", err)
			return func() {}, fmt.Errorf("peer: relay: %w", err)
		}
		s.r = r
		s.startSweep()
		s.log.Info("relay service started for the cell", "mode", s.mode)
	case !want && s.r != nil:
		wait, err := s.stop()
		s.log.Info("relay service stopped: not reachable from the internet")
		return wait, err
	}
	return func() {}, nil
}

// stop stops the running relay and its sweep and resets its circuits.
// Called with mu held; wait waits for the sweep, after mu is released.
func (s *relayService) stop() (wait func(), err error) {
	wait = s.stopSweep()
	err = s.r.Close()
	s.r = nil
	resetCircuits(s.h)
	s.book.keep(func(string) bool { return false })
	if err != nil {
		return wait, fmt.Errorf("peer: relay: close: %w", err)
	}
	return wait, nil
}

// stats returns the service's counts; safe before Start and after Close.
func (s *relayService) stats() RelayStats { return s.counts.stats() }

// Close stops the service and waits for its sweeps. Idempotent. Circuits
// open through it end as their streams are reset.
func (s *relayService) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.r == nil {
		s.mu.Unlock()
		s.sweeps.Wait()
		return nil
	}
	wait, err := s.stop()
	s.mu.Unlock()
	wait()
	s.sweeps.Wait()
	return err
}

// resetCircuits resets the streams of the circuits h relays: the hop
// streams sources opened to it and the stop streams it opened to
// destinations. go-libp2p's Relay.Close only removes the hop handler, and
// an unlimited circuit's copy goroutines would go on. h's own circuits
// through other relays (its outbound hop streams, the inbound stop
// streams of its reservations) are left alone.
func resetCircuits(h host.Host) {
	for _, c := range h.Network().Conns() {
		for _, st := range c.GetStreams() {
			dir := st.Stat().Direction
			if (st.Protocol() == proto.ProtoIDv2Hop && dir == network.DirInbound) ||
				(st.Protocol() == proto.ProtoIDv2Stop && dir == network.DirOutbound) {
				_ = st.Reset()
			}
		}
	}
}

// hopStreams counts the hop streams src has open to h.
func hopStreams(h host.Host, src peer.ID) int {
	n := 0
	for _, c := range h.Network().ConnsToPeer(src) {
		for _, st := range c.GetStreams() {
			if st.Protocol() == proto.ProtoIDv2Hop && st.Stat().Direction == network.DirInbound {
				n++
			}
		}
	}
	return n
}

// Relays configure the node's relays from the cell (Network.Relays).
type Relays struct {
	// Service says when the node runs the relay service for its cell
	// (config network.relay_service). Empty: RelayAuto.
	Service RelayMode
	// Static are relays for a cell with no public device (config
	// network.static_relays), tried after the cell's own.
	Static []peer.AddrInfo

	// punches is the hole punch tracer of RealNetwork's host (nil: none).
	punches *punchTracer
}

// contactCheck bounds the read of the contacts for one relay request.
const contactCheck = 2 * time.Second

// addRelays builds and registers parts "relay", "autorelay" and "meet"
// when the network has relays. Called by build, after the contacts.
func (n *Node) addRelays() error {
	cfg := n.opts.Network.Relays
	if cfg == nil {
		return nil
	}
	acl := relayACL{
		self: n.host.ID(),
		member: func(id peer.ID) bool {
			r := n.cell.Roster()
			return r != nil && r.Has(id)
		},
		rosterKnown: func() bool { return n.cell.Roster() != nil },
		contactDevice: func(id peer.ID) (bool, error) {
			ctx, cancel := context.WithTimeout(context.Background(), contactCheck)
			defer cancel()
			cs, err := n.cons.ByDevice(ctx, id)
			return len(cs) > 0, err
		},
		window: n.windows.admit,
		held:   n.windows.holds,
		free:   n.windows.free,
		hops:   func(src peer.ID) int { return hopStreams(n.host, src) },
		guests: newRelayGuests(maxRelayGuests, relayResources().ReservationTTL, n.now),
		contactOf: func(id peer.ID) ([]string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), contactCheck)
			defer cancel()
			cs, err := n.cons.ByDevice(ctx, id)
			return contactIDs(cs), err
		},
		perContact: newContactLedger(maxContactCircuits, maxContactsCircuits, maxCircuitBook, n.now),
	}
	var err error
	if n.relay, err = newRelayService(n.host, cfg.Service, acl, n.log.With("part", "relay")); err != nil {
		return err
	}
	ar, err := newAutoRelay(n.host, n.cell.Roster, cfg.Static, n.log.With("part", "autorelay"))
	if err != nil {
		return err
	}
	n.reach.onReach(n.relay.reach)
	n.reach.onReach(ar.reach)
	n.parts.add("relay", n.relay)
	n.parts.add("autorelay", ar)
	// A member gossip knows but the host cannot reach is dialled through
	// the cell's relays.
	n.parts.addRun("meet", newMeet(n.host, n.now, cellMeetMembers(n.cell), n.log.With("part", "meet")))
	return nil
}

// RelayStats returns the node's relay service's counts (all zero when the
// network has no relays). Safe once Start has returned.
func (n *Node) RelayStats() RelayStats {
	r := n.relay
	if r == nil {
		return (&relayCounts{}).stats()
	}
	return r.stats()
}
