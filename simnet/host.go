package simnet

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	bhost "github.com/libp2p/go-libp2p/p2p/host/basic"
	cmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// simHost is a mocknet host as the node sees it. mocknet can only dial
// peers joined by a link, and linking every pair of N nodes costs O(N²)
// memory (444 MiB at 1,000 nodes, 3.6 GiB at 3,000, measured); so links are
// made on the first dial instead, as a real network "has" a route to every
// address. A dial across a partition, or to a node that is down, finds no
// route and fails, as it would for real.
//
// mocknet hosts have no connection manager; simHost adds go-libp2p's own,
// fed by the network's connection events, so that the DHT's and
// discovery's tagging and trimming work as on a real host.
//
// Its streams are simStreams: deadlines fire in virtual time, and the
// network's one-way cuts and stream faults apply to them. It keeps the
// streams it opened, until they end, for the stream faults to find.
type simHost struct {
	*bhost.BasicHost
	net *Net
	cm  *cmgr.BasicConnMgr

	mu      sync.Mutex
	streams map[*simStream]struct{} // opened here and not ended
}

// Connect makes a route to the peer, then connects as the host does.
func (h *simHost) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if err := h.net.route(h.ID(), ai.ID); err != nil {
		return err
	}
	return h.BasicHost.Connect(ctx, ai)
}

// NewStream makes a route to the peer unless ctx forbids dialling, then
// opens the stream as the host does.
func (h *simHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if nodial, _ := network.GetNoDial(ctx); !nodial && h.Network().Connectedness(p) != network.Connected {
		if err := h.net.route(h.ID(), p); err != nil {
			return nil, err
		}
	}
	s, err := h.BasicHost.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	ss := newSimStream(h, s, true)
	h.mu.Lock()
	h.streams[ss] = struct{}{}
	h.mu.Unlock()
	h.net.opened(h, ss)
	return ss, nil
}

// SetStreamHandler sets the handler of a protocol; it gets simStreams.
func (h *simHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.BasicHost.SetStreamHandler(pid, h.wrapHandler(handler))
}

// SetStreamHandlerMatch is SetStreamHandler for the protocols match
// accepts.
func (h *simHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.BasicHost.SetStreamHandlerMatch(pid, match, h.wrapHandler(handler))
}

func (h *simHost) wrapHandler(handler network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) { handler(newSimStream(h, s, false)) }
}

// openStreams returns the streams opened here that have not ended.
func (h *simHost) openStreams() []*simStream {
	h.pruneStreams()
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*simStream, 0, len(h.streams))
	for s := range h.streams {
		out = append(out, s)
	}
	return out
}

// pruneStreams forgets the streams whose connection closed.
func (h *simHost) pruneStreams() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.streams {
		if s.Conn().IsClosed() {
			delete(h.streams, s)
		}
	}
}

// forget drops a stream that ended.
func (h *simHost) forget(s *simStream) {
	h.mu.Lock()
	delete(h.streams, s)
	h.mu.Unlock()
}

// ConnManager returns the host's connection manager.
func (h *simHost) ConnManager() connmgr.ConnManager { return h.cm }

// Close closes the connection manager and the host.
func (h *simHost) Close() error {
	return errors.Join(h.cm.Close(), h.BasicHost.Close())
}

// ErrNoRoute means a dial found no route: the nodes are in different
// partitions, or the remote node is down or unknown.
var ErrNoRoute = errors.New("simnet: no route to peer")

func noRoute(a, b peer.ID, why string) error {
	return fmt.Errorf("%w: %s to %s: %s", ErrNoRoute, a.ShortString(), b.ShortString(), why)
}
