package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/reachbus"
)

// AutoRelay's settings, each against a go-libp2p default that hurts a
// cell (see docs/architecture.md, "Relays from the cell").
const (
	// relayNum is the relays a node behind NAT holds a slot on.
	relayNum = 2
	// relayMaxCandidates bounds the candidates AutoRelay keeps.
	relayMaxCandidates = 8
	// relayMinInterval is how often AutoRelay may ask for candidates
	// again while it has none (default 30 s): a node that just joined
	// finds the cell's relays within 2 s of the roster, so that the
	// members that meet it through them (part "meet") find its slot; a
	// member whose relay starts later is found at the next ask. An ask
	// reads the roster and the peerstore, no I/O.
	relayMinInterval = 2 * time.Second
	// relayBackoff is how long AutoRelay leaves a candidate alone after
	// any reservation attempt, success included (default 1 h: a cell
	// relay that restarted would be unused for an hour). A contact's
	// device whose static relay refused it (the relay's cell did not
	// know it as a contact yet) gets its slot this long after the
	// contact exchange; a refused attempt costs the relay one stream.
	relayBackoff = 15 * time.Second
)

// relayCandidate is a roster member as the relay finder's peer source
// sees it.
type relayCandidate struct {
	id       peer.ID
	relay    bool // the member has the role relay
	hop      bool // the peerstore says it speaks the relay's hop protocol
	public   bool // the peerstore holds a public, non-relayed address of it
	addrInfo peer.AddrInfo
}

// relayCandidates orders the candidates for AutoRelay, at most n: the
// members that run a relay now (hop), those with the role relay first;
// then the members that may (a public address), relay role first; then
// the static relays, in config order. Members that are neither, and the
// node itself, are left out; no peer comes twice. Pure.
func relayCandidates(self peer.ID, members []relayCandidate, static []peer.AddrInfo, n int) []peer.AddrInfo {
	rank := func(c relayCandidate) int {
		r := 0
		if !c.hop {
			r += 2
		}
		if !c.relay {
			r++
		}
		return r
	}
	ms := slices.DeleteFunc(slices.Clone(members), func(c relayCandidate) bool {
		return !c.hop && !c.public
	})
	slices.SortStableFunc(ms, func(a, b relayCandidate) int { return rank(a) - rank(b) })
	out := make([]peer.AddrInfo, 0, min(n, len(ms)+len(static)))
	seen := make(map[peer.ID]bool)
	add := func(ai peer.AddrInfo) {
		if len(out) < n && ai.ID != self && !seen[ai.ID] {
			seen[ai.ID] = true
			out = append(out, ai)
		}
	}
	for _, c := range ms {
		add(c.addrInfo)
	}
	for _, ai := range static {
		add(ai)
	}
	return out
}

// hasPublicAddr reports whether addrs hold a public address that is not a
// relay's circuit address.
func hasPublicAddr(addrs []ma.Multiaddr) bool {
	for _, a := range addrs {
		if manet.IsPublicAddr(a) {
			if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err != nil {
				return true
			}
		}
	}
	return false
}

// reachHost is the host as AutoRelay sees it: its event bus carries the
// node's reachability (reachbus), which starts the relay finder while it
// is private or unknown and stops it while public; identify is the
// host's, so that the finder checks that a candidate speaks the hop
// protocol (without it, it takes every peer).
type reachHost struct {
	host.Host
	bus *reachbus.Bus
	ids identify.IDService
}

func (h *reachHost) EventBus() event.Bus           { return h.bus }
func (h *reachHost) IDService() identify.IDService { return h.ids }

// autoRelay is the node's part "autorelay": behind NAT, it holds slots on
// the cell's relays (members running part "relay"), found in the roster
// as it changes, then on the static relays; the host then advertises the
// relayed addresses (go-libp2p does while no address of its is confirmed
// reachable).
type autoRelay struct {
	h      *reachHost
	roster func() *cell.Roster
	static []peer.AddrInfo
	log    *slog.Logger

	ar   *autorelay.AutoRelay
	once sync.Once
}

