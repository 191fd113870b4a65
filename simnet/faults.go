package simnet

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Crash stops a node at once: it becomes unreachable, then its node is
// closed. Its peers see its connections close, as after a reset. Its
// datastore survives for Restart.
func (n *Net) Crash(nd *Node) error {
	nd.mu.Lock()
	node := nd.node
	nd.node = nil
	nd.mu.Unlock()
	if node == nil {
		return fmt.Errorf("simnet: node %d is not running", nd.Index)
	}
	nd.routable.Store(false)
	n.mu.Lock()
	n.unlinkAll(nd.ID)
	n.mu.Unlock()
	// Cut its connections before its node closes, so that nothing it says
	// while closing (a gossip leave, a DHT goodbye) gets out: a crash is
	// silent.
	for _, other := range node.Host().Network().Peers() {
		_ = node.Host().Network().ClosePeer(other)
	}
	return node.Close()
}

// Restart starts a crashed node again, with its key and its datastore.
func (n *Net) Restart(ctx context.Context, nd *Node) error {
	if nd.Up() {
		return fmt.Errorf("simnet: node %d is running", nd.Index)
	}
	return n.start(ctx, nd)
}

// Partition splits the network: each group can reach only its own
// members; nodes in no group form one more group. Connections across
// groups are closed and no new ones can be made until Heal.
func (n *Net) Partition(groups ...[]*Node) {
	n.mu.Lock()
	n.group = make(map[peer.ID]int)
	for i, g := range groups {
		for _, nd := range g {
			n.group[nd.ID] = i + 1
		}
	}
	var cut [][2]peer.ID
	for a, m := range n.links {
		for b := range m {
			if n.group[a] != n.group[b] {
				cut = append(cut, [2]peer.ID{a, b})
			}
		}
	}
	for _, c := range cut {
		n.unlink(c[0], c[1])
	}
	nodes := append([]*Node(nil), n.nodes...)
	group := n.group
	n.mu.Unlock()

	for _, nd := range nodes {
		p := nd.Peer()
		if p == nil {
			continue
		}
		for _, other := range p.Host().Network().Peers() {
			if group[other] != group[nd.ID] {
				_ = p.Host().Network().ClosePeer(other)
			}
		}
	}
}

// Cut cuts the link between a and b only, in both directions: their
// connections to each other are closed and neither can reach the other
// until Heal, while each still reaches every other node (and so, through
// them, the other's news). Cuts add up until Heal.
func (n *Net) Cut(a, b *Node) {
	if a == b {
		return
	}
	n.mu.Lock()
	n.cuts[[2]peer.ID{a.ID, b.ID}] = struct{}{}
	n.cuts[[2]peer.ID{b.ID, a.ID}] = struct{}{}
	n.unlink(a.ID, b.ID)
	n.mu.Unlock()
	for _, ends := range [][2]*Node{{a, b}, {b, a}} {
		if p := ends[0].Peer(); p != nil {
			_ = p.Host().Network().ClosePeer(ends[1].ID)
		}
	}
	n.wake()
}

// OneWay cuts the network in one direction: whatever a node of from
// writes to a node of to is held back, while to's data to from flows. In
// a network of streams that means: connections and streams still open
// (their set-up is below the cut), but a Write from a node of from to a
// node of to blocks as if the peer's receive window were full from the
// first byte, until Heal, its write deadline (which resets the stream), a
// reset or the end of the connection. So the remote waits for data that
// does not come, and its read deadline fires; a request is never answered
// when the answer's direction is cut. The end of a stream (Close,
// CloseWrite) and a reset pass, as do the streams the libp2p host opens
// by itself (identify, ping). Cuts add up until Heal.
func (n *Net) OneWay(from, to []*Node) {
	n.mu.Lock()
	m := make(map[[2]peer.ID]struct{})
	if old := n.oneWay.Load(); old != nil {
		maps.Copy(m, *old)
	}
	for _, a := range from {
		for _, b := range to {
			if a != b {
				m[[2]peer.ID{a.ID, b.ID}] = struct{}{}
			}
		}
	}
	n.oneWay.Store(&m)
	n.mu.Unlock()
	n.wake()
}

// Heal ends partitions, cut links and one-way cuts: every node can reach
// every other again, and the writes a cut held back go on, in order. Nodes reconnect
// by themselves (discovery redials, the DHT refreshes). Stream faults
// (StallStreams, ResetStreams) last until they are lifted.
func (n *Net) Heal() {
	n.mu.Lock()
	n.group = make(map[peer.ID]int)
	clear(n.cuts)
	n.oneWay.Store(nil)
	n.mu.Unlock()
	n.wake()
}

// Close stops every node, closes their datastores and the mocknet.
func (n *Net) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	nodes := append([]*Node(nil), n.nodes...)
	n.mu.Unlock()
	var errs []error
	for _, nd := range nodes {
		if nd.Up() {
			errs = append(errs, n.Crash(nd))
		}
	}
	for _, nd := range nodes {
		errs = append(errs, nd.store.Close())
	}
	errs = append(errs, n.mn.Close())
	return errors.Join(errs...)
}
