package simnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
)

// ChainOptions shapes the chain scenario. Zero fields take defaults.
type ChainOptions struct {
	// Nodes in the cell, the admin included. Default 5.
	Nodes int
	// Entries each node is asked to append. Default 1,000.
	Entries int
	// Pace is the mean virtual time between two appends of a node.
	// Default 10 ms.
	Pace time.Duration
	// Faults is how many faults strike, one after another, while the
	// nodes append: partitions of the cell in two, and crashes followed
	// by a restart. Default: one per 2.5 s of appending, at least 2;
	// negative: none.
	Faults int
	// Crash is the fraction of the nodes one crash takes down. Default
	// (0): one node; at most all but one.
	Crash float64
	// Deadline bounds the wait, after the heal, for every node to hold
	// the whole chain, in virtual time. Default 2 min.
	Deadline time.Duration
}

func (o ChainOptions) withDefaults() ChainOptions {
	if o.Nodes < 2 {
		o.Nodes = 5
	}
	if o.Entries <= 0 {
		o.Entries = 1000
	}
	if o.Pace <= 0 {
		o.Pace = 10 * time.Millisecond
	}
	if o.Faults == 0 {
		o.Faults = max(2, int(time.Duration(o.Entries)*o.Pace/(2500*time.Millisecond)))
	}
	if o.Deadline <= 0 {
		o.Deadline = 2 * time.Minute
	}
	return o
}

// chainPoll is how often the chain scenario looks at the nodes' chains.
const chainPoll = 50 * time.Millisecond

// ScenarioChain runs a cell's chain under faults: node 0 creates a cell
// and the others join it; then every node appends its entries at a
// seeded pace (one at a time, now and then a batch) while the seed's
// faults strike: partitions of the cell in two that heal, crashes of
// nodes that restart a while later (an append to a node that is down
// fails; only appends that returned success count). The last fault lasts
// until every append has returned; then everything heals (the partition
// ends, crashed nodes restart) and it waits until each node holds every
// entry, and checks that every node's chain is the same (the same CIDs in
// the same order, which is by clock then CID), that it holds each
// successful append once with its payload, and no other entry, and that
// each author's sequence numbers run 1..n without a gap. One operation is
// one node passing all of that; "converge" times, per node, the wait
// after the heal. It must run inside a synctest bubble.
func ScenarioChain(ctx context.Context, n *Net, o ChainOptions) (Report, error) {
	o = o.withDefaults()
	began := time.Now()
	plan := planChain(n.Rand, o)
	cr := &ChainReport{}
	rep := Report{Scenario: "chain", Seed: n.Seed(), Nodes: o.Nodes, Timings: map[string]Dist{}, Chain: cr, Workload: plan.digest()}

	nodes, err := formCell(ctx, n, o.Nodes)
	if err != nil {
		return rep, err
	}
	if at := awaitViews(nodes, o.Deadline, allAlive(nodes)); len(at) < len(nodes) {
		return rep, fmt.Errorf("the cell's gossip did not converge within %v", o.Deadline)
	}

	w := &chainWork{nodes: nodes, done: make([][]appended, len(nodes))}
	start := time.Now()
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Go(func() { w.done[i] = w.appendAll(ctx, i, nd, plan.Appends[i], start) })
	}
	var faultErr error
	wg.Go(func() { faultErr = w.strike(ctx, n, plan.Faults, start) })
	wg.Wait()
	if faultErr != nil {
		return rep, faultErr
	}
	n.Heal()
	for _, nd := range nodes {
		if !nd.Up() {
			if err := n.Restart(ctx, nd); err != nil {
				return rep, err
			}
		}
	}
	healAt := time.Now()

	want := make(map[cid.Cid]appended)
	for _, d := range w.done {
		for _, a := range d {
			want[a.cid] = a
		}
	}
	for _, s := range plan.Appends {
		for _, a := range s {
			cr.Attempted += a.Count
		}
	}
	cr.Appended = len(want)
	for _, f := range plan.Faults {
		if len(f.Crash) > 0 {
			cr.Crashes++
			rep.Crashed += len(f.Crash)
		} else {
			cr.Partitions++
		}
	}

	converged := awaitChains(ctx, nodes, len(want), o.Deadline)
	var conv []float64
	var ops []opResult
	var ref []cid.Cid
	for i, nd := range nodes {
		log, err := nd.Peer().Chain().Log(ctx, chain.Pos{}, len(want)+1000)
		if err != nil {
			return rep, fmt.Errorf("node %d: log: %w", nd.Index, err)
		}
		cs := make([]cid.Cid, len(log))
		for j, e := range log {
			cs[j] = e.CID
		}
		if i == 0 {
			ref = cs
			cr.Entries = len(cs)
		}
		problems := checkChain(log, want, w.done, nodes)
		if !slices.EqualFunc(cs, ref, cid.Cid.Equals) {
			problems = append(problems, fmt.Sprintf("its chain differs from node 0's (%d entries, %d in common at the start)", len(cs), commonPrefix(cs, ref)))
		}
		st, err := nd.Peer().Chain().Status(ctx)
		if err != nil {
			return rep, fmt.Errorf("node %d: status: %w", nd.Index, err)
		}
		if len(st.Forks) > 0 {
			problems = append(problems, fmt.Sprintf("%d forks", len(st.Forks)))
		}
		w.addStats(i, st.Sync)
		t, ok := converged[nd.ID]
		if !ok {
			problems = append(problems, fmt.Sprintf("did not hold all %d entries %v after the heal (holds %d)", len(want), o.Deadline, st.Length))
		} else {
			conv = append(conv, ms(t.Sub(healAt)))
		}
		if len(problems) > 0 {
			ops = append(ops, opResult{err: fmt.Errorf("node %d: %s", nd.Index, strings.Join(problems, "; "))})
			continue
		}
		ops = append(ops, opResult{latency: t.Sub(healAt)})
	}
	rep.Timings["converge"] = NewDist(conv)
	if d := rep.Timings["converge"]; d.N > 0 {
		cr.ConvergedMs = d.Max
	}
	s := w.stats
	cr.Pulls, cr.PullErrors, cr.Served, cr.Received, cr.Sent = s.Pulls, s.PullErrors, s.Served, s.Received, s.Sent
	cr.Rejected, cr.Banned, cr.Announces, cr.Bans = s.Rejected, s.Banned, s.AnnouncesSent, w.bans
	rep.tally(ops)
	rep.VirtualTime = time.Since(began).Seconds()
	return rep, nil
}

