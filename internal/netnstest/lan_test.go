package netnstest_test

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/internal/netnstest"
)

func TestMain(m *testing.M) { netnstest.Main(m) }

// Bounds on waits for the network, generous for a loaded machine: each is
// how long a step may take before the test gives up, not a speed the test
// asserts (the figures are logged).
const (
	discoveryLimit = 30 * time.Second // every node lists the others by mDNS
	cellLimit      = 30 * time.Second // a join; the rosters agreeing
	chainLimit     = 30 * time.Second // the chains converging
	callLimit      = 15 * time.Second // one control API call or CLI command
	wrongCodeWait  = "10s"            // the wrong-code join's --timeout (the CLI bounds itself: --timeout + 10 s)
)

// codeRE is an invite code: a nameplate and three words.
var codeRE = regexp.MustCompile(`^[0-9]{4}(-[a-z]+){3}$`)

// TestLAN runs four real nodes, a, b, c and d, on a virtual LAN and checks,
// step by step, what a user of four machines on one LAN sees: they find
// each other by mDNS; a second node on a data dir in use is refused; a
// creates a cell, b joins (after a wrong code, refused) and c and d join,
// and every roster lists the four alive; each appends five chain entries
// and all hold the same twenty in the same order; a removes c, the others
// move to key epoch 2 and c knows it was removed, takes no more appends,
// and does not get a's next entry, which b and d do; d is cut off the LAN
// and removed at once, goes on writing, and once back is told of its
// removal while a and b take none of what it wrote; each node stops on
// SIGINT. A step runs only if the ones before it passed.
func TestLAN(t *testing.T) {
	lan := netnstest.New(t, "a", "b", "c", "d")
	var nodes []*netnstest.Node
	for _, h := range lan.Hosts {
		nodes = append(nodes, lan.Start(t, h))
	}
	a, b, c, d := nodes[0], nodes[1], nodes[2], nodes[3]
	name := map[string]string{}
	for _, n := range nodes {
		name[n.ID] = n.Name
		t.Logf("node %s: %s on %s (%s)", n.Name, n.ID, n.Host.IP, n.Host.NS)
	}
	began := time.Now()
	var cellID string
	figures := map[string]time.Duration{}

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"id", func(t *testing.T) {
			for _, n := range nodes {
				id, err := call(t, n.Client.ID)
				if err != nil || id.ID != n.ID {
					t.Errorf("node %s: the API says its ID is %q (%v), run printed %s", n.Name, id.ID, err, n.ID)
				}
			}
		}},
		{"discovery", func(t *testing.T) {
			figures["discovery after the last start"] = waitAll(t, nodes, "the other nodes listed with source mdns", discoveryLimit, func(n *netnstest.Node) error {
				peers, err := call(t, n.Client.Peers)
				if err != nil {
					return err
				}
				for _, m := range nodes {
					if m != n && !slices.ContainsFunc(peers, func(p api.PeerView) bool {
						return p.Peer == m.ID && slices.Contains(p.Sources, "mdns")
					}) {
						return fmt.Errorf("node %s not listed by mDNS in %+v", m.Name, peers)
					}
				}
				return nil
			})
		}},
		{"second_instance_refused", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), callLimit)
			defer cancel()
			r, err := b.Exopeer(ctx, "run", "--port", fmt.Sprint(netnstest.Port))
			if err != nil {
				t.Fatal(err)
			}
			if r.Code != 1 || !strings.Contains(r.Stderr, "in use by another exopeer node") {
				t.Errorf("a second exopeer run on node b's data dir: %v; want exit 1 and \"in use by another exopeer node\"", r)
			}
			if id, err := call(t, b.Client.ID); err != nil || id.ID != b.ID {
				t.Errorf("node b after the refused second run: ID %q, %v", id.ID, err)
			}
		}},
		{"cell_create_invite_join", func(t *testing.T) {
			view, err := call(t, func(ctx context.Context) (api.CellView, error) {
				return a.Client.CellCreate(ctx, api.CellCreateRequest{Name: "lan-test", Member: "node-a"})
			})
			if err != nil {
				t.Fatalf("node a: cell create: %v", err)
			}
			if !view.Admin || view.Version != 1 || view.Epoch != 1 || len(view.Members) != 1 || view.Members[0].Peer != a.ID {
				t.Fatalf("node a: cell create gave %+v; want admin, version 1, epoch 1, only itself", view)
			}
			cellID = view.ID

			code := invite(t, a)
			wrong := wrongCode(code)
			ctx, cancel := context.WithTimeout(t.Context(), 2*cellLimit) // a backstop: join bounds itself
			defer cancel()
			r, err := b.Exopeer(ctx, "cell", "join", wrong, "--member", "node-b", "--timeout", wrongCodeWait)
			if err != nil {
				t.Fatal(err)
			}
			figures["wrong code refused"] = r.Took
			if r.Code != 1 || !strings.Contains(r.Stderr, "wrong code") {
				t.Fatalf("node b: cell join with the wrong code %s: %v; want exit 1 and \"wrong code\"", wrong, r)
			}
			t.Logf("node b: wrong code %s: %v", wrong, r)

			r, err = b.Exopeer(ctx, "cell", "join", code, "--member", "node-b", "--timeout", cellLimit.String())
			if err != nil {
				t.Fatal(err)
			}
			figures["join b"] = r.Took
			if r.Code != 0 || !strings.Contains(r.Stdout, cellID) {
				t.Fatalf("node b: cell join %s after a wrong one: %v; want exit 0 and cell %s", code, r, cellID)
			}
			view, err = call(t, b.Client.Cell)
			if err != nil || view.ID != cellID || view.Admin || !isSelf(view, b.ID) {
				t.Fatalf("node b after joining: %+v, %v; want cell %s, not admin, itself on it", view, err, cellID)
			}

			code2 := invite(t, a)
			if code2 == code {
				t.Fatalf("node a gave the same code twice: %s", code)
			}
			joined := time.Now()
			view, err = call(t, func(ctx context.Context) (api.CellView, error) {
				return c.Client.CellJoin(ctx, api.CellJoinRequest{Code: code2, Member: "node-c", Timeout: api.Duration(cellLimit)})
			})
			figures["join c"] = time.Since(joined)
			if err != nil || view.ID != cellID || view.Admin || !isSelf(view, c.ID) {
				t.Fatalf("node c: cell join %s: %+v, %v; want cell %s, not admin, itself on it", code2, view, err, cellID)
			}
			code3 := invite(t, a)
			view, err = call(t, func(ctx context.Context) (api.CellView, error) {
				return d.Client.CellJoin(ctx, api.CellJoinRequest{Code: code3, Member: "node-d", Timeout: api.Duration(cellLimit)})
			})
			if err != nil || view.ID != cellID || !isSelf(view, d.ID) {
				t.Fatalf("node d: cell join %s: %+v, %v; want cell %s, itself on it", code3, view, err, cellID)
			}
		}},
		{"members", func(t *testing.T) {
			versions := map[string]uint64{}
			figures["four alive on all"] = waitAll(t, nodes, "a, b, c and d alive in epoch 1", cellLimit, func(n *netnstest.Node) error {
				v, err := call(t, n.Client.Cell)
				if err != nil {
					return err
				}
				versions[n.Name] = v.Version
				return roster(v, cellID, n.ID, 1, name, "a", "b", "c", "d")
			})
			if versions["a"] != versions["b"] || versions["a"] != versions["c"] || versions["a"] != versions["d"] {
				t.Errorf("the nodes hold different roster versions: %v", versions)
			}
		}},
		{"chain_converges", func(t *testing.T) {
			for _, n := range nodes {
				for i := 1; i <= 5; i++ {
					if _, err := call(t, func(ctx context.Context) (api.ChainEntry, error) {
						return n.Client.ChainAppend(ctx, api.ChainText(fmt.Sprintf("entry %d of node %s", i, n.Name)))
					}); err != nil {
						t.Fatalf("node %s: chain append %d: %v", n.Name, i, err)
					}
				}
			}
			order := sameChain(t, nodes, 20, nil)
			for _, n := range nodes {
				for i := 1; i <= 5; i++ {
					if text := fmt.Sprintf("entry %d of node %s", i, n.Name); !slices.Contains(order, text) {
						t.Errorf("%q is missing from the chain: %q", text, order)
					}
				}
			}
		}},
		{"remove", func(t *testing.T) {
			if _, err := call(t, func(ctx context.Context) (api.CellView, error) {
				return a.Client.CellRemove(ctx, api.CellRemoveRequest{Peer: c.ID})
			}); err != nil {
				t.Fatalf("node a: cell remove c: %v", err)
			}
			figures["removal seen on all"] = waitAll(t, nodes, "c removed", cellLimit, func(n *netnstest.Node) error {
				v, err := call(t, n.Client.Cell)
				if err != nil {
					return err
				}
				if n == c {
					if !v.Removed {
						return fmt.Errorf("not marked removed: %+v", v)
					}
					return nil
				}
				return roster(v, cellID, n.ID, 2, name, "a", "b", "d")
			})

			// c takes no more appends; a's next entry reaches b, not c.
			_, err := call(t, func(ctx context.Context) (api.ChainEntry, error) {
				return c.Client.ChainAppend(ctx, api.ChainText("c after its removal"))
			})
			if err == nil || !strings.Contains(err.Error(), "removed") {
				t.Errorf("node c, removed: chain append gave %v; want an error saying it was removed", err)
			}
			const after = "a after the removal of c"
			if _, err := call(t, func(ctx context.Context) (api.ChainEntry, error) {
				return a.Client.ChainAppend(ctx, api.ChainText(after))
			}); err != nil {
				t.Fatalf("node a: chain append after the removal: %v", err)
			}
			order := sameChain(t, []*netnstest.Node{a, b, d}, 21, func(e api.ChainEntry) error {
				if e.Author == c.ID && e.Epoch >= 2 {
					return fmt.Errorf("entry %s by c, removed, in epoch %d", e.CID, e.Epoch)
				}
				return nil
			})
			if !slices.Contains(order, after) {
				t.Errorf("a's entry after the removal is not in the chain of a, b and d: %q", order)
			}
			// c, removed, reads no entry written after its removal: its
			// log is refused, or lacks it.
			log, err := call(t, func(ctx context.Context) (api.ChainEntries, error) { return c.Client.ChainLog(ctx, "", 0) })
			if err != nil && !strings.Contains(err.Error(), "removed") {
				t.Fatalf("node c, removed: chain log: %v; want its log or an error saying it was removed", err)
			}
			for _, e := range log.Entries {
				if text(e) == after {
					t.Errorf("node c, removed, holds an entry written after its removal: %+v", e)
				}
			}
		}},
		{"remove_while_cut_off", func(t *testing.T) {
			// d is cut off the LAN, a removes it at once (--now: a stolen
			// device), and d, which has not heard of it, goes on writing.
			if err := lan.Cut(d.Host); err != nil {
				t.Fatal(err)
			}
			if _, err := call(t, func(ctx context.Context) (api.CellView, error) {
				return a.Client.CellRemove(ctx, api.CellRemoveRequest{Peer: d.ID, Now: true})
			}); err != nil {
				t.Fatalf("node a: cell remove d --now: %v", err)
			}
			const late = "d, cut off, after its removal"
			if _, err := call(t, func(ctx context.Context) (api.ChainEntry, error) {
				return d.Client.ChainAppend(ctx, api.ChainText(late))
			}); err != nil {
				t.Fatalf("node d, cut off and unaware of its removal: chain append: %v", err)
			}
			if err := lan.Heal(d.Host); err != nil {
				t.Fatal(err)
			}
			// Back on the LAN, d is told, and a and b take none of what
			// it wrote after the cut-off.
			up := []*netnstest.Node{a, b}
			figures["cut-off node learns its removal"] = waitAll(t, []*netnstest.Node{a, b, d}, "d removed", cellLimit, func(n *netnstest.Node) error {
				v, err := call(t, n.Client.Cell)
				if err != nil {
					return err
				}
				if n == d {
					if !v.Removed {
						return fmt.Errorf("not marked removed: %+v", v)
					}
					return nil
				}
				return roster(v, cellID, n.ID, 3, name, "a", "b")
			})
			order := sameChain(t, up, 21, nil)
			if slices.Contains(order, late) {
				t.Errorf("an entry d wrote after its removal is in the chain of a and b: %q", order)
			}
			for _, n := range up {
				st, err := call(t, n.Client.ChainStatus)
				if err != nil {
					t.Fatalf("node %s: chain status: %v", n.Name, err)
				}
				t.Logf("node %s: chain length %d, offered %d entries past a cut-off (refused)", n.Name, st.Length, st.Sync.PastCutoff)
			}
		}},
		{"stop", func(t *testing.T) {
			for _, n := range nodes {
				took, err := n.Stop()
				if err != nil {
					t.Error(err)
					continue
				}
				figures["stop "+n.Name] = took
				if !strings.Contains(n.Stdout(), "\nstopped\n") {
					t.Errorf("node %s exited without saying it stopped:\n%s", n.Name, n.Stdout())
				}
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.Fatalf("step %s failed; the steps after it depend on it", s.name)
		}
	}
	var report []string
	for _, k := range slices.Sorted(maps.Keys(figures)) {
		report = append(report, fmt.Sprintf("%s %v", k, figures[k].Round(time.Millisecond)))
	}
	t.Logf("LAN of 4 nodes passed in %v: %s", time.Since(began).Round(time.Millisecond), strings.Join(report, "; "))
}

