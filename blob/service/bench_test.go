package service_test

import (
	"bytes"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// BenchmarkMayRead: the gate's question, asked of the blob service for
// every want and every block sent: a member (roster lookup), an outsider
// asking for a public blob's block (the set) and for a private one
// (refused), with a 64-leaf public blob held.
//
//	go test ./blob/service -run '^$' -bench MayRead -benchmem -cpu 2
func BenchmarkMayRead(b *testing.B) {
	a := nodetest.CellNode(b, 91)
	m := nodetest.Join(b, a, 92, cell.RoleChain, policy(service.PolicyNone))
	out := nodetest.Key(93)
	outID, err := peer.IDFromPublicKey(mustPub(b, out))
	if err != nil {
		b.Fatal(err)
	}
	pub, err := a.Blobs().AddBlob(b.Context(), bytes.NewReader(content(10, 16<<20)), service.AddOptions{Public: true})
	if err != nil {
		b.Fatal(err)
	}
	priv, err := a.Blobs().AddBlob(b.Context(), bytes.NewReader(content(11, 1<<20)), service.AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		who  peer.ID
		c    cid.Cid
		want bool
	}{
		{"member", m.ID(), priv.Cap.Root, true},
		{"outsider/public", outID, pub.Cap.Root, true},
		{"outsider/private", outID, priv.Cap.Root, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := a.Blobs()
			for b.Loop() {
				if s.MayRead(bc.who, bc.c) != bc.want {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}