func newAutoRelay(h host.Host, roster func() *cell.Roster, static []peer.AddrInfo, log *slog.Logger) (*autoRelay, error) {
	ih, ok := h.(interface{ IDService() identify.IDService })
	if !ok || ih.IDService() == nil {
		return nil, fmt.Errorf("peer: autorelay: host %T has no identify service", h)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &autoRelay{
		h:      &reachHost{Host: h, bus: reachbus.New(h.EventBus()), ids: ih.IDService()},
		roster: roster, static: static, log: log,
	}
	ar, err := autorelay.NewAutoRelay(a.h,
		autorelay.WithPeerSource(a.source),
		autorelay.WithMinCandidates(1),
		autorelay.WithBootDelay(0),
		autorelay.WithNumRelays(relayNum),
		autorelay.WithMaxCandidates(relayMaxCandidates),
		autorelay.WithMinInterval(relayMinInterval),
		autorelay.WithBackoff(relayBackoff),
	)
	if err != nil {
		return nil, fmt.Errorf("peer: autorelay: %w", err)
	}
	a.ar = ar
	return a, nil
}

// reach is reachWatch's listener.
func (a *autoRelay) reach(r network.Reachability) { a.h.bus.Set(r) }

// source is AutoRelay's peer source: relayCandidates from the roster as
// it is now and the peerstore, then the static relays.
func (a *autoRelay) source(ctx context.Context, n int) <-chan peer.AddrInfo {
	ps := a.h.Peerstore()
	var members []relayCandidate
	if r := a.roster(); r != nil {
		members = make([]relayCandidate, 0, len(r.Members))
		for _, m := range r.Members {
			addrs := ps.Addrs(m.Peer)
			hop, _ := ps.SupportsProtocols(m.Peer, proto.ProtoIDv2Hop)
			members = append(members, relayCandidate{
				id: m.Peer, relay: m.Roles&cell.RoleRelay != 0, hop: len(hop) > 0, public: hasPublicAddr(addrs),
				addrInfo: peer.AddrInfo{ID: m.Peer, Addrs: addrs},
			})
		}
	}
	cands := relayCandidates(a.h.ID(), members, a.static, n)
	out := make(chan peer.AddrInfo, len(cands))
	for _, c := range cands {
		out <- c
	}
	close(out)
	return out
}

// Start starts AutoRelay; the relay finder runs once the reachability,
// told by reachWatch, is private or unknown. It does not block.
func (a *autoRelay) Start(context.Context) error {
	a.ar.Start()
	return nil
}

// Close stops AutoRelay and waits for its goroutines. Idempotent.
//
// It closes go-libp2p's AutoRelay twice. Its Close cancels its context,
// stops the relay finder, then waits for its background goroutine; that
// goroutine may meanwhile take a reachability event (select picks among
// ready cases at random) and start the relay finder again after the
// stop, which then runs for good (the race detector's slower scheduling
// showed it as a leak in peer's tests). Once the first Close returned
// the background goroutine is gone, so the second one's stop ends any
// finder it started.
func (a *autoRelay) Close() error {
	var err error
	a.once.Do(func() {
		err = a.ar.Close()
		if err2 := a.ar.Close(); err == nil {
			err = err2
		}
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("peer: autorelay: %w", err)
		}
	})
	return err
}

// ParseStaticRelays reads relays' multiaddrs (config network.static_relays),
// each ending in /p2p/<peer ID>; addresses of one peer are merged. A bad
// entry is an error naming it.
func ParseStaticRelays(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	idx := make(map[peer.ID]int)
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("static relay %q is not a multiaddr: %w", s, err)
		}
		if _, err := m.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			return nil, fmt.Errorf("static relay %q is itself a relayed address", s)
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return nil, fmt.Errorf("static relay %q does not end in /p2p/<peer ID>: %w", s, err)
		}
		if len(ai.Addrs) == 0 {
			return nil, fmt.Errorf("static relay %q has no address before its /p2p/<peer ID>", s)
		}
		if i, ok := idx[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		idx[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, nil
}
