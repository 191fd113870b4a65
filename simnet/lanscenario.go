package simnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/discovery"
)

// LANOptions shapes the LAN discovery scenario. Zero fields take defaults.
type LANOptions struct {
	// Nodes on the one segment. Default 20.
	Nodes int
	// JoinInterval is the virtual time between two nodes joining. Default
	// 100 ms.
	JoinInterval time.Duration
	// Deadline is how long, after its join, a pair may take to meet.
	// Default 30 s.
	Deadline time.Duration
}

// pollInterval is how often the LAN scenario looks at the nodes' peers.
const pollInterval = 10 * time.Millisecond

// ScenarioLAN puts o.Nodes on one LAN segment with no bootstrap peers and
// no other route to each other, joining one every o.JoinInterval. An
// operation is an ordered pair of nodes: it succeeds when the first lists
// the second as found by mDNS within o.Deadline of the later one's join;
// its latency is that time. It must run inside a synctest bubble.
func ScenarioLAN(ctx context.Context, n *Net, o LANOptions) (Report, error) {
	if o.Nodes <= 1 {
		o.Nodes = 20
	}
	if o.JoinInterval <= 0 {
		o.JoinInterval = 100 * time.Millisecond
	}
	if o.Deadline <= 0 {
		o.Deadline = 30 * time.Second
	}
	began := time.Now()
	rep := Report{Scenario: "lan", Seed: n.Seed(), Nodes: o.Nodes}
	seg := n.Segment("lan")
	type pair struct{ a, b int }
	joined := make([]time.Time, 0, o.Nodes)
	met := make(map[pair]time.Duration)
	var nodes []*Node
	look := func() {
		for _, a := range nodes {
			for _, p := range a.Peer().Discovery().Peers() {
				b := n.index(p.ID)
				k := pair{a.Index, b}
				if _, ok := met[k]; ok || b < 0 || !slices.Contains(p.Sources, discovery.SourceMDNS) {
					continue
				}
				met[k] = time.Since(joined[max(a.Index, b)])
			}
		}
	}
	for range o.Nodes {
		nd, err := n.AddNode(ctx, NodeConfig{Segment: seg})
		if err != nil {
			return rep, err
		}
		nodes = append(nodes, nd)
		joined = append(joined, time.Now())
		for end := time.Now().Add(o.JoinInterval); time.Now().Before(end); {
			time.Sleep(pollInterval)
			look()
		}
	}
	for end := time.Now().Add(o.Deadline); time.Now().Before(end) && len(met) < o.Nodes*(o.Nodes-1); {
		time.Sleep(pollInterval)
		look()
	}

	digest := sha256.New()
	var ops []opResult
	for a := range o.Nodes {
		for b := range o.Nodes {
			if a == b {
				continue
			}
			fmt.Fprintf(digest, "%d %d\n", a, b)
			d, ok := met[pair{a, b}]
			switch {
			case !ok:
				ops = append(ops, opResult{err: fmt.Errorf("node %d never listed node %d", a, b)})
			case d > o.Deadline:
				ops = append(ops, opResult{err: fmt.Errorf("node %d listed node %d after %v", a, b, d)})
			default:
				ops = append(ops, opResult{hops: 1, latency: d})
			}
		}
	}
	rep.Workload = hex.EncodeToString(digest.Sum(nil)[:8])
	rep.tally(ops)
	rep.VirtualTime = time.Since(began).Seconds()
	return rep, nil
}

// index returns the index of the node with id, or -1.
func (n *Net) index(id peer.ID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if nd := n.byID[id]; nd != nil {
		return nd.Index
	}
	return -1
}
