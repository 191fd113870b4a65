package simnet

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/gossip"
)

// CellOptions shapes the cell scenario. Zero fields take defaults.
type CellOptions struct {
	// Nodes in the cell, the admin included. Default 50.
	Nodes int
	// Crash is how many members crash once the cell has converged.
	// Default 1; negative: none.
	Crash int
	// NoPartition skips the partition phase.
	NoPartition bool
	// Deadline bounds each phase, in virtual time. Default 2 min.
	Deadline time.Duration
	// Watch is how long, from the crash, the live members' views are
	// watched for false failures (a live member seen dead), even when
	// every crash was detected sooner. Default 30 s.
	Watch time.Duration
}

// SlowLinkLatency is the one-way latency of a slow link (SlowLinks): its
// round trip, 800 ms, is above gossip's default probe timeout (500 ms), so
// that a direct probe over it fails and the indirect probes and
// refutations must keep its ends alive.
const SlowLinkLatency = 400 * time.Millisecond

// SlowLinks returns a Config.Latency under which a fraction of the links,
// picked by the seed, have SlowLinkLatency and the others DefaultLatency.
func SlowLinks(seed uint64, fraction float64) func(a, b int) time.Duration {
	return func(a, b int) time.Duration {
		if a > b {
			a, b = b, a
		}
		h := sha256.Sum256(fmt.Appendf(nil, "simnet slow link %d %d %d", seed, a, b))
		if float64(binary.BigEndian.Uint64(h[:8]))/(1<<64) < fraction {
			return SlowLinkLatency
		}
		return DefaultLatency
	}
}

// cellPoll is how often the cell scenario looks at the members' views.
const cellPoll = 100 * time.Millisecond