// call runs f with a context bounded by callLimit.
func call[T any](t *testing.T, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(t.Context(), callLimit)
	defer cancel()
	return f(ctx)
}

// waitAll polls check on every node until it has passed on each (a node
// that passed is not asked again), and returns when the last one passed;
// it fails t with each node's last answer after limit.
func waitAll(t *testing.T, nodes []*netnstest.Node, what string, limit time.Duration, check func(*netnstest.Node) error) time.Duration {
	t.Helper()
	began := time.Now()
	why := map[string]error{}
	for _, n := range nodes {
		why[n.Name] = fmt.Errorf("not asked yet")
	}
	for {
		for _, n := range nodes {
			if why[n.Name] != nil {
				why[n.Name] = check(n)
			}
		}
		var missing []string
		for _, n := range nodes {
			if why[n.Name] != nil {
				missing = append(missing, fmt.Sprintf("node %s: %v", n.Name, why[n.Name]))
			}
		}
		if len(missing) == 0 {
			took := time.Since(began)
			t.Logf("%s on every node after %v", what, took.Round(time.Millisecond))
			return took
		}
		if time.Since(began) > limit {
			t.Fatalf("after %v, not every node shows %s:\n%s", limit, what, strings.Join(missing, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sameChain waits until every node holds want entries in one order, each
// passing check (if not nil), and returns their texts in that order.
func sameChain(t *testing.T, nodes []*netnstest.Node, want int, check func(api.ChainEntry) error) []string {
	t.Helper()
	logs := map[string][]api.ChainEntry{}
	waitAll(t, nodes, fmt.Sprintf("the same %d chain entries", want), chainLimit, func(n *netnstest.Node) error {
		log, err := call(t, func(ctx context.Context) (api.ChainEntries, error) { return n.Client.ChainLog(ctx, "", 0) })
		if err != nil {
			return err
		}
		if len(log.Entries) != want {
			return fmt.Errorf("%d entries, want %d", len(log.Entries), want)
		}
		logs[n.Name] = log.Entries
		return nil
	})
	first := logs[nodes[0].Name]
	var texts []string
	for _, e := range first {
		texts = append(texts, text(e))
		if check != nil {
			if err := check(e); err != nil {
				t.Errorf("node %s: %v", nodes[0].Name, err)
			}
		}
	}
	for _, n := range nodes[1:] {
		if !slices.EqualFunc(logs[n.Name], first, func(x, y api.ChainEntry) bool { return x.CID == y.CID && x.Pos == y.Pos }) {
			t.Errorf("node %s orders the chain unlike node %s:\n%q\n%q", n.Name, nodes[0].Name, textsOf(logs[n.Name]), texts)
		}
	}
	return texts
}

// roster checks a node's view of the cell: cell id, the members (by node
// name) all alive, self marked, key epoch, not removed.
func roster(v api.CellView, id, self string, epoch uint64, name map[string]string, want ...string) error {
	var got []string
	alive := 0
	for _, m := range v.Members {
		got = append(got, name[m.Peer])
		if m.State == "alive" {
			alive++
		}
	}
	slices.Sort(got)
	switch {
	case v.ID != id:
		return fmt.Errorf("cell %q, want %s", v.ID, id)
	case v.Removed:
		return fmt.Errorf("marked removed: %+v", v)
	case !slices.Equal(got, want) || alive != len(want):
		return fmt.Errorf("members %v with %d alive, want %v all alive: %+v", got, alive, want, v.Members)
	case !isSelf(v, self):
		return fmt.Errorf("itself not marked self: %+v", v.Members)
	case v.Epoch != epoch:
		return fmt.Errorf("key epoch %d, want %d", v.Epoch, epoch)
	}
	return nil
}

func isSelf(v api.CellView, id string) bool {
	return slices.ContainsFunc(v.Members, func(m api.CellMemberView) bool { return m.Peer == id && m.Self })
}

// invite asks node n for a one-time code and checks its form.
func invite(t *testing.T, n *netnstest.Node) string {
	t.Helper()
	inv, err := call(t, func(ctx context.Context) (api.CellInvite, error) {
		return n.Client.CellInvite(ctx, api.CellInviteRequest{Roles: "chain,store", TTL: api.Duration(5 * time.Minute)})
	})
	if err != nil {
		t.Fatalf("node %s: cell invite: %v", n.Name, err)
	}
	if !codeRE.MatchString(inv.Code) {
		t.Fatalf("node %s: cell invite gave %q, not a code NNNN-word-word-word", n.Name, inv.Code)
	}
	return inv.Code
}

// wrongCode keeps the nameplate of code and changes every word to another
// word of the list, so that the code parses and the PAKE refuses it.
func wrongCode(code string) string {
	parts := strings.Split(code, "-")
	for i := 1; i < len(parts); i++ {
		if parts[i] == "abandon" {
			parts[i] = "ability"
		} else {
			parts[i] = "abandon"
		}
	}
	return strings.Join(parts, "-")
}

func text(e api.ChainEntry) string {
	if e.Text != nil {
		return *e.Text
	}
	return string(e.Data)
}

func textsOf(es []api.ChainEntry) []string {
	var s []string
	for _, e := range es {
		s = append(s, text(e))
	}
	return s
}
