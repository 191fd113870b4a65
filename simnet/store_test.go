package simnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/service"
)

// The store under faults: storeSeeds seeds by default (-store.seeds=N for
// more), storeOps mutations per node (-store.ops=N for bigger runs).
var (
	storeSeeds = flag.Int("store.seeds", 2, "seeds TestStoreConvergence runs")
	storeOps   = flag.Int("store.ops", 60, "mutations each node of TestStoreConvergence makes")
)

// taskSchema is a trait type with a field of every kind, for the
// scenario's queries.
var taskSchema = store.Schema{Type: "sim.task", Fields: []store.Field{
	{Name: "title", Kind: store.Text},
	{Name: "tag", Kind: store.Keyword},
	{Name: "n", Kind: store.Number},
	{Name: "due", Kind: store.Time},
	{Name: "owner", Kind: store.Reference},
}}

const storeEntities = 100

var storeWords = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}

// TestStoreConvergence: 5 store nodes of one cell put, delete traits of
// and delete the same 100 entities concurrently, under seeded partitions
// and crashes (a crashed node restarts on its data). After the heal, once
// every chain holds the same entries and every index has caught up, a set
// of queries (type, match, predicates, orders, paging with the cursor,
// references, and a get of every entity) gives byte-identical JSON on
// every node; a member without the store role gets the same answers
// through a store member, its watched query holds the same first page,
// and both go on when that member crashes.
func TestStoreConvergence(t *testing.T) {
	for seed := uint64(1); seed <= uint64(*storeSeeds); seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			dirs := make([]string, 6)
			for i := range dirs {
				dirs[i] = t.TempDir()
			}
			synctest.Test(t, func(t *testing.T) {
				storeScenario(t, seed, dirs)
			})
		})
	}
}

