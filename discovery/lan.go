package discovery

import (
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// LAN finds peers on the local network segment. The node takes one from its
// caller: MDNS on a real network, a simulated segment in simnet.
type LAN interface {
	// Start announces h on the segment and calls found for every peer heard,
	// until Close. found may be called from any goroutine, concurrently, and
	// also shortly after Close returns; it must not block for long.
	Start(h host.Host, found func(peer.AddrInfo)) error
	// Close stops announcing and listening. It is idempotent.
	Close() error
}

// MDNSService is the DNS-SD service name exopeer announces on the LAN, so
// that it never answers, nor is answered by, other libp2p applications.
const MDNSService = "_exopeer._udp"

// MDNS is LAN discovery by real multicast DNS (RFC 6762, DNS-SD RFC 6763),
// through go-libp2p's mdns service: each node announces its addresses in TXT
// records under MDNSService and browses for the others. Loopback addresses
// heard are dropped: they point at the listener's own machine.
type MDNS struct {
	mu  sync.Mutex
	svc mdns.Service
}

// NewMDNS returns an MDNS that starts nothing until Start.
func NewMDNS() *MDNS { return &MDNS{} }

// Start implements LAN. It binds the multicast sockets and returns at once.
func (m *MDNS) Start(h host.Host, found func(peer.AddrInfo)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.svc != nil {
		return fmt.Errorf("discovery: mdns already started")
	}
	svc := mdns.NewMdnsService(h, MDNSService, notifee(func(ai peer.AddrInfo) { found(withoutLoopback(ai)) }))
	if err := svc.Start(); err != nil {
		return fmt.Errorf("discovery: start mdns: %w", err)
	}
	m.svc = svc
	return nil
}

// Close implements LAN.
func (m *MDNS) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.svc == nil {
		return nil
	}
	err := m.svc.Close()
	m.svc = nil
	return err
}

type notifee func(peer.AddrInfo)

func (f notifee) HandlePeerFound(ai peer.AddrInfo) { f(ai) }
