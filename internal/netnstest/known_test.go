package netnstest_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/internal/netnstest"
)

// knownLimit bounds the wait for a node to write a member to its known
// table: the next ping round (30 s) after the join at the latest.
const knownLimit = 75 * time.Second

// TestKnownAfterMove: a laptop (a) that has met its cell once finds it
// again from another network with no bootstrap flag and no mDNS. a and b
// meet through b's --bootstrap, form a cell and write each other to their
// known tables; both stop; a moves to a new address; both start again
// with neither --bootstrap nor mDNS. b's table holds only a's old address;
// a dials b from its table, and each sees the other alive in the cell.
func TestKnownAfterMove(t *testing.T) {
	lan := netnstest.New(t, "a", "b")
	ha, hb := lan.Host("a"), lan.Host("b")
	a := lan.Start(t, ha, "--mdns=false")
	b := lan.Start(t, hb, "--mdns=false", "--bootstrap", fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", ha.IP, netnstest.Port, a.ID))

	if _, err := call(t, func(ctx context.Context) (api.CellView, error) {
		return a.Client.CellCreate(ctx, api.CellCreateRequest{Name: "known-test", Member: "node-a"})
	}); err != nil {
		t.Fatalf("node a: cell create: %v", err)
	}
	code := invite(t, a)
	ctx, cancel := context.WithTimeout(t.Context(), 2*cellLimit)
	defer cancel()
	r, err := b.Exopeer(ctx, "cell", "join", code, "--member", "node-b", "--timeout", cellLimit.String())
	if err != nil || r.Code != 0 {
		t.Fatalf("node b: cell join: %v %v", r, err)
	}
	for _, w := range []struct{ n, m *netnstest.Node }{{a, b}, {b, a}} {
		waitAll(t, []*netnstest.Node{w.n}, "the other member written to the known table", knownLimit, func(n *netnstest.Node) error {
			if !n.LogHas("known peer written", w.m.ID) {
				return fmt.Errorf("no \"known peer written\" line for %s in its log", w.m.Name)
			}
			return nil
		})
	}
	for _, n := range []*netnstest.Node{a, b} {
		if _, err := n.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	old := ha.IP
	if err := lan.Move(ha, netip.MustParseAddr("10.213.7.200")); err != nil {
		t.Fatal(err)
	}
	t.Logf("node a moved from %s to %s", old, ha.IP)

	b = lan.Start(t, hb, "--mdns=false")
	a = lan.Start(t, ha, "--mdns=false")
	waitAll(t, []*netnstest.Node{a}, "b connected from the known table", cellLimit, func(n *netnstest.Node) error {
		peers, err := call(t, n.Client.Peers)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(peers, func(p api.PeerView) bool { return p.Peer == b.ID && slices.Contains(p.Sources, "known") }) {
			return fmt.Errorf("b not listed with source known in %+v", peers)
		}
		return nil
	})
	waitAll(t, []*netnstest.Node{a, b}, "the other member alive in the cell", cellLimit, func(n *netnstest.Node) error {
		other := a
		if n == a {
			other = b
		}
		v, err := call(t, n.Client.Cell)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(v.Members, func(m api.CellMemberView) bool { return m.Peer == other.ID && m.State == "alive" }) {
			return fmt.Errorf("%s not alive in %+v", other.Name, v.Members)
		}
		return nil
	})
}