func storeScenario(t *testing.T, seed uint64, dirs []string) {
	ctx := context.Background()
	n := New(Config{Seed: seed})
	defer settle(t, n)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
	}
	nodes, thin := storeCell(t, ctx, n, dirs)
	all := append(slices.Clone(nodes), thin)
	waitAlive(t, all, time.Minute)

	ids := make([]store.EntityID, storeEntities)
	r := n.Rand("store entities")
	for i := range ids {
		for j := range ids[i] {
			ids[i][j] = byte(r.Uint32())
		}
	}

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchQ := store.Query{Type: "exo.note", Order: store.OrderCreated, Limit: 30}
	events, err := thin.Peer().Store().Watch(wctx, watchQ)
	if err != nil {
		fail("thin node: Watch: %v", err)
	}
	held := &watchedPage{}
	var watchDone sync.WaitGroup
	watchDone.Go(func() { held.follow(events) })

	var wg sync.WaitGroup
	var mu sync.Mutex
	written := 0
	for i, nd := range nodes {
		wg.Go(func() {
			w := mutate(ctx, n.Rand(fmt.Sprintf("store ops %d", i)), nd, ids, *storeOps)
			mu.Lock()
			written += w
			mu.Unlock()
		})
	}
	wg.Go(func() { storeFaults(ctx, t, n, n.Rand("store faults"), nodes) })
	wg.Wait()
	n.Heal()
	for _, nd := range nodes {
		if !nd.Up() {
			if err := n.Restart(ctx, nd); err != nil {
				fail("restart node %d: %v", nd.Index, err)
			}
		}
	}
	if written == 0 {
		fail("no mutation was written")
	}

	// Every chain the same, then every index caught up with it.
	length := awaitSameChain(t, all, 3*time.Minute)
	if _, ok := waitUntil(time.Minute, 50*time.Millisecond, func() bool {
		for _, nd := range nodes {
			st, err := nd.Peer().Store().Status(ctx)
			if err != nil || st.Behind != 0 || st.Next != uint64(length) {
				return false
			}
		}
		return true
	}); !ok {
		for _, nd := range nodes {
			st, err := nd.Peer().Store().Status(ctx)
			t.Logf("node %d: %+v %v", nd.Index, st, err)
		}
		fail("the indexes did not catch up with the %d entries", length)
	}

	ref := answers(t, ctx, nodes[0], ids)
	for _, nd := range append(nodes[1:], thin) {
		if got := answers(t, ctx, nd, ids); !bytes.Equal(got, ref) {
			fail("node %d answers otherwise than node 0:\n%s", nd.Index, firstDiff(got, ref))
		}
	}
	live := len(mustQuery(t, ctx, nodes[0], store.Query{Limit: store.MaxLimit, Traits: []string{}}).Hits)
	t.Logf("seed %d: %d mutations written, %d chain entries, %d live entities, %d answer bytes", seed, written, length, live, len(ref))

	// The watch's page is the query's first page.
	want := hitSet(mustQuery(t, ctx, nodes[0], watchQ))
	if _, ok := waitUntil(time.Minute, 50*time.Millisecond, func() bool { return held.equal(want) }); !ok {
		fail("the thin node's watch holds %d hits, the query's first page %d", held.len(), len(want))
	}

	// The member answering the thin node crashes: it falls back to
	// another, for reads and for its watch.
	st, err := thin.Peer().Store().Status(ctx)
	if err != nil || st.Role != service.RoleRemote || st.Member == "" {
		fail("thin node: Status %+v, %v", st, err)
	}
	var member *Node
	for _, nd := range nodes {
		if nd.ID.String() == st.Member {
			member = nd
		}
	}
	if member == nil {
		fail("thin node's member %s is not a store node", st.Member)
	}
	if err := n.Crash(member); err != nil {
		fail("crash: %v", err)
	}
	var up []*Node
	for _, nd := range nodes {
		if nd.Up() {
			up = append(up, nd)
		}
	}
	if got := answers(t, ctx, thin, ids); !bytes.Equal(got, ref) {
		fail("after its member crashed, the thin node answers otherwise:\n%s", firstDiff(got, ref))
	}
	if st, err := thin.Peer().Store().Status(ctx); err != nil || st.Member == member.ID.String() || st.Member == "" {
		fail("thin node after the crash: Status %+v, %v", st, err)
	}
	w, err := up[0].Peer().Store().Put(ctx, store.EntityID{}, []store.Trait{{Type: "exo.note", Doc: json.RawMessage(`{"title":"after","body":"written after the crash"}`)}})
	if err != nil {
		fail("put after the crash: %v", err)
	}
	if _, ok := waitUntil(time.Minute, 50*time.Millisecond, func() bool {
		pg, err := thin.Peer().Store().Query(ctx, watchQ)
		return err == nil && held.has(w.Entity) && held.equal(hitSet(pg))
	}); !ok {
		fail("the thin node's watch did not follow onto another member (holds %d hits)", held.len())
	}
	stopWatch()
	watchDone.Wait()
}

// storeCell forms a cell of 5 store nodes, each with a directory, and one
// member without the store role and without one.
func storeCell(t *testing.T, ctx context.Context, n *Net, dirs []string) (nodes []*Node, thin *Node) {
	t.Helper()
	types := []store.Schema{taskSchema}
	admin := addNode(t, ctx, n, NodeConfig{Dir: dirs[0], Types: types})
	if _, err := admin.Peer().Cell().Create(ctx, "store", "admin"); err != nil {
		t.Fatalf("seed %d: Create: %v", n.Seed(), err)
	}
	nodes = []*Node{admin}
	for i := 1; i <= 5; i++ {
		cfg := NodeConfig{Bootstrap: []*Node{admin}, Types: types}
		roles := cell.RoleChain
		if i < 5 {
			cfg.Dir, roles = dirs[i], cell.RoleChain|cell.RoleStore
		}
		nd := addNode(t, ctx, n, cfg)
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{Roles: roles})
		if err != nil {
			t.Fatalf("seed %d: Invite: %v", n.Seed(), err)
		}
		jctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err = nd.Peer().Cell().Join(jctx, code.String(), fmt.Sprintf("node-%d", i))
		cancel()
		if err != nil {
			t.Fatalf("seed %d: node %d Join: %v", n.Seed(), i, err)
		}
		if i < 5 {
			nodes = append(nodes, nd)
		} else {
			thin = nd
		}
	}
	return nodes, thin
}

