package peer

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/discovery"
)

// RealNetwork is the network of `exopeer run`: a real libp2p host on TCP and
// QUIC sharing one port, with Noise, yamux, hole punching, the circuit relay
// client, AutoNAT v1 and v2 (client and service), relays from the cell
// (the relay service as cfg.RelayService says, and AutoRelay; NodeOptions
// adds cfg.StaticRelays), and real mDNS on the LAN when cfg.MDNS is on. Port mapping (UPnP / NAT-PMP) is used only when cfg.PortMapping is on.
func RealNetwork(cfg datadir.NetworkConfig, log *slog.Logger) Network {
	punches := newPunchTracer(maxPunches)
	nw := Network{NewHost: func(priv crypto.PrivKey) (host.Host, error) {
		return newRealHost(priv, cfg, punches, log)
	}, Relays: &Relays{Service: RelayMode(cfg.RelayService), punches: punches}}
	if cfg.MDNS == nil || *cfg.MDNS {
		nw.NewLAN = func() discovery.LAN { return discovery.NewMDNS() }
	}
	return nw
}

func newRealHost(priv crypto.PrivKey, cfg datadir.NetworkConfig, punches *punchTracer, log *slog.Logger) (host.Host, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ips := make([]netip.Addr, 0, 2)
	for _, s := range cfg.ListenIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("listen ip %q: %w", s, err)
		}
		ips = append(ips, a.Unmap())
	}
	if len(ips) == 0 {
		ips = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	}
	port := cfg.Port
	if port == 0 {
		port = datadir.DefaultPort
	}
	h, err := buildHost(priv, cfg, punches)
	if err != nil {
		return nil, err
	}
	if err := listenOnePort(h, ips, port, log); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// listenOnePort makes h listen with TCP and QUIC on every IP, all on one
// port: port if it is free for all of them, else (or if port is -1) a free
// port. Binding is the test, not a probe before it: the sockets are
// exclusive (no SO_REUSEPORT), so a port another process holds, or takes
// at the same moment, fails to bind here, and every listener on it is
// closed before the next port is tried; a node never shares a port or runs
// without one of its transports. An error other than a taken port (an IP
// not on this machine, say) is returned naming the address.
func listenOnePort(h host.Host, ips []netip.Addr, port int, log *slog.Logger) error {
	sw, ok := h.Network().(listenCloser)
	if !ok {
		return fmt.Errorf("listen: %T cannot listen on one address at a time", h.Network())
	}
	if port > 0 {
		err := listenAll(sw, ips, port)
		if !addrInUse(err) {
			return err
		}
		log.Warn("port taken, listening on a free port instead", "port", port, "err", err)
	}
	var err error
	for range freePortTries {
		if err = listenAll(sw, ips, 0); !addrInUse(err) {
			return err
		}
	}
	return fmt.Errorf("no port free for TCP and QUIC on %v after %d tries: %w", ips, freePortTries, err)
}

// addrInUse reports whether err is a bind refused because the port is
// taken: EADDRINUSE, or WSAEADDRINUSE (10048) on Windows, where the syscall
// package's EADDRINUSE is a made-up number (10048 is no errno elsewhere).
func addrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.Errno(10048))
}

// freePortTries bounds the search for a port free for every listener.
const freePortTries = 20

// listenCloser is the part of go-libp2p's swarm that listens on one address
// at a time (its Listen succeeds if any one address does).
type listenCloser interface {
	AddListenAddr(ma.Multiaddr) error
	ListenClose(...ma.Multiaddr)
	ListenAddresses() []ma.Multiaddr
}

// listenAll listens on TCP and QUIC on every IP on port, or, with port 0,
// on the port the kernel gives the first TCP listener. On any failure it
// closes what it opened and returns the error, wrapped with the address.
func listenAll(sw listenCloser, ips []netip.Addr, port int) error {
	var opened []ma.Multiaddr
	for i, ip := range ips {
		for _, quic := range []bool{false, true} {
			a, err := listenAddr(ip, port, quic)
			if err != nil {
				return err
			}
			if err := sw.AddListenAddr(a); err != nil {
				sw.ListenClose(opened...)
				return fmt.Errorf("listen on %s: %w", a, err)
			}
			if port == 0 && i == 0 && !quic {
				// The kernel chose the port: the rest take the same.
				for _, l := range sw.ListenAddresses() {
					if v, err := l.ValueForProtocol(ma.P_TCP); err == nil {
						if p, _ := strconv.Atoi(v); p != 0 {
							port = p
							a, _ = listenAddr(ip, port, false)
						}
					}
				}
			}
			opened = append(opened, a)
		}
	}
	return nil
}

