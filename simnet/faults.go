package simnet

import (
	"context"
	"errors"
	"fmt"

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

// Heal ends a partition: every node can reach every other again. Nodes
// reconnect by themselves (discovery redials, the DHT refreshes).
func (n *Net) Heal() {
	n.mu.Lock()
	n.group = make(map[peer.ID]int)
	n.mu.Unlock()
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
