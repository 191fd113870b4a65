package simnet

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// DHTOptions shapes the DHT lookup scenario. Zero fields take defaults.
type DHTOptions struct {
	// Nodes is the network size. Default 200.
	Nodes int
	// Lookups is how many random other live nodes each live node looks up.
	// Default 10.
	Lookups int
	// Bootstraps is how many random earlier nodes each node bootstraps
	// from. Default 3.
	Bootstraps int
	// CrashFraction of the nodes crash after the network settled, before
	// the lookups. Default 0.
	CrashFraction float64
	// Settle is the virtual time between the last join and the lookups.
	// Default 1 min.
	Settle time.Duration
	// Concurrency bounds the lookups in flight. Default 64.
	Concurrency int
	// LookupTimeout bounds one lookup, in virtual time. Default 1 min.
	LookupTimeout time.Duration
	// JoinInterval is the virtual time between two nodes joining. Default
	// 200 ms (1,000 nodes join over 200 s).
	JoinInterval time.Duration
	// LookupWindow spreads the lookups: each starts at a random time within
	// it, as lookups of a real network do not all start at once (and the
	// connection managers trim behind them). Default 3 min.
	LookupWindow time.Duration
}

func (o DHTOptions) withDefaults() DHTOptions {
	if o.Nodes <= 0 {
		o.Nodes = 200
	}
	if o.Lookups <= 0 {
		o.Lookups = 10
	}
	if o.Bootstraps <= 0 {
		o.Bootstraps = 3
	}
	if o.Settle <= 0 {
		o.Settle = time.Minute
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.LookupTimeout <= 0 {
		o.LookupTimeout = time.Minute
	}
	if o.LookupWindow <= 0 {
		o.LookupWindow = 3 * time.Minute
	}
	if o.JoinInterval <= 0 {
		o.JoinInterval = 200 * time.Millisecond
	}
	return o
}

// ScenarioDHT builds a network of o.Nodes, joining one every
// o.JoinInterval, each bootstrapped from a few random earlier nodes, lets
// it settle, crashes o.CrashFraction of it, and
// has every live node look up o.Lookups random other live nodes with
// FindPeer, at random times within o.LookupWindow. A lookup succeeds when it returns the target with an address,
// or connected.
// It must run inside a synctest bubble (see RunInBubble).
func ScenarioDHT(ctx context.Context, n *Net, o DHTOptions) (Report, error) {
	o = o.withDefaults()
	began := time.Now()
	rep := Report{Scenario: "dht", Seed: n.Seed(), Nodes: o.Nodes}

	topo := n.Rand("dht topology")
	var nodes []*Node
	for i := range o.Nodes {
		var boot []*Node
		for _, j := range topo.Perm(i)[:min(i, o.Bootstraps)] {
			boot = append(boot, nodes[j])
		}
		nd, err := n.AddNode(ctx, NodeConfig{Bootstrap: boot})
		if err != nil {
			return rep, err
		}
		nodes = append(nodes, nd)
		time.Sleep(o.JoinInterval)
	}
	time.Sleep(o.Settle)

	crash := n.Rand("dht crash")
	rep.Crashed = int(o.CrashFraction * float64(o.Nodes))
	for _, i := range crash.Perm(o.Nodes)[:rep.Crashed] {
		if err := n.Crash(nodes[i]); err != nil {
			return rep, err
		}
	}
	var live []*Node
	for _, nd := range nodes {
		if nd.Up() {
			live = append(live, nd)
		}
	}
	if len(live) < 2 {
		return rep, errors.New("simnet: fewer than two live nodes")
	}

	type lookup struct {
		from, to *Node
		at       time.Duration // start, from the start of the lookups
	}
	pick := n.Rand("dht lookups")
	var lookups []lookup
	for _, from := range live {
		for range o.Lookups {
			to := live[pick.IntN(len(live)-1)]
			if to == from {
				to = live[len(live)-1]
			}
			lookups = append(lookups, lookup{from, to, time.Duration(pick.Int64N(int64(o.LookupWindow)))})
		}
	}
	digest := sha256.New()
	for _, l := range lookups {
		fmt.Fprintf(digest, "%d %d %d\n", l.from.Index, l.to.Index, l.at)
	}
	rep.Workload = hex.EncodeToString(digest.Sum(nil)[:8])
	order := make([]int, len(lookups))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(lookups[a].at, lookups[b].at) })

	results := make([]opResult, len(lookups))
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	lookupsBegan := time.Now()
	for _, i := range order {
		l := lookups[i]
		time.Sleep(time.Until(lookupsBegan.Add(l.at)))
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = findPeer(ctx, l.from, l.to, o.LookupTimeout)
		}()
	}
	wg.Wait()
	rep.tally(results)
	rep.VirtualTime = time.Since(began).Seconds()
	return rep, nil
}

// findPeer looks up to from from, measuring the virtual latency and the
// hops: the depth of the answering peer in the tree of referrals that
// starts at the peers from queried first.
func findPeer(ctx context.Context, from, to *Node, timeout time.Duration) opResult {
	p := from.Peer()
	if p == nil {
		return opResult{err: fmt.Errorf("node %d is down", from.Index)}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	qctx, events := routing.RegisterForQueryEvents(ctx)
	hops := make(chan int, 1)
	go func() { hops <- countHops(events, to.ID) }()

	start := time.Now()
	ai, err := p.DHT().FindPeer(qctx, to.ID)
	latency := time.Since(start)
	cancel() // ends the event stream
	h := <-hops
	switch {
	case err != nil:
		return opResult{err: fmt.Errorf("node %d → %d: %w", from.Index, to.Index, err)}
	// A target found connected may have no address yet: the lookup itself
	// dialled it and identify is still running. It is found all the same.
	case ai.ID != to.ID || len(ai.Addrs) == 0 && p.Host().Network().Connectedness(to.ID) != network.Connected:
		return opResult{err: fmt.Errorf("node %d → %d: wrong answer %v (connectedness %v, target up %v)",
			from.Index, to.Index, ai, p.Host().Network().Connectedness(to.ID), to.Up())}
	}
	return opResult{hops: h, latency: latency}
}

// countHops follows a lookup's query events until the channel closes and
// returns the depth of the first peer whose answer held target (0 when the
// target was known without asking anyone).
func countHops(events <-chan *routing.QueryEvent, target peer.ID) int {
	depth := make(map[peer.ID]int)
	found := 0
	for ev := range events {
		switch ev.Type {
		case routing.SendingQuery:
			if _, ok := depth[ev.ID]; !ok {
				depth[ev.ID] = 1
			}
		case routing.PeerResponse, routing.FinalPeer:
			d := depth[ev.ID]
			if d == 0 {
				d = 1
			}
			for _, r := range ev.Responses {
				if r.ID == target && found == 0 {
					found = d
				}
				if _, ok := depth[r.ID]; !ok {
					depth[r.ID] = d + 1
				}
			}
			if ev.ID == target && found == 0 {
				found = d
			}
		}
	}
	return found
}
