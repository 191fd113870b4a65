package simnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/service"
)

// StoreOptions shapes the store scenario. Zero fields take defaults.
type StoreOptions struct {
	// Nodes is the number of store nodes, the admin included; the cell
	// has one more member, without the store role. Default 5.
	Nodes int
	// Entities is the number of entities they all mutate. Default 100.
	Entities int
	// Ops is the number of mutations each store node makes. Default 60.
	Ops int
	// Faults is how many faults strike while they do: partitions of the
	// cell in two and crashes of one store node, each healed or restarted
	// a while later. Default 3; negative: none.
	Faults int
	// Dir is the directory under which each node keeps its index, one
	// directory per node. Required.
	Dir string
	// Deadline bounds each wait after the heal (chains alike, indexes
	// caught up, the watch following), in virtual time. Default 3 min.
	Deadline time.Duration
}

func (o StoreOptions) withDefaults() StoreOptions {
	if o.Nodes < 2 {
		o.Nodes = 5
	}
	if o.Entities <= 0 {
		o.Entities = 100
	}
	if o.Ops <= 0 {
		o.Ops = 60
	}
	if o.Faults == 0 {
		o.Faults = 3
	}
	if o.Deadline <= 0 {
		o.Deadline = 3 * time.Minute
	}
	return o
}

// StoreReport is what the store scenario counted.
type StoreReport struct {
	// Written counts the mutations written (a put or delete that
	// returned success); Entries the chain's entries at the end, Live
	// the entities with a live trait.
	Written int `json:"written"`
	Entries int `json:"entries"`
	Live    int `json:"live"`
	// Partitions and Crashes count the faults.
	Partitions int `json:"partitions"`
	Crashes    int `json:"crashes"`
	// AnswerBytes is the size of the answers compared.
	AnswerBytes int `json:"answerBytes"`
	// ConvergedMs is the virtual time from the heal until every index
	// had caught up with the same chain.
	ConvergedMs float64 `json:"convergedMs"`
}

// taskSchema is a trait type with a field of every kind, for the store
// scenario's queries.
var taskSchema = store.Schema{Type: "sim.task", Fields: []store.Field{
	{Name: "title", Kind: store.Text},
	{Name: "tag", Kind: store.Keyword},
	{Name: "n", Kind: store.Number},
	{Name: "due", Kind: store.Time},
	{Name: "owner", Kind: store.Reference},
}}

var storeWords = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}

