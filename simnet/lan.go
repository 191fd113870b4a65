package simnet

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/discovery"
)

// AnnounceInterval is how often a node on a simulated LAN segment announces
// itself again, as an mDNS responder does.
const AnnounceInterval = time.Minute

// announceDelay is how long an announcement takes to reach the segment.
const announceDelay = time.Millisecond

// Segment is a simulated LAN: the nodes on it hear each other's
// announcements as they hear mDNS on a real LAN, and nothing else does.
type Segment struct {
	name string
	net  *Net // announcements do not cross partitions, nor reach nodes down

	mu      sync.Mutex
	members map[*segmentLAN]struct{}
}

// Segment returns the LAN segment called name, creating it.
func (n *Net) Segment(name string) *Segment {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.segments[name]
	if s == nil {
		s = &Segment{name: name, net: n, members: make(map[*segmentLAN]struct{})}
		n.segments[name] = s
	}
	return s
}

func (s *Segment) lan() discovery.LAN { return &segmentLAN{seg: s} }

// segmentLAN is one node's discovery.LAN on a segment.
type segmentLAN struct {
	seg *Segment

	mu     sync.Mutex
	h      host.Host
	found  func(peer.AddrInfo)
	timer  *time.Timer
	closed bool
}

// Start implements discovery.LAN: it joins the segment, announces itself,
// hears the members already there (their answers to its query), and
// announces again every AnnounceInterval.
func (l *segmentLAN) Start(h host.Host, found func(peer.AddrInfo)) error {
	l.mu.Lock()
	l.h, l.found = h, found
	l.mu.Unlock()
	s := l.seg
	s.mu.Lock()
	var others []*segmentLAN
	for m := range s.members {
		others = append(others, m)
	}
	s.members[l] = struct{}{}
	s.mu.Unlock()
	for _, m := range others {
		if ai, ok := m.info(); ok {
			time.AfterFunc(announceDelay, func() { l.hear(ai) })
		}
	}
	l.announce()
	return nil
}

func (l *segmentLAN) info() (peer.AddrInfo, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.h == nil {
		return peer.AddrInfo{}, false
	}
	return peer.AddrInfo{ID: l.h.ID(), Addrs: l.h.Addrs()}, true
}

func (l *segmentLAN) hear(ai peer.AddrInfo) {
	l.mu.Lock()
	found, closed, h := l.found, l.closed, l.h
	l.mu.Unlock()
	if !closed && l.seg.net.allowed(h.ID(), ai.ID) {
		found(ai)
	}
}

// announce tells every other member about l, and schedules the next.
func (l *segmentLAN) announce() {
	ai, ok := l.info()
	if !ok {
		return
	}
	l.seg.mu.Lock()
	for m := range l.seg.members {
		if m != l {
			time.AfterFunc(announceDelay, func() { m.hear(ai) })
		}
	}
	l.seg.mu.Unlock()
	l.mu.Lock()
	if !l.closed {
		l.timer = time.AfterFunc(AnnounceInterval, l.announce)
	}
	l.mu.Unlock()
}

// Close implements discovery.LAN: it leaves the segment.
func (l *segmentLAN) Close() error {
	l.mu.Lock()
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
	}
	l.mu.Unlock()
	l.seg.mu.Lock()
	delete(l.seg.members, l)
	l.seg.mu.Unlock()
	return nil
}