// formCell adds size nodes bootstrapped from the first, which creates a
// cell and invites the others; each joins with its code, one after the
// other.
func formCell(ctx context.Context, n *Net, size int) ([]*Node, error) {
	admin, err := n.AddNode(ctx, NodeConfig{})
	if err != nil {
		return nil, err
	}
	if _, err := admin.Peer().Cell().Create(ctx, "sim", "node-0"); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	nodes := []*Node{admin}
	for i := 1; i < size; i++ {
		nd, err := n.AddNode(ctx, NodeConfig{Bootstrap: []*Node{admin}})
		if err != nil {
			return nil, err
		}
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
		if err != nil {
			return nil, fmt.Errorf("invite: %w", err)
		}
		jctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err = nd.Peer().Cell().Join(jctx, code.String(), fmt.Sprintf("node-%d", i))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("node %d join: %w", i, err)
		}
		nodes = append(nodes, nd)
	}
	return nodes, nil
}

// chainPlan is what the seed decides of a chain scenario: when each node
// appends how many entries, and which faults strike when.
type chainPlan struct {
	Appends [][]chainAppend // by node
	Faults  []chainFault
}

// chainAppend is one call of a node's: Append, or AppendMany of Count.
type chainAppend struct {
	At    time.Duration // from the start of the workload
	First int           // the index of its first entry among the node's
	Count int
}

// chainFault is a partition of the cell in two (Side against the rest)
// or a crash of the nodes in Crash, from At for For; then the partition
// heals or the nodes restart. For 0: until the heal, when every append
// has returned.
type chainFault struct {
	At, For time.Duration
	Crash   []int
	Side    []int
}

