package simnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/discovery"
)

// Helpers shared by the scenario tests (blocks_test.go, lan_test.go,
// faults_test.go, link_test.go, determinism_test.go). They all run inside
// a synctest bubble: every wait is virtual time.

// waitUntil checks cond every step of virtual time until it holds or
// limit has passed. It returns the virtual time waited and whether cond
// held; the time is exact to within step.
func waitUntil(limit, step time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) >= limit {
			return time.Since(start), false
		}
		time.Sleep(step)
	}
}

// addTree adds count nodes, the first with no bootstrap peer and each
// other bootstrapping from one earlier node chosen by the seed (a random
// recursive tree).
func addTree(ctx context.Context, n *Net, count int) ([]*Node, error) {
	topo := n.Rand("test tree")
	var nodes []*Node
	for i := range count {
		var cfg NodeConfig
		if i > 0 {
			cfg.Bootstrap = []*Node{nodes[topo.IntN(i)]}
		}
		nd, err := n.AddNode(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("add node %d: %w", i, err)
		}
		nodes = append(nodes, nd)
	}
	return nodes, nil
}

// connectedness is how a sees b, NotConnected when a is down.
func connectedness(a, b *Node) network.Connectedness {
	p := a.Peer()
	if p == nil {
		return network.NotConnected
	}
	return p.Host().Network().Connectedness(b.ID)
}

// lists reports whether a lists b among its connected exopeer peers,
// whatever the source.
func lists(a, b *Node) bool {
	return slices.ContainsFunc(a.Peer().Discovery().Peers(), func(pi discovery.PeerInfo) bool { return pi.ID == b.ID })
}

// crossLinks lists the connections from nodes of as to nodes of bs, as
// "a→b".
func crossLinks(as, bs []*Node) []string {
	var out []string
	for _, a := range as {
		for _, b := range bs {
			if connectedness(a, b) == network.Connected {
				out = append(out, nodeIndexes(a, b))
			}
		}
	}
	return out
}

// isolated lists the nodes of as with no connection to any node of bs.
func isolated(as, bs []*Node) []int {
	var out []int
	for _, a := range as {
		if !slices.ContainsFunc(bs, func(b *Node) bool { return connectedness(a, b) == network.Connected }) {
			out = append(out, a.Index)
		}
	}
	return out
}

// nodeIndexes names the pair (a, b) as "a→b".
func nodeIndexes(a, b *Node) string { return fmt.Sprintf("%d→%d", a.Index, b.Index) }

// addOnSegment adds count nodes on seg with no bootstrap peer.
func addOnSegment(t *testing.T, n *Net, seg *Segment, count int) []*Node {
	t.Helper()
	var nodes []*Node
	for range count {
		nd, err := n.AddNode(t.Context(), NodeConfig{Segment: seg})
		if err != nil {
			t.Fatalf("seed %d: %v", n.Seed(), err)
		}
		nodes = append(nodes, nd)
	}
	return nodes
}

// isBootstrapOf reports whether b is one of a's bootstrap peers.
func isBootstrapOf(b, a *Node) bool { return slices.Contains(a.cfg.Bootstrap, b) }

// connectByHand connects from to ai as `exopeer connect` does: with each
// address in turn, ending in /p2p/<id>.
func connectByHand(ctx context.Context, from *Node, ai peer.AddrInfo) error {
	addrs, err := peer.AddrInfoToP2pAddrs(&ai)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return errors.New("no address")
	}
	var errs []error
	for _, a := range addrs {
		id, err := from.Peer().Connect(ctx, a)
		if err == nil && id == ai.ID {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// reachResult is the outcome of looking a node up and trying to reach it.
type reachResult struct {
	lookupErr  error         // FindPeer's error
	addrs      int           // addresses FindPeer returned
	wasConn    bool          // connected right after FindPeer
	connectErr error         // the dial to the returned addresses, when not connected
	took       time.Duration // virtual time of FindPeer
}

// reached reports whether the target was found and is reachable: FindPeer
// returned it, and it was connected or a dial to the returned addresses
// worked.
func (r reachResult) reached() bool {
	return r.lookupErr == nil && (r.wasConn || r.addrs > 0 && r.connectErr == nil)
}

func (r reachResult) String() string {
	switch {
	case r.lookupErr != nil:
		return fmt.Sprintf("FindPeer failed in %v: %v", r.took, r.lookupErr)
	case r.wasConn:
		return fmt.Sprintf("FindPeer found it connected in %v", r.took)
	case r.addrs == 0:
		return fmt.Sprintf("FindPeer returned no address in %v", r.took)
	case r.connectErr != nil:
		return fmt.Sprintf("FindPeer returned %d addresses in %v; dialling them failed: %v", r.addrs, r.took, r.connectErr)
	}
	return fmt.Sprintf("FindPeer returned %d addresses in %v; dialled", r.addrs, r.took)
}

// reach looks to up with from's DHT (FindPeer) and, unless the lookup
// left them connected, dials the addresses it returned.
//
// kad-dht's FindPeer may succeed for a target that other peers named but
// that could not be dialled (it counts state PeerUnreachable as found: see
// FindPeer in go-libp2p-kad-dht's routing.go), returning the addresses in
// the peerstore. So a FindPeer without error does not mean the node is up
// or reachable; reach checks that with a dial.
func reach(ctx context.Context, from, to *Node, timeout time.Duration) reachResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var r reachResult
	p := from.Peer()
	start := time.Now()
	ai, err := p.DHT().FindPeer(ctx, to.ID)
	r.took = time.Since(start)
	if err == nil && ai.ID != to.ID {
		err = fmt.Errorf("FindPeer returned %s", ai.ID)
	}
	if r.lookupErr = err; err != nil {
		return r
	}
	r.addrs = len(ai.Addrs)
	if r.wasConn = p.Host().Network().Connectedness(to.ID) == network.Connected; r.wasConn {
		return r
	}
	if r.addrs > 0 {
		r.connectErr = p.Host().Connect(ctx, ai)
	}
	return r
}

// randomBlocks returns count blocks of size bytes drawn from r.
func randomBlocks(r *rand.Rand, count, size int) []blockformat.Block {
	out := make([]blockformat.Block, count)
	for i := range out {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		out[i] = blocks.NewBlock(data)
	}
	return out
}
