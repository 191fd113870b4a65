package netnstest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/internal/netnstest"
)

// The test internet and its homes: libp2p counts 11.213.0.0/24 as public
// (the packets never leave the test's namespaces); the homes are private.
var (
	inetPrefix  = netip.MustParsePrefix("11.213.0.0/24")
	home1Prefix = netip.MustParsePrefix("10.213.1.0/24")
	home2Prefix = netip.MustParsePrefix("10.213.2.0/24")
	home3Prefix = netip.MustParsePrefix("10.213.3.0/24")
)

// natNet builds the internet segment with the hosts inet, and home LANs
// behind a cone NAT (home1, home3 when with3) and a symmetric one (home2).
func natNet(t *testing.T, with3 bool, inet ...string) (*netnstest.Net, *netnstest.Segment, []*netnstest.Segment) {
	t.Helper()
	n := netnstest.NewNet(t)
	wan := n.Segment("inet", inetPrefix)
	homes := []*netnstest.Segment{
		n.HomeLAN("home1", home1Prefix, wan, netnstest.NATCone),
		n.HomeLAN("home2", home2Prefix, wan, netnstest.NATSymmetric),
	}
	if with3 {
		homes = append(homes, n.HomeLAN("home3", home3Prefix, wan, netnstest.NATCone))
	}
	for _, name := range inet {
		n.AddHost(wan, name)
	}
	return n, wan, homes
}

// TestNATTopology checks the network the NAT tests stand on, with plain
// sockets: a home host reaches the internet hosts, which see its
// connections come from its NAT's outside address; nothing reaches a home
// host from outside (its private address has no route from the internet
// and none from the other homes; its NAT's outside address drops what no
// home host asked for, rather than refusing it); a cone NAT shows one
// home socket to every destination at the socket's own port, and a
// symmetric NAT at a port of each destination's own; and UDP hole punching
// works between two cone NATs, even when the first packet reaches the
// other NAT before that NAT's home sent anything (the NAT drops it without
// keeping a trace that would change its home's mapping), and fails
// between a cone and a symmetric NAT.
func TestNATTopology(t *testing.T) {
	n, _, homes := natNet(t, true, "r1", "r2")
	r1, r2 := n.Host("r1"), n.Host("r2")
	a1, b1, c1 := n.AddHost(homes[0], "a1"), n.AddHost(homes[1], "b1"), n.AddHost(homes[2], "c1")
	for _, h := range n.Hosts {
		t.Logf("host %s: %s on %s", h.Name, h.IP, h.Segment.Name)
	}
	for _, s := range homes {
		t.Logf("home %s: %v behind a %v NAT, outside address %s", s.Name, s.Prefix, s.NAT.Kind, s.NAT.WAN)
	}
	nat1, nat2 := homes[0].NAT, homes[1].NAT

	t.Run("tcp", func(t *testing.T) {
		const port = 7000
		lr1, la1, lb1 := listenTCP(t, r1, port), listenTCP(t, a1, port), listenTCP(t, b1, port)
		for _, tc := range []struct {
			from *netnstest.Host
			nat  *netnstest.NAT
		}{{a1, nat1}, {b1, nat2}} {
			if from := dialAccept(t, tc.from, lr1); from != tc.nat.WAN {
				t.Errorf("r1 sees %s's connection come from %s, want its NAT's outside address %s", tc.from.Name, from, tc.nat.WAN)
			}
		}
		var wg sync.WaitGroup
		for _, tc := range []struct {
			what    string
			from    *netnstest.Host
			to      net.Listener
			addr    netip.Addr
			dropped bool // the packets must be dropped (a timeout), not refused
		}{
			{"the internet to a home host's private address", r1, la1, a1.IP, false},
			{"the internet to a cone NAT's outside address", r1, la1, nat1.WAN, true},
			{"the internet to a symmetric NAT's outside address", r1, lb1, nat2.WAN, true},
			{"one home to another's private address", a1, lb1, b1.IP, false},
			{"one home to another's NAT", a1, lb1, nat2.WAN, true},
		} {
			// At once: the dropped ones each wait out their timeout.
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				defer cancel()
				c, err := netnstest.DialIn(ctx, tc.from.NS, netip.AddrPortFrom(tc.addr, port).String())
				if err == nil {
					c.Close()
					t.Errorf("%s (%s to %s:%d): connected", tc.what, tc.from.Name, tc.addr, port)
					return
				}
				var ne net.Error
				if tc.dropped && !(errors.As(err, &ne) && ne.Timeout()) {
					t.Errorf("%s (%s to %s:%d): %v, want the SYN dropped (a timeout)", tc.what, tc.from.Name, tc.addr, port, err)
				}
			})
		}
		wg.Wait()
	})

	t.Run("udp_mapping", func(t *testing.T) {
		echoes := []netip.AddrPort{udpEcho(t, r1, 7001), udpEcho(t, r1, 7002), udpEcho(t, r2, 7001), udpEcho(t, r2, 7002)}
		// A node's QUIC dials leave from its listen socket: probe from
		// the host's libp2p port.
		ca, cb := udpSocket(t, a1, a1.Port), udpSocket(t, b1, b1.Port)
		wantA := netip.AddrPortFrom(nat1.WAN, uint16(a1.Port))
		ports := map[uint16]bool{}
		for _, e := range echoes {
			if got := mapped(t, ca, e); got != wantA {
				t.Errorf("behind the cone NAT, %s sees a1's socket at %s, want %s", e, got, wantA)
			}
			got := mapped(t, cb, e)
			if got.Addr() != nat2.WAN {
				t.Errorf("behind the symmetric NAT, %s sees b1's socket at %s, want the NAT's address %s", e, got, nat2.WAN)
			}
			ports[got.Port()] = true
		}
		if len(ports) < 2 {
			t.Errorf("behind the symmetric NAT, four destinations all see b1's socket at the same port %v", ports)
		}
		t.Logf("b1's socket %d as four destinations see it: ports %v", b1.Port, ports)
	})

	t.Run("udp_punch", func(t *testing.T) {
		echo := udpEcho(t, r1, 7003)
		ca, cb, cc := udpSocket(t, a1, a1.Port+100), udpSocket(t, b1, b1.Port+100), udpSocket(t, c1, c1.Port+100)
		ma, mb, mc := mapped(t, ca, echo), mapped(t, cb, echo), mapped(t, cc, echo)
		// c1 goes first: its packet reaches home1's NAT before a1 sent
		// anything to c1, and must be dropped without a trace.
		send(t, cc, ma, "early")
		if got, ok := receive(t, ca, 300*time.Millisecond); ok {
			t.Fatalf("a1 got %v before it sent anything to c1", got)
		}
		if got, ok := punch(t, ca, mc, cc, "from a1"); !ok || got.from != ma {
			t.Errorf("c1 got from a1 (cone to cone): %v (any: %v); want a datagram from %s", got, ok, ma)
		}
		if got, ok := punch(t, cc, ma, ca, "from c1"); !ok || got.from != mc {
			t.Errorf("a1 got from c1 (cone to cone): %v (any: %v); want a datagram from %s", got, ok, mc)
		}
		// b1's mapping towards r1 is r1's only.
		if got, ok := punch(t, ca, mb, cb, "from a1"); ok {
			t.Errorf("b1, behind the symmetric NAT, got %v", got)
		}
		if got, ok := punch(t, cb, ma, ca, "from b1"); ok {
			t.Errorf("a1 got %v, sent by b1 behind the symmetric NAT to the address r1 saw", got)
		}
	})
}