// ScenarioCell builds a cell the way people do: node 0 creates it and
// invites every other node, which joins with its code (all at once, over
// the one node they are connected to). Then it measures, in virtual time:
// "join", each join; "converge", from the last join until each node sees
// every member alive; "detect", from a crash until each live member sees
// the crashed node dead (one sample per observer and crashed node); "heal",
// from the end of a partition that split the cell in two until each node
// sees every live member alive again. An operation is one join, one
// node's convergence, one detection or one node's healing. It must run
// inside a synctest bubble.
func ScenarioCell(ctx context.Context, n *Net, o CellOptions) (Report, error) {
	if o.Nodes <= 1 {
		o.Nodes = 50
	}
	if o.Crash == 0 {
		o.Crash = 1
	}
	o.Crash = max(o.Crash, 0)
	if o.Crash > o.Nodes-2 {
		o.Crash = o.Nodes - 2
	}
	if o.Deadline <= 0 {
		o.Deadline = 2 * time.Minute
	}
	if o.Watch <= 0 {
		o.Watch = 30 * time.Second
	}
	began := time.Now()
	rep := Report{Scenario: "cell", Seed: n.Seed(), Nodes: o.Nodes, Timings: map[string]Dist{}}
	digest := sha256.New()
	var ops []opResult

	admin, err := n.AddNode(ctx, NodeConfig{})
	if err != nil {
		return rep, err
	}
	nodes := []*Node{admin}
	for range o.Nodes - 1 {
		nd, err := n.AddNode(ctx, NodeConfig{Bootstrap: []*Node{admin}})
		if err != nil {
			return rep, err
		}
		nodes = append(nodes, nd)
	}
	if _, err := admin.Peer().Cell().Create(ctx, "sim", "node-0"); err != nil {
		return rep, fmt.Errorf("create: %w", err)
	}

	// Joins, all at once.
	var mu sync.Mutex
	var joins []float64
	var wg sync.WaitGroup
	for _, nd := range nodes[1:] {
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
		if err != nil {
			return rep, fmt.Errorf("invite: %w", err)
		}
		fmt.Fprintf(digest, "join %d\n", nd.Index)
		wg.Go(func() {
			start := time.Now()
			jctx, cancel := context.WithTimeout(ctx, o.Deadline)
			defer cancel()
			_, err := nd.Peer().Cell().Join(jctx, code.String(), fmt.Sprintf("node-%d", nd.Index))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ops = append(ops, opResult{err: fmt.Errorf("node %d join: %w", nd.Index, err)})
				return
			}
			d := time.Since(start)
			joins = append(joins, ms(d))
			ops = append(ops, opResult{hops: 1, latency: d})
		})
	}
	wg.Wait()
	rep.Timings["join"] = NewDist(joins)

	// Convergence: each node sees all others alive.
	lastJoin := time.Now()
	conv := awaitViews(nodes, o.Deadline, allAlive(nodes))
	ops = phase(ops, &rep, "converge", nodes, conv, lastJoin, digest, "never saw every member alive")

	// Crashes, detected by every live member.
	rng := n.Rand("cell crash")
	perm := rng.Perm(o.Nodes - 1)
	var crashed []*Node
	for _, i := range perm[:o.Crash] {
		crashed = append(crashed, nodes[i+1])
	}
	live := without(nodes, crashed)
	cr := &CellReport{}
	rep.Cell = cr
	var base uint64
	for _, nd := range live {
		base += gossipStats(nd).SuspectedLost
	}
	if len(crashed) > 0 {
		// Each crash is timed from its own start: Crash cuts the node off
		// at once, then closes it, which takes virtual time (its gossip
		// waits out its leave), so the crashes follow one another.
		crashAt := time.Now()
		crashedAt := make(map[peer.ID]time.Time)
		for _, nd := range crashed {
			fmt.Fprintf(digest, "crash %d\n", nd.Index)
			crashedAt[nd.ID] = time.Now()
			if err := n.Crash(nd); err != nil {
				return rep, err
			}
		}
		rep.Crashed = len(crashed)
		var detect []float64
		type pair struct{ a, b peer.ID }
		done := make(map[pair]bool)
		deadline := crashAt.Add(o.Deadline)
		watchEnd := crashAt.Add(min(o.Watch, o.Deadline))
		falseDead := make(map[pair]bool)
		for time.Now().Before(deadline) && (len(done) < len(live)*len(crashed) || time.Now().Before(watchEnd)) {
			time.Sleep(cellPoll)
			for _, a := range live {
				seen := view(a)
				for _, b := range live {
					if seen[b.ID] == gossip.StateDead {
						falseDead[pair{a.ID, b.ID}] = true
					}
				}
				for _, c := range crashed {
					k := pair{a.ID, c.ID}
					if !done[k] && seen[c.ID] == gossip.StateDead {
						done[k] = true
						detect = append(detect, ms(time.Since(crashedAt[c.ID])))
					}
				}
			}
		}
		for _, a := range live {
			for _, c := range crashed {
				fmt.Fprintf(digest, "detect %d %d\n", a.Index, c.Index)
				if done[pair{a.ID, c.ID}] {
					ops = append(ops, opResult{hops: 1})
				} else {
					ops = append(ops, opResult{err: fmt.Errorf("node %d never saw crashed node %d dead", a.Index, c.Index)})
				}
			}
		}
		rep.Timings["detect"] = NewDist(detect)
		cr.DetectP99Ms = percentile(detect, 0.99)
		cr.FalseFailures = len(falseDead)
		// Latency of the detections is in Timings; keep the op latencies
		// for joins and convergence only.
	}

	for _, nd := range live {
		st := gossipStats(nd)
		cr.SuspectedLost += st.SuspectedLost
		cr.LostUnknown += st.LostUnknown
	}
	cr.SuspectedLost -= min(base, cr.SuspectedLost)

	// Partition in two halves, then heal into one view.
	if !o.NoPartition && len(live) >= 2 {
		half := len(live) / 2
		a, b := live[:half], live[half:]
		fmt.Fprintf(digest, "partition %d %d\n", len(a), len(b))
		n.Partition(a, b)
		// Each side sees the other side gone, or at least not alive.
		inA := make(map[peer.ID]bool)
		for _, x := range a {
			inA[x.ID] = true
		}
		splitAt := time.Now()
		split := awaitViews(live, max(o.Deadline, splitBound(len(live))), func(obs *Node, seen map[peer.ID]gossip.State) bool {
			for _, x := range live {
				if inA[x.ID] != inA[obs.ID] && seen[x.ID] == gossip.StateAlive {
					return false
				}
			}
			return true
		})
		ops = phase(ops, &rep, "split", live, split, splitAt, digest, "never saw the other side leave")
		n.Heal()
		healAt := time.Now()
		heal := awaitViews(live, o.Deadline, allAlive(live))
		ops = phase(ops, &rep, "heal", live, heal, healAt, digest, "never saw every member alive")
	}

	rep.Workload = hex.EncodeToString(digest.Sum(nil)[:8])
	rep.tally(ops)
	rep.VirtualTime = time.Since(began).Seconds()
	return rep, nil
}

