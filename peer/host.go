package peer

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"

	"github.com/exopeer/exopeer/discovery"
)

// RealNetwork is the network of `exopeer run`: a real libp2p host on TCP and
// QUIC sharing one port, with Noise, yamux, hole punching, the circuit relay
// client and the AutoNAT service, and real mDNS on the LAN when cfg.MDNS is
// on. Port mapping (UPnP / NAT-PMP) is used only when cfg.PortMapping is on.
func RealNetwork(cfg NetworkConfig, log *slog.Logger) Network {
	nw := Network{NewHost: func(priv crypto.PrivKey) (host.Host, error) {
		return newRealHost(priv, cfg, log)
	}}
	if cfg.MDNS == nil || *cfg.MDNS {
		nw.NewLAN = func() discovery.LAN { return discovery.NewMDNS() }
	}
	return nw
}

func newRealHost(priv crypto.PrivKey, cfg NetworkConfig, log *slog.Logger) (host.Host, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ips := cfg.ListenIPs
	if len(ips) == 0 {
		ips = []string{"0.0.0.0", "::"}
	}
	port := cfg.Port
	if port == 0 {
		port = DefaultPort
	}
	if port > 0 {
		// libp2p binds with SO_REUSEPORT, so a second node would share the
		// port with the first instead of failing: probe without it first.
		if portFree(ips, port) {
			h, err := buildHost(priv, cfg, ips, port)
			if err == nil {
				return h, nil
			}
			log.Warn("listen failed, trying a free port", "port", port, "err", err)
		}
		free, err := freePort(ips)
		if err != nil {
			return nil, fmt.Errorf("port %d is taken: %w", port, err)
		}
		log.Warn("port taken, using a free port instead", "port", port, "freePort", free)
		return buildHost(priv, cfg, ips, free)
	}
	free, err := freePort(ips)
	if err != nil {
		return nil, err
	}
	return buildHost(priv, cfg, ips, free)
}

func buildHost(priv crypto.PrivKey, cfg NetworkConfig, ips []string, port int) (host.Host, error) {
	var listen []string
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, fmt.Errorf("listen ip %q: %w", ip, err)
		}
		fam := "ip4"
		if a.Is6() && !a.Is4In6() {
			fam = "ip6"
		}
		listen = append(listen,
			fmt.Sprintf("/%s/%s/tcp/%d", fam, a, port),
			fmt.Sprintf("/%s/%s/udp/%d/quic-v1", fam, a, port))
	}
	maxConns := cfg.MaxConnections
	if maxConns <= 0 {
		maxConns = 400
	}
	cm, err := connmgr.NewConnManager(maxConns*3/4, maxConns, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	rm, err := resourceManager(cfg.Resources, fdBudget())
	if err != nil {
		_ = cm.Close()
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.ResourceManager(rm),
		libp2p.ListenAddrStrings(listen...),
		libp2p.ConnectionManager(cm),
		libp2p.UserAgent("exopeer/" + Version),
		libp2p.EnableHolePunching(),
		libp2p.EnableNATService(),
	}
	if cfg.PortMapping {
		opts = append(opts, libp2p.NATPortMap())
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		_ = cm.Close()
		_ = rm.Close()
		return nil, err
	}
	return h, nil
}

// freePort finds a port that is free for both TCP and UDP on every IP.
func freePort(ips []string) (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if portFree(ips, port) {
			return port, nil
		}
	}
	return 0, errors.New("find a free port: no port free for both TCP and UDP after 20 tries")
}

func portFree(ips []string, port int) bool {
	p := strconv.Itoa(port)
	for _, ip := range ips {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, p))
		if err != nil {
			return false
		}
		l.Close()
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, p))
		if err != nil {
			return false
		}
		u.Close()
	}
	return true
}
