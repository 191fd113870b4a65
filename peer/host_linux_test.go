package peer

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/datadir"
)

// soReuseport is SO_REUSEPORT on Linux (the syscall package lacks it).
const soReuseport = 0xf

// reuseportListenConfig binds as go-libp2p's TCP transport does by
// default: with SO_REUSEPORT, which lets any later socket of the same user
// with the option share the port.
var reuseportListenConfig = net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReuseport, 1) })
	return errors.Join(err, serr)
}}

// realLoopbackHost starts a real host as `exopeer run` does, on 127.0.0.1 and
// port (0: DefaultPort, -1: any free port).
func realLoopbackHost(t *testing.T, seed byte, port int) (host.Host, error) {
	return realHostOn(t, seed, port, "127.0.0.1")
}

// realHostOn starts a real host as `exopeer run` does, on ips and port.
func realHostOn(t testing.TB, seed byte, port int, ips ...string) (host.Host, error) {
	t.Helper()
	priv, err := crypto.UnmarshalEd25519PrivateKey(testKey(seed))
	if err != nil {
		t.Fatal(err)
	}
	off := false
	h, err := RealNetwork(datadir.NetworkConfig{Port: port, ListenIPs: ips, MDNS: &off}, nil).NewHost(priv)
	if err == nil {
		t.Cleanup(func() { h.Close() })
	}
	return h, err
}

// listenPorts returns the host's TCP and QUIC listen ports.
func listenPorts(t *testing.T, h host.Host) (tcp, quic []int) {
	t.Helper()
	for _, a := range h.Network().ListenAddresses() {
		if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			n, _ := strconv.Atoi(p)
			tcp = append(tcp, n)
		}
		if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			p, _ := a.ValueForProtocol(ma.P_UDP)
			n, _ := strconv.Atoi(p)
			quic = append(quic, n)
		}
	}
	return tcp, quic
}

// onePort checks that h listens on one TCP and one QUIC address per IP
// (of ips, default one), all on one port, and returns it.
func onePort(t *testing.T, h host.Host, ips ...string) int {
	t.Helper()
	n := max(len(ips), 1)
	tcp, quic := listenPorts(t, h)
	ports := append(slices.Clone(tcp), quic...)
	if len(tcp) != n || len(quic) != n || slices.Min(ports) != slices.Max(ports) {
		t.Fatalf("listening on TCP %v and QUIC %v, want both on one port on each of %d IPs", tcp, quic, n)
	}
	return tcp[0]
}

// freeLoopbackPort returns a port that was free for TCP and UDP on
// 127.0.0.1 a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// TestListenIsExclusive: while a node listens on a port, no other socket
// can bind it, not even one that asks to share it with SO_REUSEPORT as
// go-libp2p's TCP transport does by default (so another libp2p process would
// have had the kernel hand it half of our incoming connections).
func TestListenIsExclusive(t *testing.T) {
	h, err := realLoopbackHost(t, 1, freeLoopbackPort(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(onePort(t, h)))
	if l, err := reuseportListenConfig.Listen(context.Background(), "tcp", addr); err == nil {
		l.Close()
		t.Errorf("a second SO_REUSEPORT socket could bind TCP %s while the node listens on it", addr)
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("bind TCP %s: %v, want EADDRINUSE", addr, err)
	}
	if u, err := reuseportListenConfig.ListenPacket(context.Background(), "udp", addr); err == nil {
		u.Close()
		t.Errorf("a second SO_REUSEPORT socket could bind UDP %s while the node listens on it", addr)
	}
}

// TestNodesStartedTogetherOnOnePort starts hosts at the same moment on one
// port, as two `exopeer run` started together on the default port: one gets
// the port, the others move, each to a port of its own for both TCP and
// QUIC; none shares a port or runs without QUIC.
func TestNodesStartedTogetherOnOnePort(t *testing.T) {
	for _, ips := range [][]string{{"127.0.0.1"}, {"127.0.0.1", "::1"}} {
		t.Run(strings.Join(ips, ","), func(t *testing.T) {
			const n = 4
			port := freeLoopbackPort(t)
			hosts := make([]host.Host, n)
			errs := make([]error, n)
			var start, wg sync.WaitGroup
			start.Add(1)
			for i := range n {
				wg.Go(func() {
					start.Wait()
					hosts[i], errs[i] = realHostOn(t, byte(i+1), port, ips...)
				})
			}
			start.Done()
			wg.Wait()
			seen := map[int]int{}
			for i, h := range hosts {
				if errs[i] != nil {
					t.Fatalf("host %d: %v", i, errs[i])
				}
				p := onePort(t, h, ips...)
				if j, dup := seen[p]; dup {
					t.Errorf("hosts %d and %d both listen on port %d", j, i, p)
				}
				seen[p] = i
			}
			if _, ok := seen[port]; !ok {
				t.Errorf("no host got the asked port %d: %v", port, seen)
			}
		})
	}
}

// TestListenMovesBothWhenOneIsTaken: a port taken for UDP only, or for TCP
// only, moves both transports to one free port.
func TestListenMovesBothWhenOneIsTaken(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			port := freeLoopbackPort(t)
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			var c interface{ Close() error }
			var err error
			if network == "udp" {
				c, err = net.ListenPacket("udp", addr)
			} else {
				c, err = net.Listen("tcp", addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			h, err := realLoopbackHost(t, 1, port)
			if err != nil {
				t.Fatal(err)
			}
			if p := onePort(t, h); p == port {
				t.Errorf("listening on the taken port %d", port)
			}
		})
	}
}

// TestListenOnAnAddressNotHere: an IP that is not on this machine is an
// error naming it, not a silent move or a node without a transport.
func TestListenOnAnAddressNotHere(t *testing.T) {
	priv, err := crypto.UnmarshalEd25519PrivateKey(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	off := false
	h, err := RealNetwork(datadir.NetworkConfig{Port: -1, ListenIPs: []string{"192.0.2.1"}, MDNS: &off}, nil).NewHost(priv)
	if err == nil {
		h.Close()
		t.Fatal("listening on 192.0.2.1 (TEST-NET-1) succeeded")
	}
	if !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("error %q, want EADDRNOTAVAIL", err)
	}
	t.Log(err)
}

// BenchmarkRealHostListen builds and closes a real loopback host: on a free
// port, and on a port taken for TCP, which it has to leave for a free one.
func BenchmarkRealHostListen(b *testing.B) {
	start := func(b *testing.B, port int) {
		for b.Loop() {
			priv, err := crypto.UnmarshalEd25519PrivateKey(testKey(1))
			if err != nil {
				b.Fatal(err)
			}
			off := false
			h, err := RealNetwork(datadir.NetworkConfig{Port: port, ListenIPs: []string{"127.0.0.1"}, MDNS: &off}, nil).NewHost(priv)
			if err != nil {
				b.Fatal(err)
			}
			h.Close()
		}
	}
	b.Run("free", func(b *testing.B) { start(b, -1) })
	b.Run("taken", func(b *testing.B) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		start(b, l.Addr().(*net.TCPAddr).Port)
	})
}
