package simnet

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	bhost "github.com/libp2p/go-libp2p/p2p/host/basic"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// BenchmarkStreamRoundTrip measures a 1 KiB echo round trip over a
// mocknet stream with no latency, in real time (a benchmark cannot run in
// a synctest bubble): bare, as a simStream with no deadline, and as a
// simStream with read and write deadlines (a goroutine per Read).
func BenchmarkStreamRoundTrip(b *testing.B) {
	for _, tc := range []struct {
		name     string
		wrap     bool
		deadline bool
	}{{"mocknet", false, false}, {"simStream", true, false}, {"simStream_deadlines", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			mn := mocknet.New()
			defer mn.Close()
			n := New(Config{})
			var hosts [2]*simHost
			for i := range hosts {
				h, err := mn.AddPeer(nodeKey(1, i), ma.StringCast(fmt.Sprintf("/ip4/10.9.0.%d/tcp/4777", i+1)))
				if err != nil {
					b.Fatal(err)
				}
				hosts[i] = &simHost{BasicHost: h.(*bhost.BasicHost), net: n, streams: make(map[*simStream]struct{})}
			}
			if err := mn.LinkAll(); err != nil {
				b.Fatal(err)
			}
			echoBytes := func(s network.Stream) { _, _ = io.Copy(s, s); _ = s.Close() }
			if tc.wrap {
				hosts[1].SetStreamHandler(protoEcho, echoBytes)
			} else {
				hosts[1].BasicHost.SetStreamHandler(protoEcho, echoBytes)
			}
			ctx := context.Background()
			if err := hosts[0].BasicHost.Connect(ctx, hosts[1].Peerstore().PeerInfo(hosts[1].ID())); err != nil {
				b.Fatal(err)
			}
			hosts[0].Peerstore().AddAddrs(hosts[1].ID(), hosts[1].Addrs(), time.Hour)
			var s network.Stream
			var err error
			if tc.wrap {
				s, err = hosts[0].NewStream(ctx, hosts[1].ID(), protoEcho)
			} else {
				s, err = hosts[0].BasicHost.NewStream(ctx, hosts[1].ID(), protoEcho)
			}
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			msg, in := make([]byte, 1024), make([]byte, 1024)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if tc.deadline {
					_ = s.SetDeadline(time.Now().Add(time.Minute))
				}
				if _, err := s.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(s, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