// TestNATDouble: a home LAN whose uplink is itself a home LAN (a
// carrier's NAT in front of the home's) reaches the internet through both
// NATs, and the internet sees it at the outer NAT's address.
func TestNATDouble(t *testing.T) {
	n := netnstest.NewNet(t)
	wan := n.Segment("inet", inetPrefix)
	carrier := n.HomeLAN("carrier", netip.MustParsePrefix("100.64.0.0/24"), wan, netnstest.NATCone)
	home := n.HomeLAN("home", home1Prefix, carrier, netnstest.NATCone)
	r, h := n.AddHost(wan, "r"), n.AddHost(home, "h")
	if from := dialAccept(t, h, listenTCP(t, r, 7000)); from != carrier.NAT.WAN {
		t.Errorf("r sees h's connection come from %s, want the carrier NAT's outside address %s", from, carrier.NAT.WAN)
	}
}

// listenTCP listens on h's address at port, in h's namespace.
func listenTCP(t *testing.T, h *netnstest.Host, port int) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := netnstest.Do(h.NS, func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(h.IP, uint16(port)).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialAccept connects from h to ln and returns the address ln's side sees
// the connection come from.
func dialAccept(t *testing.T, h *netnstest.Host, ln net.Listener) netip.Addr {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := netnstest.DialIn(ctx, h.NS, ln.Addr().String())
	if err != nil {
		t.Fatalf("%s cannot reach %s: %v", h.Name, ln.Addr(), err)
	}
	defer c.Close()
	in, err := ln.Accept() // connected: Accept returns at once
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	return in.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
}

// udpSocket opens a UDP socket on h's address at port, in h's namespace.
func udpSocket(t *testing.T, h *netnstest.Host, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := netnstest.Do(h.NS, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(h.IP, uint16(port))))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// udpEcho answers every datagram to h's port with the address it came
// from, as h sees it, until the test ends.
func udpEcho(t *testing.T, h *netnstest.Host, port int) netip.AddrPort {
	t.Helper()
	c := udpSocket(t, h, port)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			_, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed
			}
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			_, _ = c.WriteToUDPAddrPort([]byte(from.String()), from)
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return netip.AddrPortFrom(h.IP, uint16(port))
}

