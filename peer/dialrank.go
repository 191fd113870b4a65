package peer

import (
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// lanQUICDelay is how long after a peer's LAN TCP addresses its other
// addresses are dialled (libp2p's own delay between a private QUIC and a
// private TCP address, the other way round).
const lanQUICDelay = swarm.PrivateTCPDelay

// lanTCPFirst is the host's dial ranker. A peer's plain TCP addresses on
// loopback or a private network (a LAN: where cell members move whole
// blobs) are dialled first, at once; all its other addresses are ranked
// as libp2p's default ranker ranks them (QUIC first), its other LAN ones
// lanQUICDelay later.
// A peer with no such address is ranked by the default alone.
//
// Why: libp2p's default prefers QUIC, and quic-go spends far more CPU
// per byte than TCP with TLS 1.3 (AES-GCM) and yamux. A 1 GiB fetch
// between two exopeer processes on loopback took 13.5-14.8 CPU-s/GiB of
// both processes over QUIC and 8.6-9.3 over TCP, at 75-119 against
// 120-158 MiB/s (internal/loopbench, three runs each, blocks/README.md);
// in one process, 5.8-6.9 against 3.4. On the internet QUIC's faster handshake and its hole
// punching matter more than its cost per byte, so public addresses keep
// the default order.
func lanTCPFirst(addrs []ma.Multiaddr) []network.AddrDelay {
	var lan, rest []ma.Multiaddr
	for _, a := range addrs {
		if isLANTCP(a) {
			lan = append(lan, a)
		} else {
			rest = append(rest, a)
		}
	}
	if len(lan) == 0 {
		return swarm.DefaultDialRanker(addrs)
	}
	out := make([]network.AddrDelay, 0, len(addrs))
	for _, a := range lan {
		out = append(out, network.AddrDelay{Addr: a})
	}
	for _, d := range swarm.DefaultDialRanker(rest) {
		// Only the peer's other LAN addresses wait for its TCP ones:
		// its public addresses keep the default's timing (it dials the
		// private and the public ones side by side).
		if manet.IsIPLoopback(d.Addr) || manet.IsPrivateAddr(d.Addr) {
			d.Delay += lanQUICDelay
		}
		out = append(out, d)
	}
	return out
}

// isLANTCP reports whether a is /ip4 or /ip6, then /tcp, and nothing else
// but a final /p2p (no websocket, no relay), on loopback or a private
// network.
func isLANTCP(a ma.Multiaddr) bool {
	ps := a.Protocols()
	if len(ps) > 0 && ps[len(ps)-1].Code == ma.P_P2P {
		ps = ps[:len(ps)-1]
	}
	if len(ps) != 2 || (ps[0].Code != ma.P_IP4 && ps[0].Code != ma.P_IP6) || ps[1].Code != ma.P_TCP {
		return false
	}
	return manet.IsIPLoopback(a) || manet.IsPrivateAddr(a)
}

var _ network.DialRanker = lanTCPFirst