// mutate makes count mutations of ids from nd, at a seeded pace: puts of
// one or two traits, trait deletes and entity deletes. A mutation on a
// node that is down is not made. It returns how many were written.
func mutate(ctx context.Context, r *rand.Rand, nd *Node, ids []store.EntityID, count int) int {
	written := 0
	for range count {
		time.Sleep(time.Duration(5+r.IntN(60)) * time.Millisecond)
		e := ids[r.IntN(len(ids))]
		p := nd.Peer()
		if p == nil {
			continue
		}
		s := p.Store()
		var err error
		switch k := r.IntN(20); {
		case k < 13:
			var ts []store.Trait
			if k%2 == 0 || k < 4 {
				ts = append(ts, noteTrait(r))
			}
			if k%2 == 1 || k < 4 {
				ts = append(ts, taskTrait(r, ids))
			}
			_, err = s.Put(ctx, e, ts)
		case k < 17:
			_, err = s.Delete(ctx, e, []store.TraitID{[]store.TraitID{"exo.note", "sim.task"}[r.IntN(2)]})
		default:
			_, err = s.Delete(ctx, e, nil)
		}
		if err == nil { // else: not found, or down meanwhile
			written++
		}
	}
	return written
}

func words(r *rand.Rand, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = storeWords[r.IntN(len(storeWords))]
	}
	return strings.Join(w, " ")
}

func noteTrait(r *rand.Rand) store.Trait {
	doc, _ := json.Marshal(map[string]any{
		"title": words(r, 2), "body": words(r, 5),
		"tags": []string{[]string{"red", "green", "blue"}[r.IntN(3)]},
	})
	return store.Trait{Type: "exo.note", Doc: doc}
}

func taskTrait(r *rand.Rand, ids []store.EntityID) store.Trait {
	doc, _ := json.Marshal(map[string]any{
		"title": words(r, 3), "tag": []string{"a", "ab", "b", "bc"}[r.IntN(4)], "n": r.IntN(10),
		"due":   time.Date(2026, 1, 1+r.IntN(60), 0, 0, 0, 0, time.UTC).Format(time.RFC3339),
		"owner": ids[r.IntN(5)].String(),
	})
	return store.Trait{Type: "sim.task", Doc: doc}
}

// storeFaults strikes three seeded faults while the nodes write: each a
// partition of the cell in two or a crash of one node, lasting a while,
// then healed or restarted.
func storeFaults(ctx context.Context, t *testing.T, n *Net, r *rand.Rand, nodes []*Node) {
	for range 3 {
		time.Sleep(time.Duration(200+r.IntN(800)) * time.Millisecond)
		hold := time.Duration(300+r.IntN(1200)) * time.Millisecond
		if r.IntN(2) == 0 {
			nd := nodes[r.IntN(len(nodes))]
			if err := n.Crash(nd); err != nil {
				t.Errorf("seed %d: crash node %d: %v", n.Seed(), nd.Index, err)
				return
			}
			time.Sleep(hold)
			if err := n.Restart(ctx, nd); err != nil {
				t.Errorf("seed %d: restart node %d: %v", n.Seed(), nd.Index, err)
				return
			}
			continue
		}
		perm := r.Perm(len(nodes))
		var side []*Node
		for _, i := range perm[:1+r.IntN(len(nodes)-1)] {
			side = append(side, nodes[i])
		}
		n.Partition(side, without(n.Nodes(), side))
		time.Sleep(hold)
		n.Heal()
	}
}

// awaitSameChain waits until every node holds the same entries (length
// and heads) and returns the length.
func awaitSameChain(t *testing.T, nodes []*Node, limit time.Duration) int {
	t.Helper()
	var length int
	_, ok := waitUntil(limit, 50*time.Millisecond, func() bool {
		var heads string
		for i, nd := range nodes {
			st, err := nd.Peer().Chain().Status(context.Background())
			if err != nil {
				return false
			}
			h := fmt.Sprint(st.Heads)
			if i == 0 {
				length, heads = st.Length, h
			} else if st.Length != length || h != heads {
				return false
			}
		}
		return true
	})
	if !ok {
		for _, nd := range nodes {
			t.Logf("node %d holds %d entries", nd.Index, chainStatus(t, nd).Length)
		}
		t.Fatalf("seed %d: after %v the chains differ", nodes[0].net.Seed(), limit)
	}
	return length
}