// mapped returns the address echo (a udpEcho) sees c's datagrams come
// from.
func mapped(t *testing.T, c *net.UDPConn, echo netip.AddrPort) netip.AddrPort {
	t.Helper()
	for range 5 {
		send(t, c, echo, "probe")
		got, ok := receive(t, c, time.Second)
		if !ok || got.from != echo {
			continue // lost, or a stray datagram
		}
		ap, err := netip.ParseAddrPort(got.data)
		if err != nil {
			t.Fatalf("echo %s answered %q: %v", echo, got.data, err)
		}
		return ap
	}
	t.Fatalf("no answer from echo %s to %s", echo, c.LocalAddr())
	return netip.AddrPort{}
}

// datagram is what a socket received, and from where.
type datagram struct {
	data string
	from netip.AddrPort
}

func (d datagram) String() string { return fmt.Sprintf("%q from %s", d.data, d.from) }

func send(t *testing.T, c *net.UDPConn, to netip.AddrPort, data string) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort([]byte(data), to); err != nil {
		t.Fatalf("send from %s to %s: %v", c.LocalAddr(), to, err)
	}
}

// receive waits up to wait for a datagram on c; false if none came.
func receive(t *testing.T, c *net.UDPConn, wait time.Duration) (datagram, bool) {
	t.Helper()
	buf := make([]byte, 64)
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return datagram{}, false
	}
	if err != nil {
		t.Fatalf("receive on %s: %v", c.LocalAddr(), err)
	}
	return datagram{string(buf[:n]), netip.AddrPortFrom(from.Addr().Unmap(), from.Port())}, true
}

// punch sends data from c to the address to a few times, as a hole punch
// does, and returns what the socket dst, which to stands for, received.
func punch(t *testing.T, c *net.UDPConn, to netip.AddrPort, dst *net.UDPConn, data string) (datagram, bool) {
	t.Helper()
	for range 3 {
		send(t, c, to, data)
		if got, ok := receive(t, dst, 300*time.Millisecond); ok {
			return got, true
		}
	}
	return datagram{}, false
}

