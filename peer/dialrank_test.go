package peer

import (
	"testing"

	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
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
		first bool // dialled at once
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
				if w.first != (got[i].Delay == 0) || (!w.first && got[i].Delay < lanQUICDelay) {
					t.Errorf("%s: delay %v (first: %v)", got[i].Addr, got[i].Delay, w.first)
				}
			}
		})
	}
}
