package simnet

import (
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// StreamMatch picks the streams a stream fault strikes.
type StreamMatch struct {
	// From is the node that opens the stream, To the node that accepts
	// it. nil: any node.
	From, To *Node
	// Protocol is the stream's protocol. "": any.
	Protocol protocol.ID
	// Nth, when positive, picks only the Nth matching stream opened after
	// the fault is set (1 is the first). 0: every matching stream, those
	// open when the fault is set and those opened until it is lifted.
	Nth int
	// Picked, if set, is called with the accepting node's ID each time
	// the fault picks a stream opened after it was set, as the stream
	// opens, on the opener's goroutine: it must not block.
	Picked func(to peer.ID)
}

// streamFault is one StallStreams or ResetStreams.
type streamFault struct {
	m      StreamMatch
	reset  bool
	seen   int // matching streams opened since it was set; under Net.mu
	lifted atomic.Bool
}

// holds reports whether the fault still holds its streams' data back.
func (f *streamFault) holds() bool { return !f.reset && !f.lifted.Load() }

func (f *streamFault) matches(from, to peer.ID, p protocol.ID) bool {
	return (f.m.From == nil || f.m.From.ID == from) && (f.m.To == nil || f.m.To.ID == to) &&
		(f.m.Protocol == "" || f.m.Protocol == p)
}

// StallStreams stalls the streams m picks until the returned function is
// called: on the opener's side, reads and writes block (a blocked call
// ends at its deadline, or when the stream is reset or closed), so
// nothing the opener writes arrives and nothing the remote writes is read
// (the remote's writes block in turn once mocknet's small buffer is
// full). It models a stream whose packets stop while its connection
// lives: a stuck peer, a middlebox dropping one flow. The end of a stream
// (Close, CloseWrite) and a reset still pass. Lifting lets the held data
// go on, in order.
//
// Streams the libp2p host opens by itself (identify, ping) are not
// subject to stream faults.
func (n *Net) StallStreams(m StreamMatch) (lift func()) {
	return n.addStreamFault(&streamFault{m: m})
}

// ResetStreams resets the streams m picks, from the opener's side (the
// remote sees a reset): with Nth 0 every matching stream open now, and
// each matching stream opened later as soon as it opens, until the
// returned function is called; with Nth N only the Nth matching stream
// opened from now on.
func (n *Net) ResetStreams(m StreamMatch) (lift func()) {
	return n.addStreamFault(&streamFault{m: m, reset: true})
}

func (n *Net) addStreamFault(f *streamFault) func() {
	n.mu.Lock()
	n.streamFaults = append(n.streamFaults, f)
	hosts := make([]*simHost, 0, len(n.hosts))
	for _, h := range n.hosts {
		hosts = append(hosts, h)
	}
	n.mu.Unlock()
	if f.m.Nth == 0 {
		for _, h := range hosts {
			for _, s := range h.openStreams() {
				if f.matches(h.ID(), s.remote, s.Protocol()) {
					n.strike(s, f)
				}
			}
		}
	}
	return func() {
		if f.lifted.Swap(true) {
			return
		}
		n.mu.Lock()
		for i, g := range n.streamFaults {
			if g == f {
				n.streamFaults = append(n.streamFaults[:i:i], n.streamFaults[i+1:]...)
				break
			}
		}
		n.mu.Unlock()
		n.wake()
	}
}

// strike puts stream s under fault f.
func (n *Net) strike(s *simStream, f *streamFault) {
	if f.reset {
		_ = s.Reset()
		return
	}
	s.mu.Lock()
	s.fault = f
	s.kickLocked()
	s.mu.Unlock()
}

// opened subjects a stream that h just opened to the stream faults that
// pick it: the first that does.
func (n *Net) opened(h *simHost, s *simStream) {
	n.mu.Lock()
	var hit *streamFault
	for _, f := range n.streamFaults {
		if !f.matches(h.ID(), s.remote, s.Protocol()) {
			continue
		}
		f.seen++
		if f.m.Nth == 0 || f.seen == f.m.Nth {
			hit = f
			break
		}
	}
	n.mu.Unlock()
	if hit != nil {
		n.strike(s, hit)
		if hit.m.Picked != nil {
			hit.m.Picked(s.remote)
		}
	}
}

// faultsChanged returns a channel closed at the next change of the faults
// or of the connections: a stalled stream waits on it to look again.
func (n *Net) faultsChanged() <-chan struct{} {
	n.fmu.Lock()
	defer n.fmu.Unlock()
	return n.changed
}

// wake closes the channel faultsChanged returned.
func (n *Net) wake() {
	n.fmu.Lock()
	defer n.fmu.Unlock()
	close(n.changed)
	n.changed = make(chan struct{})
}

// cutOneWay reports whether data from a to b is held back (OneWay).
func (n *Net) cutOneWay(a, b peer.ID) bool {
	m := n.oneWay.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[[2]peer.ID{a, b}]
	return ok
}
