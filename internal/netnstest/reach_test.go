package netnstest_test

import (
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/internal/netnstest"
)

// reachLimit bounds the wait for AutoNAT v2's first verdicts: a new
// address is probed a second after it appears, each server answers one
// request of a client per 2 minutes, and an address needs two agreeing
// answers.
const reachLimit = 90 * time.Second

// TestReachability runs real AutoNAT v2 between four real nodes. AutoNAT
// judges public addresses only (never loopback or a private range), so a,
// b and c get a second address on the LAN's cable, in 11.213.7.0/24,
// which libp2p counts as public (the packets stay on the test's bridge:
// the namespaces have no other route), and d gets only a route to that
// subnet, so that it can dial back as a server but has no public address
// of its own. Each of a, b and c is then judged reachable by the others
// (the servers dial back its 11.213.7.x address): it is public, and its
// DHT's WAN table, in auto mode, a server; d stays private, its addresses
// all local, its WAN table a client. `exopeer status` shows both.
func TestReachability(t *testing.T) {
	lan := netnstest.New(t, "a", "b", "c", "d")
	public := map[string]netip.Addr{}
	for i, h := range lan.Hosts {
		args := []string{"-n", h.NS, "route", "add", "11.213.7.0/24", "dev", "eth0"}
		if h.Name != "d" {
			public[h.Name] = netip.AddrFrom4([4]byte{11, 213, 7, byte(i + 1)})
			args = []string{"-n", h.NS, "addr", "add", public[h.Name].String() + "/24", "dev", "eth0"}
		}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	var nodes []*netnstest.Node
	for _, h := range lan.Hosts {
		nodes = append(nodes, lan.Start(t, h))
	}
	d := nodes[3]
	waitAll(t, nodes, "the verdicts", reachLimit, func(n *netnstest.Node) error {
		st, err := call(t, n.Client.Status)
		if err != nil {
			return err
		}
		if n == d {
			return reachIs(st, api.StatusReachabilityPrivate, "wan:client", "")
		}
		return reachIs(st, api.StatusReachabilityPublic, "wan:server", "/ip4/"+public[n.Name].String()+"/")
	})

	ctx := t.Context()
	for _, tc := range []struct {
		n    *netnstest.Node
		want []string
	}{
		{nodes[0], []string{`(?m)^reachability +public$`, `(?m)^DHT mode +auto \(wan:server, lan:server\)$`, `(?m) +/ip4/11\.213\.7\.1/\S+ +reachable$`, `(?m) +/ip4/10\.213\.7\.1/\S+ +local$`}},
		{d, []string{`(?m)^reachability +private$`, `(?m)^DHT mode +auto \(wan:client, lan:server\)$`, `(?m) +/ip4/10\.213\.7\.4/\S+ +local$`}},
	} {
		r, err := tc.n.Exopeer(ctx, "status")
		if err != nil || r.Code != 0 {
			t.Fatalf("node %s: exopeer status: %v %v", tc.n.Name, r, err)
		}
		for _, re := range tc.want {
			if !regexp.MustCompile(re).MatchString(r.Stdout) {
				t.Errorf("node %s: exopeer status does not match %s:\n%s", tc.n.Name, re, r.Stdout)
			}
		}
	}
}

// reachIs says why st is not overall want with the WAN table in mode wan
// and, if addr is not empty, an address starting with addr reachable and
// every other address not reachable.
func reachIs(st api.Status, want api.StatusReachability, wan, addr string) error {
	if st.Reachability != want || !slices.Contains(st.DHTModes, wan) {
		return fmt.Errorf("reachability %s, DHT %v; want %s and %s: %+v", st.Reachability, st.DHTModes, want, wan, st.AddrReachability)
	}
	found := addr == ""
	for _, a := range st.AddrReachability {
		public := addr != "" && strings.HasPrefix(a.Addr, addr)
		switch {
		case public && a.Reachability == api.AddrReachabilityReachabilityReachable:
			found = true
		case !public && a.Reachability != api.AddrReachabilityReachabilityLocal:
			return fmt.Errorf("address %s is %s, want local: %+v", a.Addr, a.Reachability, st.AddrReachability)
		}
	}
	if !found {
		return fmt.Errorf("no address %s... reachable: %+v", addr, st.AddrReachability)
	}
	return nil
}