// listenAddr is the multiaddr of a TCP or QUIC listener on ip and port.
func listenAddr(ip netip.Addr, port int, quic bool) (ma.Multiaddr, error) {
	fam := "ip4"
	if ip.Is6() {
		fam = "ip6"
	}
	s := fmt.Sprintf("/%s/%s/tcp/%d", fam, ip, port)
	if quic {
		s = fmt.Sprintf("/%s/%s/udp/%d/quic-v1", fam, ip, port)
	}
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("listen address %s: %w", s, err)
	}
	return a, nil
}

// buildHost builds the host, listening nowhere yet: listenOnePort makes it
// listen. punches, if not nil, is told every hole punch.
func buildHost(priv crypto.PrivKey, cfg datadir.NetworkConfig, punches *punchTracer) (host.Host, error) {
	opts, closeOpts, err := hostOptions(priv, cfg, punches)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(append(opts, natOptions(cfg)...)...)
	if err != nil {
		closeOpts()
		return nil, err
	}
	return h, nil
}

// hostOptions are the host's options but its NAT options (natOptions):
// listening nowhere, the transports, the managers, hole punching. On
// success, closeOpts closes the managers, for when libp2p.New fails (the
// host closes them otherwise).
func hostOptions(priv crypto.PrivKey, cfg datadir.NetworkConfig, punches *punchTracer) (opts []libp2p.Option, closeOpts func(), err error) {
	maxConns := cfg.MaxConnections
	if maxConns <= 0 {
		maxConns = 400
	}
	cm, err := connmgr.NewConnManager(maxConns*3/4, maxConns, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, nil, fmt.Errorf("connection manager: %w", err)
	}
	rm, err := resourceManager(cfg.Resources, fdBudget())
	if err != nil {
		_ = cm.Close()
		return nil, nil, err
	}
	var punchOpts []holepunch.Option
	if punches != nil {
		punchOpts = append(punchOpts, holepunch.WithTracer(punches))
	}
	opts = []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.NoListenAddrs,
		// The circuit relay transport, which NoListenAddrs switches off:
		// dialling through a relay, and being reached through one where
		// the node holds a slot (AutoRelay, part "autorelay").
		libp2p.EnableRelay(),
		// TCP without SO_REUSEPORT, so that a port is ours alone; QUIC's
		// UDP sockets are exclusive already. Only the transports we listen on.
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Transport(quic.NewTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.UserAgent("exopeer/" + Version),
		// DCUtR: a relayed connection becomes a direct one where the NATs
		// allow it (QUIC only: see docs/architecture.md, "Hole punching").
		libp2p.EnableHolePunching(punchOpts...),
		// TCP before QUIC on a LAN: see lanTCPFirst.
		libp2p.SwarmOpts(swarm.WithDialRanker(lanTCPFirst)),
	}
	return opts, func() { _ = cm.Close(); _ = rm.Close() }, nil
}

// natOptions are the host's options for NAT: AutoNAT v1 (the client, and
// the service for others; the client's verdict would drive go-libp2p's
// relay service and AutoRelay, neither of which is enabled); AutoNAT v2 (client and server) judges each address, and its
// verdicts set the node's reachability and DHT mode (reachWatch). Port
// mapping (UPnP / NAT-PMP) only when cfg.PortMapping is on: it asks the
// router on the LAN, which no test may do.
func natOptions(cfg datadir.NetworkConfig) []libp2p.Option {
	opts := []libp2p.Option{libp2p.EnableNATService(), libp2p.EnableAutoNATv2()}
	if cfg.PortMapping {
		opts = append(opts, libp2p.NATPortMap())
	}
	return opts
}
