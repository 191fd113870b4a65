package dht

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/internal/reachbus"
)

// trackHost is the host as kad-dht sees it: it keeps every stream kad-dht
// opens or accepts until the stream ends, so that Close can reset them.
//
// kad-dht sets no write deadline and does not watch ctx while it writes: a
// peer that stops reading (a yamux window that never reopens, a black
// hole) holds the writer, and the lookup around it, until the stream
// resets. Resetting the stream that kad-dht holds, rather than the one
// below it that the network lists, reaches a wrapper's wait as well.
//
// Its methods are safe for concurrent use.
type trackHost struct {
	host.Host
	bus *reachbus.Bus // the host's bus, with reachability set by the DHT

	mu      sync.Mutex
	closed  bool
	streams map[*trackedStream]struct{}
	sweepAt int // the map's size at which track forgets streams of closed connections
}

// minSweep is the fewest streams tracked before track sweeps.
const minSweep = 64

func newTrackHost(h host.Host) *trackHost {
	th := &trackHost{Host: h, streams: make(map[*trackedStream]struct{}), sweepAt: minSweep}
	if h != nil { // nil: a test of the stream tracking alone
		th.bus = reachbus.New(h.EventBus())
	}
	return th
}

// EventBus is the host's bus, except that EvtLocalReachabilityChanged
// comes from the DHT's SetReachability (see internal/reachbus).
func (h *trackHost) EventBus() event.Bus { return h.bus }

// NewStream opens a stream as the host does and tracks it. After resetAll
// it fails with ErrClosed.
func (h *trackHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	ts := h.track(s)
	if ts == nil {
		return nil, ErrClosed
	}
	return ts, nil
}

// SetStreamHandler sets the handler of a protocol; it gets tracked streams.
func (h *trackHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, h.wrap(handler))
}

// SetStreamHandlerMatch is SetStreamHandler for the protocols m accepts.
func (h *trackHost) SetStreamHandlerMatch(pid protocol.ID, m func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, m, h.wrap(handler))
}

func (h *trackHost) wrap(handler network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		if ts := h.track(s); ts != nil {
			handler(ts)
		}
	}
}

// track keeps s until it ends; after resetAll it resets s and returns nil.
func (h *trackHost) track(s network.Stream) *trackedStream {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = s.Reset()
		return nil
	}
	// A stream whose connection closed will see no Close or Reset from
	// kad-dht if it never used it again: forget those here, each time
	// the map doubled since the last sweep (amortised: a new stream does
	// not scan every open one).
	if len(h.streams) >= h.sweepAt {
		for ts := range h.streams {
			if ts.Conn().IsClosed() {
				delete(h.streams, ts)
			}
		}
		h.sweepAt = max(2*len(h.streams), minSweep)
	}
	ts := &trackedStream{Stream: s, h: h}
	h.streams[ts] = struct{}{}
	h.mu.Unlock()
	return ts
}

func (h *trackHost) forget(ts *trackedStream) {
	h.mu.Lock()
	delete(h.streams, ts)
	h.mu.Unlock()
}

// resetAll resets every tracked stream, which ends a write blocked on it,
// and refuses streams from now on. It does not block on the network.
func (h *trackHost) resetAll() {
	h.mu.Lock()
	h.closed = true
	streams := h.streams
	h.streams = nil
	h.mu.Unlock()
	for ts := range streams {
		_ = ts.Stream.Reset()
	}
}

// trackedStream is a stream that leaves its trackHost when it ends here.
type trackedStream struct {
	network.Stream
	h *trackHost
}

func (s *trackedStream) Close() error {
	s.h.forget(s)
	return s.Stream.Close()
}

func (s *trackedStream) Reset() error {
	s.h.forget(s)
	return s.Stream.Reset()
}

func (s *trackedStream) ResetWithError(code network.StreamErrorCode) error {
	s.h.forget(s)
	return s.Stream.ResetWithError(code)
}