// splitBound is the longest a member of a cell of n live members may
// take, with the default gossip timing, to stop counting alive a member
// cut off from it, when nothing else helps: the cut-off member refuted a
// suspicion just before the cut, so this observer alone holds it at an
// incarnation the others' suspicions and deaths do not override. Then the
// observer must probe it itself (it probes one member per interval, round
// robin: up to n-1 intervals) and wait out a suspicion that nobody
// confirms (SuspicionMaxTimeoutMult × SuspicionMult × log10(n) intervals),
// plus a push-pull round. With 48 members and the default timing that is
// about 1.8 minutes, near the scenario's default 2-minute phase deadline,
// which the typical split (about 5 s, each side suspecting the other as
// the partition closes their connections) is far below.
func splitBound(n int) time.Duration {
	t := gossip.DefaultTiming()
	probes := time.Duration(max(n-1, 1)) * t.ProbeInterval
	suspicion := time.Duration(float64(t.SuspicionMaxTimeoutMult*t.SuspicionMult) * math.Log10(float64(max(n, 2))) * float64(t.ProbeInterval))
	return probes + suspicion + t.PushPullInterval
}

// gossipStats returns nd's gossip counters (zero if it has no cell).
func gossipStats(nd *Node) gossip.Stats {
	if p := nd.Peer(); p != nil && p.Cell() != nil {
		if m := p.Cell().Gossip(); m != nil {
			return m.Stats()
		}
	}
	return gossip.Stats{}
}

// allAlive holds for a view that lists every one of want alive.
func allAlive(want []*Node) func(*Node, map[peer.ID]gossip.State) bool {
	return func(_ *Node, seen map[peer.ID]gossip.State) bool {
		for _, w := range want {
			// Absent is not alive, though StateAlive is the zero State.
			if st, ok := seen[w.ID]; !ok || st != gossip.StateAlive {
				return false
			}
		}
		return true
	}
}

// view returns what nd's gossip says of each member now (itself: alive).
func view(nd *Node) map[peer.ID]gossip.State {
	seen := map[peer.ID]gossip.State{nd.ID: gossip.StateAlive}
	p := nd.Peer()
	if p == nil || p.Cell() == nil {
		return seen
	}
	if m := p.Cell().Gossip(); m != nil {
		for _, mem := range m.Members() {
			seen[mem.ID] = mem.State
		}
	}
	return seen
}

// awaitViews polls until ok holds for the view of every observer or
// deadline passes, and returns when it first held for each observer.
func awaitViews(observers []*Node, deadline time.Duration, ok func(*Node, map[peer.ID]gossip.State) bool) map[peer.ID]time.Time {
	at := make(map[peer.ID]time.Time)
	end := time.Now().Add(deadline)
	for time.Now().Before(end) && len(at) < len(observers) {
		time.Sleep(cellPoll)
		for _, o := range observers {
			if _, done := at[o.ID]; !done && ok(o, view(o)) {
				at[o.ID] = time.Now()
			}
		}
	}
	return at
}

// phase books one operation per node of a phase and its timing.
func phase(ops []opResult, rep *Report, name string, nodes []*Node, at map[peer.ID]time.Time, from time.Time, digest io.Writer, failure string) []opResult {
	var d []float64
	for _, nd := range nodes {
		fmt.Fprintf(digest, "%s %d\n", name, nd.Index)
		t, ok := at[nd.ID]
		if !ok {
			ops = append(ops, opResult{err: fmt.Errorf("%s: node %d %s", name, nd.Index, failure)})
			continue
		}
		d = append(d, ms(t.Sub(from)))
		ops = append(ops, opResult{hops: 1})
	}
	rep.Timings[name] = NewDist(d)
	return ops
}

func without(all, drop []*Node) []*Node {
	return slices.DeleteFunc(slices.Clone(all), func(x *Node) bool { return slices.Contains(drop, x) })
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