// planChain draws a chain scenario's workload from rnd (Net.Rand).
func planChain(rnd func(purpose string) *rand.Rand, o ChainOptions) chainPlan {
	o = o.withDefaults()
	var p chainPlan
	for i := range o.Nodes {
		r := rnd(fmt.Sprintf("chain appends %d", i))
		var steps []chainAppend
		var at time.Duration
		for k := 0; k < o.Entries; {
			c := 1
			if r.IntN(8) == 0 {
				c = 2 + r.IntN(15)
			}
			c = min(c, o.Entries-k)
			at += time.Duration(c) * time.Duration(1+r.Int64N(int64(2*o.Pace))).Round(time.Microsecond)
			steps = append(steps, chainAppend{At: at, First: k, Count: c})
			k += c
		}
		p.Appends = append(p.Appends, steps)
	}
	if o.Faults < 0 {
		return p
	}
	r := rnd("chain faults")
	crash := make([]bool, o.Faults)
	for i := range crash {
		crash[i] = r.IntN(2) == 0
	}
	if len(crash) >= 2 && !slices.Contains(crash, !crash[0]) {
		i := r.IntN(len(crash))
		crash[i] = !crash[i]
	}
	down := min(max(1, int(math.Round(o.Crash*float64(o.Nodes)))), o.Nodes-1)
	slot := time.Duration(o.Entries) * o.Pace * 9 / 10 / time.Duration(o.Faults)
	quarter := max(int64(slot/4), 1)
	for i, c := range crash {
		f := chainFault{
			At:  (time.Duration(i)*slot + time.Duration(r.Int64N(quarter))).Round(time.Microsecond),
			For: (time.Duration(quarter) + time.Duration(r.Int64N(2*quarter))).Round(time.Microsecond),
		}
		if i == len(crash)-1 {
			f.For = 0 // the last lasts until the heal
		}
		perm := r.Perm(o.Nodes)
		if c {
			f.Crash = slices.Sorted(slices.Values(perm[:down]))
		} else {
			f.Side = slices.Sorted(slices.Values(perm[:1+r.IntN(o.Nodes-1)]))
		}
		p.Faults = append(p.Faults, f)
	}
	return p
}

