package replica_test

import (
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/chain/replica"
)

// BenchmarkMayRead measures the chain's answer to the block exchange's
// gate, asked for every want a peer sends and every block sent: for a
// member (the roster lookup, then the replica's lock and the chain's map)
// and for an outsider (the roster lookup only), on a chain of 10,000
// entries.
func BenchmarkMayRead(b *testing.B) {
	const total = 10_000
	n := realNode(b, 23, b.TempDir(), replica.Config{})
	makeCell(b, n)
	batch := make([][]byte, 500)
	for i := range batch {
		batch[i] = make([]byte, 100)
	}
	var cs []cid.Cid
	for range total / len(batch) {
		es, err := n.Chain().AppendMany(b.Context(), batch)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range es {
			cs = append(cs, e.CID)
		}
	}
	var g blocks.Gate
	g.Register(n.Chain())
	for _, tt := range []struct {
		name string
		p    peer.ID
		want bool
	}{
		{"member", n.ID(), true},
		{"outsider", peer.ID("outsider"), false},
	} {
		b.Run(tt.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if g.MayRead(tt.p, cs[i%len(cs)]) != tt.want {
					b.Fatalf("MayRead(%s) = %v", tt.name, !tt.want)
				}
			}
		})
	}
}
