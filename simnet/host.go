package simnet

import (
	"context"
	"errors"
	"fmt"

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
type simHost struct {
	*bhost.BasicHost
	net *Net
	cm  *cmgr.BasicConnMgr
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
	return h.BasicHost.NewStream(ctx, p, pids...)
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