// digest sums up the plan.
func (p chainPlan) digest() string {
	h := sha256.New()
	for i, steps := range p.Appends {
		for _, s := range steps {
			fmt.Fprintf(h, "append %d %d %d %d\n", i, s.At, s.First, s.Count)
		}
	}
	for _, f := range p.Faults {
		fmt.Fprintf(h, "fault %d %d crash %v side %v\n", f.At, f.For, f.Crash, f.Side)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// appended is an entry whose append returned success.
type appended struct {
	cid     cid.Cid
	node    int // index into the scenario's nodes
	seq     uint64
	payload string
}

// chainWork is the chain scenario's running workload.
type chainWork struct {
	nodes []*Node
	done  [][]appended // by node: its successful appends, in order

	mu    sync.Mutex
	stats replica.Stats // the sync counters of nodes' lives that ended
	bans  []string      // why a node life last cut a member off
}

// appendAll makes the appends of nd, the scenario's node i, at their
// times and returns those that succeeded.
func (w *chainWork) appendAll(ctx context.Context, i int, nd *Node, steps []chainAppend, start time.Time) []appended {
	var out []appended
	for _, s := range steps {
		time.Sleep(time.Until(start.Add(s.At)))
		p := nd.Peer()
		if p == nil {
			continue // down: the append fails
		}
		payloads := make([][]byte, s.Count)
		for j := range payloads {
			payloads[j] = fmt.Appendf(nil, "node %d entry %d", i, s.First+j)
		}
		es, err := p.Chain().AppendMany(ctx, payloads)
		if err != nil {
			continue
		}
		for j, e := range es {
			out = append(out, appended{cid: e.CID, node: i, seq: e.Seq, payload: string(payloads[j])})
		}
	}
	return out
}

// strike runs the faults at their times.
func (w *chainWork) strike(ctx context.Context, n *Net, faults []chainFault, start time.Time) error {
	for _, f := range faults {
		time.Sleep(time.Until(start.Add(f.At)))
		if len(f.Crash) > 0 {
			for _, i := range f.Crash {
				nd := w.nodes[i]
				if st, err := nd.Peer().Chain().Status(ctx); err == nil {
					w.addStats(i, st.Sync)
				}
				if err := n.Crash(nd); err != nil {
					return fmt.Errorf("crash node %d: %w", i, err)
				}
			}
		} else {
			var side []*Node
			for _, i := range f.Side {
				side = append(side, w.nodes[i])
			}
			n.Partition(side, without(w.nodes, side))
		}
		if f.For == 0 {
			continue // undone by the heal
		}
		time.Sleep(time.Until(start.Add(f.At + f.For)))
		if len(f.Crash) > 0 {
			for _, i := range f.Crash {
				if err := n.Restart(ctx, w.nodes[i]); err != nil {
					return fmt.Errorf("restart node %d: %w", i, err)
				}
			}
		} else {
			n.Heal()
		}
	}
	return nil
}

// addStats adds the sync counters of node i's life that ends (or of its
// last, when the scenario ends).
func (w *chainWork) addStats(i int, s replica.Stats) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s.Banned > 0 {
		j := slices.IndexFunc(w.nodes, func(nd *Node) bool { return nd.ID == s.LastBanned })
		w.bans = append(w.bans, fmt.Sprintf("node %d cut node %d off %d times, last: %s", i, j, s.Banned, s.LastBannedBecause))
	}
	w.stats.Pulls += s.Pulls
	w.stats.PullErrors += s.PullErrors
	w.stats.Served += s.Served
	w.stats.Received += s.Received
	w.stats.Sent += s.Sent
	w.stats.Rejected += s.Rejected
	w.stats.Banned += s.Banned
	w.stats.AnnouncesSent += s.AnnouncesSent
}

// awaitChains polls until every node's chain is length entries long or
// deadline passes, and returns when each node first got there.
func awaitChains(ctx context.Context, nodes []*Node, length int, deadline time.Duration) map[peer.ID]time.Time {
	at := make(map[peer.ID]time.Time)
	end := time.Now().Add(deadline)
	for {
		for _, nd := range nodes {
			if _, ok := at[nd.ID]; ok {
				continue
			}
			if p := nd.Peer(); p != nil {
				if st, err := p.Chain().Status(ctx); err == nil && st.Length == length {
					at[nd.ID] = time.Now()
				}
			}
		}
		if len(at) == len(nodes) || !time.Now().Before(end) {
			return at
		}
		time.Sleep(chainPoll)
	}
}

// checkChain lists what is wrong with one node's chain (log, in chain
// order) given the successful appends.
func checkChain(log []replica.Entry, want map[cid.Cid]appended, done [][]appended, nodes []*Node) []string {
	var problems []string
	seen := make(map[cid.Cid]bool, len(log))
	var dup, unknown, badPayload, badOrder int
	seqs := make(map[peer.ID][]uint64)
	for j, e := range log {
		if seen[e.CID] {
			dup++
		}
		seen[e.CID] = true
		a, ok := want[e.CID]
		switch {
		case !ok:
			unknown++
		case string(e.Payload) != a.payload || e.Author != nodes[a.node].ID || e.Seq != a.seq:
			badPayload++
		}
		if j > 0 && log[j-1].Pos.Compare(e.Pos) >= 0 {
			badOrder++
		}
		seqs[e.Author] = append(seqs[e.Author], e.Seq)
	}
	missing := 0
	for c := range want {
		if !seen[c] {
			missing++
		}
	}
	if len(log) != len(want) {
		problems = append(problems, fmt.Sprintf("%d entries, want %d", len(log), len(want)))
	}
	for _, c := range []struct {
		n    int
		what string
	}{{missing, "successful appends missing"}, {dup, "duplicates"}, {unknown, "entries nobody appended"},
		{badPayload, "entries with another payload, author or sequence number"}, {badOrder, "entries out of (clock, CID) order"}} {
		if c.n > 0 {
			problems = append(problems, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	for i, nd := range nodes {
		s := seqs[nd.ID]
		slices.Sort(s)
		for j, seq := range s {
			if seq != uint64(j+1) {
				problems = append(problems, fmt.Sprintf("node %d's sequence numbers have a gap or a repeat at %d", i, j+1))
				break
			}
		}
		if len(s) != len(done[i]) {
			problems = append(problems, fmt.Sprintf("node %d's entries: %d, it appended %d", i, len(s), len(done[i])))
		}
	}
	return problems
}

func commonPrefix(a, b []cid.Cid) int {
	i := 0
	for i < len(a) && i < len(b) && a[i].Equals(b[i]) {
		i++
	}
	return i
}
