package loopbench_test

import (
	"context"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// BenchmarkFetchFloorLibp2p is the floor's transport part through
// go-libp2p itself, as the node's hosts are built: 1 GiB written in 1 MiB
// writes on one stream between two hosts in this process, over loopback
// TCP (TLS 1.3 or Noise, then yamux) or QUIC, and read to the end at the
// other side. It reports the CPU-seconds this process spent per GiB: the
// cost of moving the bytes through libp2p before any block protocol,
// hashing or storage.
//
//	go test ./internal/loopbench -run '^$' -bench FetchFloorLibp2p -benchtime 1x
func BenchmarkFetchFloorLibp2p(b *testing.B) {
	const blocks, size = 1024, 1 << 20
	buf := make([]byte, size)
	rand.NewChaCha8([32]byte{9}).Read(buf)
	for _, tc := range []struct {
		name string
		opts []libp2p.Option
		addr string
	}{
		{"tcp-tls-yamux", []libp2p.Option{libp2p.Transport(tcp.NewTCPTransport), libp2p.Security(libp2ptls.ID, libp2ptls.New)}, "/ip4/127.0.0.1/tcp/0"},
		{"tcp-noise-yamux", []libp2p.Option{libp2p.Transport(tcp.NewTCPTransport), libp2p.Security(noise.ID, noise.New)}, "/ip4/127.0.0.1/tcp/0"},
		{"quic", []libp2p.Option{libp2p.Transport(quic.NewTransport)}, "/ip4/127.0.0.1/udp/0/quic-v1"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(blocks * size)
			src, dst := libp2pHost(b, 1, tc.addr, tc.opts), libp2pHost(b, 2, tc.addr, tc.opts)
			const proto = protocol.ID("/loopbench/floor")
			total := int64(blocks * size)
			got := make(chan error, 1)
			dst.SetStreamHandler(proto, func(s network.Stream) {
				defer s.Close()
				_, err := io.CopyBuffer(io.Discard, io.LimitReader(s, total), make([]byte, 256<<10))
				got <- err
			})
			ctx, cancel := context.WithTimeout(b.Context(), stepLimit)
			defer cancel()
			if err := src.Connect(ctx, peer.AddrInfo{ID: dst.ID(), Addrs: dst.Addrs()}); err != nil {
				b.Fatal(err)
			}
			var cpu, wall time.Duration
			for b.Loop() {
				c0, t0 := selfCPU(b), time.Now()
				s, err := src.NewStream(ctx, dst.ID(), proto)
				if err != nil {
					b.Fatal(err)
				}
				for range blocks {
					if _, err := s.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				if err := <-got; err != nil {
					b.Fatal(err)
				}
				s.Close()
				cpu += selfCPU(b) - c0
				wall += time.Since(t0)
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N), "CPU-s/GiB")
			b.ReportMetric(float64(b.N)*1024/wall.Seconds(), "MiB/s")
		})
	}
}

func libp2pHost(b *testing.B, seed byte, addr string, opts []libp2p.Option) host.Host {
	priv, _, err := crypto.GenerateEd25519Key(rand.NewChaCha8([32]byte{seed}))
	if err != nil {
		b.Fatal(err)
	}
	h, err := libp2p.New(append([]libp2p.Option{libp2p.Identity(priv), libp2p.ListenAddrStrings(addr), libp2p.DisableRelay()}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	return h
}