// TestNATNodes runs real nodes on the test internet and behind NATs, with
// no relay: r1 and r2 on the internet find each other by mDNS; a1, behind
// a cone NAT, and b1, behind a symmetric one, bootstrap to both over QUIC.
// AutoNAT v2 judges r1 and r2 public (each has three servers, the other
// and the two home nodes, whose dial-backs go out through their NATs) and
// their DHTs serve the WAN; a1 and b1 have no public address, so they are
// private and WAN DHT clients (`exopeer status --json`). In `exopeer peers
// --json` on the internet nodes, each home node's connection comes from
// its NAT's outside address: a1's at its own port on both (the cone NAT
// keeps its QUIC socket's port), b1's at a port of each observer's own
// (the symmetric NAT maps per destination): the evidence of NAT type that
// identify's observed addresses carry back to the home node.
func TestNATNodes(t *testing.T) {
	n, _, homes := natNet(t, false, "r1", "r2")
	a1h, b1h := n.AddHost(homes[0], "a1"), n.AddHost(homes[1], "b1")
	rs := n.StartAll(t, []*netnstest.Host{n.Host("r1"), n.Host("r2")})
	r1, r2 := rs[0], rs[1]
	homeNodes := n.StartAll(t, []*netnstest.Host{a1h, b1h}, "--bootstrap", quicAddr(r1), "--bootstrap", quicAddr(r2))
	a1, b1 := homeNodes[0], homeNodes[1]
	nodes := []*netnstest.Node{r1, r2, a1, b1}
	for _, nd := range nodes {
		t.Logf("node %s: %s on %s (%s), port %d", nd.Name, nd.ID, nd.Host.IP, nd.Host.Segment.Name, nd.Host.Port)
	}
	nat1, nat2 := homes[0].NAT, homes[1].NAT
	seen := map[string]map[string]netip.AddrPort{} // observer, home node: where it sees the home node

	waitAll(t, nodes, "the verdicts and the home nodes' NAT addresses", reachLimit, func(nd *netnstest.Node) error {
		st, err := call(t, nd.Client.Status)
		if err != nil {
			return err
		}
		if nd == a1 || nd == b1 {
			return privateBehindNAT(st)
		}
		if err := reachIs(st, api.StatusReachabilityPublic, "wan:server", "/ip4/"+nd.Host.IP.String()+"/"); err != nil {
			return err
		}
		peers, err := call(t, nd.Client.Peers)
		if err != nil {
			return err
		}
		seen[nd.Name] = map[string]netip.AddrPort{}
		for _, home := range []struct {
			n   *netnstest.Node
			nat *netnstest.NAT
		}{{a1, nat1}, {b1, nat2}} {
			i := slices.IndexFunc(peers, func(p api.PeerView) bool { return p.Peer == home.n.ID })
			if i < 0 {
				return fmt.Errorf("node %s not among its peers", home.n.Name)
			}
			ap, err := quicFrom(peers[i].Addr)
			if err != nil {
				return fmt.Errorf("node %s's connection: %w", home.n.Name, err)
			}
			if ap.Addr() != home.nat.WAN {
				return fmt.Errorf("node %s's connection comes from %s, want its NAT's outside address %s", home.n.Name, ap, home.nat.WAN)
			}
			seen[nd.Name][home.n.Name] = ap
		}
		return nil
	})

	wantA := netip.AddrPortFrom(nat1.WAN, uint16(a1.Host.Port))
	for _, r := range []string{"r1", "r2"} {
		if got := seen[r]["a1"]; got != wantA {
			t.Errorf("%s sees a1 (cone NAT) at %s, want its QUIC port kept: %s", r, got, wantA)
		}
	}
	if p1, p2 := seen["r1"]["b1"], seen["r2"]["b1"]; p1.Port() == p2.Port() {
		t.Errorf("r1 and r2 see b1 (symmetric NAT) at the same port: %s, %s", p1, p2)
	}
	t.Logf("where the internet nodes see the home nodes: %v", seen)

	// The same, as a user reads it from the CLI.
	for _, nd := range []*netnstest.Node{r1, a1} {
		var st api.Status
		runJSON(t, nd, &st, "status")
		want := api.StatusReachabilityPublic
		if nd == a1 {
			want = api.StatusReachabilityPrivate
		}
		if st.Reachability != want {
			t.Errorf("node %s: exopeer status --json: reachability %q, want %q", nd.Name, st.Reachability, want)
		}
	}
	var peers []api.PeerView
	runJSON(t, r1, &peers, "peers")
	i := slices.IndexFunc(peers, func(p api.PeerView) bool { return p.Peer == a1.ID })
	if i < 0 || !strings.HasPrefix(peers[i].Addr, "/ip4/"+wantA.Addr().String()+"/udp/"+fmt.Sprint(wantA.Port())+"/quic-v1") {
		t.Errorf("r1: exopeer peers --json: a1 not seen at %s: %+v", wantA, peers)
	}
}

// quicAddr is n's QUIC multiaddr, with its peer ID.
func quicAddr(n *netnstest.Node) string {
	return fmt.Sprintf("/ip4/%s/udp/%d/quic-v1/p2p/%s", n.Host.IP, n.Host.Port, n.ID)
}

// quicFrom parses /ip4/A/udp/P/quic-v1 (a connection's remote address).
func quicFrom(addr string) (netip.AddrPort, error) {
	f := strings.Split(addr, "/")
	if len(f) < 6 || f[0] != "" || f[1] != "ip4" || f[3] != "udp" || f[5] != "quic-v1" {
		return netip.AddrPort{}, fmt.Errorf("%s is not a QUIC address", addr)
	}
	return netip.ParseAddrPort(f[2] + ":" + f[4])
}

// privateBehindNAT says why st is not that of a node behind a NAT with no
// public address: private, no address reachable, its WAN DHT a client.
func privateBehindNAT(st api.Status) error {
	if st.Reachability != api.StatusReachabilityPrivate || !slices.Contains(st.DHTModes, "wan:client") {
		return fmt.Errorf("reachability %s, DHT %v; want private and wan:client: %+v", st.Reachability, st.DHTModes, st.AddrReachability)
	}
	for _, a := range st.AddrReachability {
		if a.Reachability == api.AddrReachabilityReachabilityReachable {
			return fmt.Errorf("address %s reachable: %+v", a.Addr, st.AddrReachability)
		}
	}
	return nil
}
