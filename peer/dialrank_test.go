package peer

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

func TestLANTCPFirst(t *testing.T) {
	addrs := func(ss ...string) []ma.Multiaddr {
		var out []ma.Multiaddr
		for _, s := range ss {
			out = append(out, ma.StringCast(s))
		}
		return out
	}
	type ranked struct {
		addr  string
		first bool // dialled at once; else a LAN address lanQUICDelay later, or a public one as the default ranks it
	}
	for _, tc := range []struct {
		name  string
		addrs []ma.Multiaddr
		want  []ranked // in order; the rest after lanQUICDelay
	}{
		{"loopback", addrs("/ip4/127.0.0.1/udp/4777/quic-v1", "/ip4/127.0.0.1/tcp/4777"),
			[]ranked{{"/ip4/127.0.0.1/tcp/4777", true}, {"/ip4/127.0.0.1/udp/4777/quic-v1", false}}},
		{"lan and public", addrs("/ip4/1.2.3.4/udp/4777/quic-v1", "/ip4/192.168.1.5/udp/4777/quic-v1", "/ip4/192.168.1.5/tcp/4777", "/ip4/1.2.3.4/tcp/4777"),
			[]ranked{{"/ip4/192.168.1.5/tcp/4777", true}, {"/ip4/192.168.1.5/udp/4777/quic-v1", false}, {"/ip4/1.2.3.4/udp/4777/quic-v1", false}, {"/ip4/1.2.3.4/tcp/4777", false}}},
		// The public addresses keep the default's timing.
		{"lan websocket is not plain tcp", addrs("/ip4/10.0.0.2/tcp/4778/ws", "/ip4/10.0.0.2/udp/4777/quic-v1"), nil},
		{"public only", addrs("/ip4/1.2.3.4/tcp/4777", "/ip4/1.2.3.4/udp/4777/quic-v1"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := lanTCPFirst(tc.addrs)
			if tc.want == nil {
				def := swarm.DefaultDialRanker(tc.addrs)
				if len(got) != len(def) {
					t.Fatalf("got %v, want the default %v", got, def)
				}
				for i := range got {
					if !got[i].Addr.Equal(def[i].Addr) || got[i].Delay != def[i].Delay {
						t.Fatalf("got %v, want the default %v", got, def)
					}
				}
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %d addresses", got, len(tc.want))
			}
			for i, w := range tc.want {
				if got[i].Addr.String() != w.addr {
					t.Errorf("rank %d: %s, want %s", i, got[i].Addr, w.addr)
				}
				a := got[i].Addr
				switch {
				case w.first:
					if got[i].Delay != 0 {
						t.Errorf("%s: delay %v, want 0", a, got[i].Delay)
					}
				case manet.IsPublicAddr(a):
					want := defaultDelay(tc.addrs, a)
					if got[i].Delay != want {
						t.Errorf("public %s: delay %v, want the default's %v", a, got[i].Delay, want)
					}
				case got[i].Delay < lanQUICDelay:
					t.Errorf("LAN %s: delay %v, want at least %v", a, got[i].Delay, lanQUICDelay)
				}
			}
		})
	}
}

// defaultDelay is the delay libp2p's default ranker gives a among the
// public addresses of addrs (what it dials beside the private ones).
func defaultDelay(addrs []ma.Multiaddr, a ma.Multiaddr) time.Duration {
	var public []ma.Multiaddr
	for _, x := range addrs {
		if manet.IsPublicAddr(x) {
			public = append(public, x)
		}
	}
	for _, d := range swarm.DefaultDialRanker(public) {
		if d.Addr.Equal(a) {
			return d.Delay
		}
	}
	return -1
}