// ScenarioStore runs the store under faults: Nodes store nodes of one
// cell (and a member without the store role) put, delete traits of and
// delete the same Entities entities concurrently, at a seeded pace, while
// seeded partitions and crashes strike (a crashed node restarts on its
// data). After the heal, once every chain holds the same entries and
// every index has caught up, it runs a fixed set of queries (type, match,
// predicates, orders, paging through with the cursor, references, and a
// get of every entity) on every node: one operation per node, which
// succeeds when its answers are byte for byte node 0's (the thin member's
// come through a store member). Then the store member that answers the
// thin member crashes: one more operation succeeds when the thin member
// answers the same through another, and its watched query (set up before
// the workload) holds the query's first page again, a write after the
// crash included. It must run inside a synctest bubble.
func ScenarioStore(ctx context.Context, n *Net, o StoreOptions) (Report, error) {
	o = o.withDefaults()
	if o.Dir == "" {
		return Report{}, errors.New("simnet: the store scenario needs StoreOptions.Dir")
	}
	began := time.Now()
	plan := planStore(n.Rand, o)
	sr := &StoreReport{}
	rep := Report{Scenario: "store", Seed: n.Seed(), Nodes: o.Nodes + 1, Timings: map[string]Dist{}, Store: sr, Workload: plan.digest()}

	nodes, thin, err := storeCell(ctx, n, o)
	if err != nil {
		return rep, err
	}
	all := append(slices.Clone(nodes), thin)
	if at := awaitViews(all, o.Deadline, allAlive(all)); len(at) < len(all) {
		return rep, fmt.Errorf("the cell's gossip did not converge within %v", o.Deadline)
	}

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchQ := store.Query{Type: "exo.note", Order: store.OrderCreated, Limit: 30}
	events, err := thin.Peer().Store().Watch(wctx, watchQ)
	if err != nil {
		return rep, fmt.Errorf("thin member: watch: %w", err)
	}
	held := &watchedPage{}
	var watching sync.WaitGroup
	watching.Go(func() { held.follow(events) })
	defer watching.Wait()
	defer stopWatch()

	var wg sync.WaitGroup
	written := make([]int, len(nodes))
	start := time.Now()
	for i, nd := range nodes {
		wg.Go(func() { written[i] = runStoreOps(ctx, nd, plan.ops[i], start) })
	}
	var faultErr error
	wg.Go(func() { faultErr = strikeStore(ctx, n, nodes, plan.faults, start) })
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
	for _, w := range written {
		sr.Written += w
	}
	for _, f := range plan.faults {
		if f.crash >= 0 {
			sr.Crashes++
			rep.Crashed++
		} else {
			sr.Partitions++
		}
	}

	length, ok := awaitSameChain(all, o.Deadline)
	if !ok {
		return rep, fmt.Errorf("the chains differ %v after the heal", o.Deadline)
	}
	sr.Entries = length
	if _, ok := pollUntil(o.Deadline, chainPoll, func() bool {
		for _, nd := range nodes {
			st, err := nd.Peer().Store().Status(ctx)
			if err != nil || st.Behind != 0 || st.Next != uint64(length) {
				return false
			}
		}
		return true
	}); !ok {
		return rep, fmt.Errorf("the indexes did not catch up with the chain's %d entries within %v", length, o.Deadline)
	}
	sr.ConvergedMs = ms(time.Since(healAt))
	rep.Timings["converge"] = NewDist([]float64{sr.ConvergedMs})

	var ops []opResult
	ref, err := storeAnswers(ctx, nodes[0], plan.ids)
	if err != nil {
		return rep, err
	}
	sr.AnswerBytes = len(ref)
	for _, nd := range all {
		got, err := storeAnswers(ctx, nd, plan.ids)
		if err == nil && !bytes.Equal(got, ref) {
			err = fmt.Errorf("answers otherwise than node 0: %s", firstDiff(got, ref))
		}
		if err != nil {
			err = fmt.Errorf("node %d: %w", nd.Index, err)
		}
		ops = append(ops, opResult{err: err})
	}
	pg, err := nodes[0].Peer().Store().Query(ctx, store.Query{Limit: store.MaxLimit, Traits: []string{}})
	if err != nil {
		return rep, err
	}
	sr.Live = len(pg.Hits)

	ops = append(ops, opResult{err: fallBack(ctx, n, nodes, thin, held, watchQ, ref, plan.ids, o.Deadline)})
	rep.tally(ops)
	rep.VirtualTime = time.Since(began).Seconds()
	return rep, nil
}

// fallBack crashes the store member that answers thin and checks that
// thin answers the same through another, and that its watch follows.
func fallBack(ctx context.Context, n *Net, nodes []*Node, thin *Node, held *watchedPage, watchQ store.Query, ref []byte, ids []store.EntityID, deadline time.Duration) error {
	st, err := thin.Peer().Store().Status(ctx)
	if err != nil || st.Role != service.RoleRemote || st.Member == "" {
		return fmt.Errorf("fallback: thin member's status %+v, %v", st, err)
	}
	i := slices.IndexFunc(nodes, func(nd *Node) bool { return nd.ID.String() == st.Member })
	if i < 0 {
		return fmt.Errorf("fallback: the thin member's store member %s is not a store node", st.Member)
	}
	if err := n.Crash(nodes[i]); err != nil {
		return err
	}
	got, err := storeAnswers(ctx, thin, ids)
	if err != nil {
		return fmt.Errorf("fallback: %w", err)
	}
	if !bytes.Equal(got, ref) {
		return fmt.Errorf("fallback: the thin member answers otherwise: %s", firstDiff(got, ref))
	}
	if st, err := thin.Peer().Store().Status(ctx); err != nil || st.Member == nodes[i].ID.String() {
		return fmt.Errorf("fallback: thin member's status %+v, %v", st, err)
	}
	up := nodes[(i+1)%len(nodes)]
	doc, err := json.Marshal(map[string]string{"title": "after", "body": "written after the crash"})
	if err != nil {
		return err
	}
	w, err := up.Peer().Store().Put(ctx, store.EntityID{}, []store.Trait{{Type: "exo.note", Doc: doc}})
	if err != nil {
		return fmt.Errorf("fallback: put: %w", err)
	}
	if _, ok := pollUntil(deadline, chainPoll, func() bool {
		pg, err := thin.Peer().Store().Query(ctx, watchQ)
		return err == nil && held.has(w.Entity) && held.equal(hitSet(pg))
	}); !ok {
		return fmt.Errorf("fallback: the thin member's watch did not follow onto another member (holds %d hits)", held.len())
	}
	return nil
}