// answers runs the fixed queries on nd and returns their answers as JSON.
func answers(t *testing.T, ctx context.Context, nd *Node, ids []store.EntityID) []byte {
	t.Helper()
	owner := ids[0]
	qs := []store.Query{
		{Type: "exo.note"},
		{Type: "sim.task", Order: "n", Limit: store.MaxLimit},
		{Match: "alpha"},
		{Match: "bravo charlie", Type: "exo.note"},
		{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "red"}}},
		{Type: "sim.task", Where: []store.Predicate{{Field: "n", Op: store.Ge, Value: "3"}, {Field: "n", Op: store.Lt, Value: "8"}}, Order: "due", Desc: true},
		{Type: "sim.task", Where: []store.Predicate{{Field: "tag", Op: store.Prefix, Value: "a"}}, Traits: []string{"sim.task"}},
		{Type: "sim.task", Where: []store.Predicate{{Field: "due", Op: store.Lt, Value: "2026-02-01T00:00:00Z"}}, Order: store.OrderCreated, Asc: true},
		{RefersTo: &owner},
		{Limit: store.MaxLimit, Traits: []string{}},
	}
	var b bytes.Buffer
	for _, q := range qs {
		pg := mustQuery(t, ctx, nd, q)
		fmt.Fprintf(&b, "query %s\n", mustJSON(q))
		b.Write(mustJSON(pg))
		b.WriteByte('\n')
	}
	// Paging through with the cursor.
	q := store.Query{Type: "exo.note", Order: store.OrderModified, Limit: 7}
	for page := 0; ; page++ {
		pg := mustQuery(t, ctx, nd, q)
		fmt.Fprintf(&b, "page %d\n", page)
		b.Write(mustJSON(pg))
		b.WriteByte('\n')
		if pg.Next == "" || page > storeEntities {
			break
		}
		q.After = pg.Next
	}
	for _, id := range ids {
		e, err := nd.Peer().Store().Get(ctx, id, nil)
		switch {
		case errors.Is(err, store.ErrNotFound):
			fmt.Fprintf(&b, "get %s: not found\n", id)
		case err != nil:
			t.Fatalf("seed %d: node %d: Get %s: %v", nd.net.Seed(), nd.Index, id, err)
		default:
			fmt.Fprintf(&b, "get %s\n", id)
			b.Write(mustJSON(e))
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func mustQuery(t *testing.T, ctx context.Context, nd *Node, q store.Query) store.Page {
	t.Helper()
	pg, err := nd.Peer().Store().Query(ctx, q)
	if err != nil {
		t.Fatalf("seed %d: node %d: Query %s: %v", nd.net.Seed(), nd.Index, mustJSON(q), err)
	}
	return pg
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the store's shapes always marshal
	}
	return b
}

// firstDiff shows the first line where a and b differ.
func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n got %.400s\nwant %.400s", i, al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(al), len(bl))
}

// watchedPage is the first page a watch's consumer holds, built from its
// events.
type watchedPage struct {
	mu   sync.Mutex
	hits map[store.EntityID]string
}

func (w *watchedPage) follow(events <-chan store.WatchEvent) {
	for ev := range events {
		w.mu.Lock()
		if ev.Page != nil {
			w.hits = hitSet(*ev.Page)
		}
		for _, c := range ev.Changes {
			if c.Kind == store.Removed {
				delete(w.hits, c.Hit.Entity.ID)
			} else {
				w.hits[c.Hit.Entity.ID] = string(mustJSON(c.Hit))
			}
		}
		w.mu.Unlock()
	}
}

func (w *watchedPage) equal(m map[store.EntityID]string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.hits) != len(m) {
		return false
	}
	for id, h := range m {
		if w.hits[id] != h {
			return false
		}
	}
	return true
}

func (w *watchedPage) has(id store.EntityID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.hits[id]
	return ok
}

func (w *watchedPage) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.hits)
}

func hitSet(pg store.Page) map[store.EntityID]string {
	m := make(map[store.EntityID]string, len(pg.Hits))
	for _, h := range pg.Hits {
		m[h.Entity.ID] = string(mustJSON(h))
	}
	return m
}
