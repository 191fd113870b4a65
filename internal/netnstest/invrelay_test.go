package netnstest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/internal/netnstest"
)

// TestNATJoinThroughRelay: a person's laptop (a1, behind a cone NAT)
// holds the cell and its key; the VPS r1 (public, relay service auto; r2
// is another public node, for AutoNAT's dial-backs)
// joins it; a1 reserves a slot on r1. The phone b1, behind a symmetric NAT
// (no hole punching with it), joins a1's cell with a code from a1: it is a
// stranger to r1 and reaches a1 only through r1's circuit, which r1 admits
// because a1's invite window is open.
func TestNATJoinThroughRelay(t *testing.T) {
	n, _, homes := natNet(t, false, "r1", "r2")
	a1h, b1h := n.AddHost(homes[0], "a1"), n.AddHost(homes[1], "b1")
	rs := n.StartAll(t, []*netnstest.Host{n.Host("r1"), n.Host("r2")})
	r1, r2 := rs[0], rs[1]
	homeNodes := n.StartAll(t, []*netnstest.Host{a1h, b1h}, "--bootstrap", quicAddr(r1), "--bootstrap", quicAddr(r2))
	a1, b1 := homeNodes[0], homeNodes[1]
	waitAll(t, []*netnstest.Node{r1}, "r1 public", reachLimit, func(nd *netnstest.Node) error {
		st, err := call(t, nd.Client.Status)
		if err != nil {
			return err
		}
		return reachIs(st, api.StatusReachabilityPublic, "wan:server", "/ip4/"+nd.Host.IP.String()+"/")
	})
	var cv api.CellView
	runJSON(t, a1, &cv, "cell", "create", "person", "--member", "laptop")
	var got api.CellView
	runJSONWithin(t, r1, cellLimit+callLimit, &got, "cell", "join", invite(t, a1), "--member", "vps", "--timeout", cellLimit.String())
	if got.ID != cv.ID {
		t.Fatalf("r1 joined cell %s, want %s", got.ID, cv.ID)
	}
	waitAll(t, []*netnstest.Node{a1}, "a1 reachable through r1's relay", reachLimit, func(nd *netnstest.Node) error {
		st, err := call(t, nd.Client.Status)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(st.Addrs, func(a string) bool {
			return strings.Contains(a, "/p2p/"+r1.ID+"/p2p-circuit")
		}) {
			return fmt.Errorf("no relayed address through r1 in %v", st.Addrs)
		}
		return nil
	})
	code := invite(t, a1)
	ctx, cancel := context.WithTimeout(t.Context(), 2*cellLimit)
	defer cancel()
	r, err := b1.Exopeer(ctx, "cell", "join", code, "--member", "phone", "--timeout", cellLimit.String())
	if err != nil || r.Code != 0 {
		t.Fatalf("b1 (symmetric NAT): cell join through r1: %v %v", r, err)
	}
}