// storeCell forms a cell of o.Nodes store nodes, each with a directory
// under o.Dir, and one member without the store role or a directory.
func storeCell(ctx context.Context, n *Net, o StoreOptions) (nodes []*Node, thin *Node, err error) {
	types := []store.Schema{taskSchema}
	dir := func(i int) string { return fmt.Sprintf("%s/node-%d", o.Dir, i) }
	admin, err := n.AddNode(ctx, NodeConfig{Dir: dir(0), Types: types})
	if err != nil {
		return nil, nil, err
	}
	if _, err := admin.Peer().Cell().Create(ctx, "store", "node-0"); err != nil {
		return nil, nil, fmt.Errorf("create: %w", err)
	}
	nodes = []*Node{admin}
	for i := 1; i <= o.Nodes; i++ {
		cfg := NodeConfig{Bootstrap: []*Node{admin}, Types: types}
		roles := cell.RoleChain
		if i < o.Nodes {
			cfg.Dir, roles = dir(i), cell.RoleChain|cell.RoleStore
		}
		nd, err := n.AddNode(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{Roles: roles})
		if err != nil {
			return nil, nil, fmt.Errorf("invite: %w", err)
		}
		jctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err = nd.Peer().Cell().Join(jctx, code.String(), fmt.Sprintf("node-%d", i))
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("node %d join: %w", i, err)
		}
		if i < o.Nodes {
			nodes = append(nodes, nd)
		} else {
			thin = nd
		}
	}
	return nodes, thin, nil
}

// storePlan is what the seed decides of a store scenario.
type storePlan struct {
	ids    []store.EntityID
	ops    [][]storeOp // by store node
	faults []storeFault
}

// storeOp is one mutation of Entity: at At (from the start of the
// workload), a put of Traits, or a delete of the traits Delete, or (both
// nil) of the whole entity.
type storeOp struct {
	At     time.Duration
	Entity store.EntityID
	Traits []store.Trait
	Delete []store.TraitID
}

// storeFault is a crash of store node crash (or, when it is -1, a
// partition of side against the rest) from at for dur; dur 0: until the
// heal, when every mutation was made.
type storeFault struct {
	at, dur time.Duration
	crash   int
	side    []int
}

func planStore(rnd func(purpose string) *rand.Rand, o StoreOptions) storePlan {
	var p storePlan
	r := rnd("store entities")
	p.ids = make([]store.EntityID, o.Entities)
	for i := range p.ids {
		for j := range p.ids[i] {
			p.ids[i][j] = byte(r.Uint32())
		}
	}
	for i := range o.Nodes {
		r := rnd(fmt.Sprintf("store ops %d", i))
		var at time.Duration
		var ops []storeOp
		for range o.Ops {
			at += time.Duration(5+r.IntN(60)) * time.Millisecond
			op := storeOp{At: at, Entity: p.ids[r.IntN(len(p.ids))]}
			switch k := r.IntN(20); {
			case k < 13:
				if k%2 == 0 || k < 4 {
					op.Traits = append(op.Traits, noteTrait(r))
				}
				if k%2 == 1 || k < 4 {
					op.Traits = append(op.Traits, taskTrait(r, p.ids))
				}
			case k < 17:
				op.Delete = []store.TraitID{[]store.TraitID{"exo.note", "sim.task"}[r.IntN(2)]}
			}
			ops = append(ops, op)
		}
		p.ops = append(p.ops, ops)
	}
	if o.Faults < 0 {
		return p
	}
	r = rnd("store faults")
	crash := make([]bool, o.Faults)
	for i := range crash {
		crash[i] = r.IntN(2) == 0
	}
	if len(crash) >= 2 && !slices.Contains(crash, !crash[0]) { // both kinds
		i := r.IntN(len(crash))
		crash[i] = !crash[i]
	}
	// The faults share the workload's span (its mean pace is 35 ms); the
	// last lasts until the heal, after the last mutation.
	slot := time.Duration(o.Ops) * 35 * time.Millisecond * 9 / 10 / time.Duration(o.Faults)
	quarter := max(int64(slot/4), 1)
	for i, c := range crash {
		f := storeFault{
			at:    (time.Duration(i)*slot + time.Duration(r.Int64N(quarter))).Round(time.Millisecond),
			dur:   (time.Duration(quarter) + time.Duration(r.Int64N(2*quarter))).Round(time.Millisecond),
			crash: -1,
		}
		if i == len(crash)-1 {
			f.dur = 0
		}
		if c {
			f.crash = r.IntN(o.Nodes)
		} else {
			perm := r.Perm(o.Nodes)
			f.side = slices.Sorted(slices.Values(perm[:1+r.IntN(o.Nodes-1)]))
		}
		p.faults = append(p.faults, f)
	}
	return p
}

func (p storePlan) digest() string {
	h := sha256.New()
	for _, id := range p.ids {
		fmt.Fprintf(h, "entity %s\n", id)
	}
	for i, ops := range p.ops {
		for _, op := range ops {
			fmt.Fprintf(h, "op %d %d %s %v", i, op.At, op.Entity, op.Delete)
			for _, t := range op.Traits {
				fmt.Fprintf(h, " %s %s", t.Type, t.Doc)
			}
			fmt.Fprintln(h)
		}
	}
	for _, f := range p.faults {
		fmt.Fprintf(h, "fault %d %d crash %d side %v\n", f.at, f.dur, f.crash, f.side)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// runStoreOps makes nd's mutations at their times and returns how many
// were written (a mutation on a node that is down is not made; a delete of
// what is not live is refused).
func runStoreOps(ctx context.Context, nd *Node, ops []storeOp, start time.Time) int {
	written := 0
	for _, op := range ops {
		time.Sleep(time.Until(start.Add(op.At)))
		p := nd.Peer()
		if p == nil {
			continue
		}
		s := p.Store()
		var err error
		switch {
		case op.Traits != nil:
			_, err = s.Put(ctx, op.Entity, op.Traits)
		case op.Delete != nil:
			_, err = s.Delete(ctx, op.Entity, op.Delete)
		default:
			_, err = s.Delete(ctx, op.Entity, nil)
		}
		if err == nil {
			written++
		}
	}
	return written
}

// strikeStore runs the faults at their times: a crash, then the restart;
// a partition of the cell's store nodes, then the heal.
func strikeStore(ctx context.Context, n *Net, nodes []*Node, faults []storeFault, start time.Time) error {
	for _, f := range faults {
		time.Sleep(time.Until(start.Add(f.at)))
		if f.crash >= 0 {
			nd := nodes[f.crash]
			if err := n.Crash(nd); err != nil {
				return fmt.Errorf("crash node %d: %w", nd.Index, err)
			}
			if f.dur == 0 {
				continue // restarted at the heal
			}
			time.Sleep(f.dur)
			if err := n.Restart(ctx, nd); err != nil {
				return fmt.Errorf("restart node %d: %w", nd.Index, err)
			}
			continue
		}
		var side []*Node
		for _, i := range f.side {
			side = append(side, nodes[i])
		}
		n.Partition(side, without(n.Nodes(), side))
		if f.dur == 0 {
			continue // healed at the end
		}
		time.Sleep(f.dur)
		n.Heal()
	}
	return nil
}

func words(r *rand.Rand, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = storeWords[r.IntN(len(storeWords))]
	}
	return strings.Join(w, " ")
}

func noteTrait(r *rand.Rand) store.Trait {
	tags := []string{[]string{"red", "green", "blue"}[r.IntN(3)]}
	doc, _ := json.Marshal(map[string]any{"title": words(r, 2), "body": words(r, 5), "tags": tags}) // strings only: it marshals
	return store.Trait{Type: "exo.note", Doc: doc}
}

func taskTrait(r *rand.Rand, ids []store.EntityID) store.Trait {
	doc, _ := json.Marshal(map[string]any{ // strings and an int: it marshals
		"title": words(r, 3), "tag": []string{"a", "ab", "b", "bc"}[r.IntN(4)], "n": r.IntN(10),
		"due":   time.Date(2026, 1, 1+r.IntN(60), 0, 0, 0, 0, time.UTC).Format(time.RFC3339),
		"owner": ids[r.IntN(min(5, len(ids)))].String(),
	})
	return store.Trait{Type: "sim.task", Doc: doc}
}
