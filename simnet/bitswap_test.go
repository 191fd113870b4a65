package simnet

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/exopeer/exopeer/blocks"
)

// servePublic lets any peer fetch blks from nd by bitswap, as a public
// blob will: a node serves no block that no owner vouches for.
func servePublic(nd *Node, blks ...blockformat.Block) {
	public := make(map[cid.Cid]bool, len(blks))
	for _, b := range blks {
		public[b.Cid()] = true
	}
	nd.Peer().Exchange().Gate().Register(blocks.OwnerFunc(func(_ peer.ID, c cid.Cid) bool { return public[c] }))
}

// askPublic lets nd ask any peer for blks, as it does for the blocks of
// a public blob it fetches: a node asks nobody for a block no asker
// allows.
func askPublic(nd *Node, blks ...blockformat.Block) {
	public := make(map[cid.Cid]bool, len(blks))
	for _, b := range blks {
		public[b.Cid()] = true
	}
	nd.Peer().Exchange().Gate().RegisterAsker(blocks.AskerFunc(func(_ peer.ID, c cid.Cid) bool { return public[c] }))
}

// fetchRefused checks that nd, connected to every node of from, cannot
// fetch c by bitswap within a virtual minute, and does not hold it after.
func fetchRefused(t *testing.T, nd *Node, c cid.Cid, from ...*Node) {
	t.Helper()
	seed := nd.net.Seed()
	ctx := context.Background()
	for _, f := range from {
		if err := connectByHand(ctx, nd, f.AddrInfo()); err != nil {
			t.Fatalf("seed %d: connect %d → %d: %v", seed, nd.Index, f.Index, err)
		}
		if c := connectedness(nd, f); c != network.Connected {
			t.Fatalf("seed %d: node %d is %v to node %d", seed, nd.Index, c, f.Index)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if b, err := nd.Peer().Exchange().Get(fctx, c); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("seed %d: node %d fetched chain entry %s: %v, %v; want no answer until the deadline", seed, nd.Index, c, b != nil, err)
	}
	if has, _ := nd.Peer().Blocks().Has(ctx, c); has {
		t.Errorf("seed %d: node %d holds chain entry %s", seed, nd.Index, c)
	}
}

// TestBitswapServesChainOnlyToMembers: the chain's entries are blocks in
// the store bitswap serves. An outsider connected to the cell's nodes that
// knows the CID of the chain's first entry cannot fetch it; a member that
// lacks it can; a removed member no longer can, from the moment the node
// serving it knows of the removal.
func TestBitswapServesChainOnlyToMembers(t *testing.T) {
	const seed = 29
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 3)
		waitAlive(t, nodes, time.Minute)
		admin, stay, gone := nodes[0], nodes[1], nodes[2]
		entries := appendN(t, admin, "admin", 3, 0)
		awaitLength(t, nodes, 3, time.Minute)
		first := entries[0].CID

		outsider := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		fetchRefused(t, outsider, first, admin, stay, gone)

		// A member that lacks the entry fetches it.
		if err := stay.Peer().Blocks().Delete(ctx, first); err != nil {
			t.Fatal(err)
		}
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		got, err := stay.Peer().Exchange().Get(fctx, first)
		cancel()
		if err != nil {
			t.Fatalf("seed %d: a member fetching chain entry %s: %v", seed, first, err)
		}
		want, err := admin.Peer().Blocks().Get(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.RawData(), want.RawData()) {
			t.Errorf("seed %d: the member fetched other bytes for %s", seed, first)
		}

		// The chain vouches for its entries under their own CIDs only: not
		// for other dag-cbor blocks, nor for the entry's hash under the raw
		// codec (the store keys blocks by hash: it holds those bytes).
		notEntry, err := cid.V1Builder{Codec: cid.DagCBOR, MhType: multihash.SHA2_256}.Sum([]byte("not an entry"))
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			c    cid.Cid
			want bool
		}{{first, true}, {notEntry, false}, {cid.NewCidV1(cid.Raw, first.Hash()), false}} {
			if got := admin.Peer().Chain().MayRead(stay.ID, tt.c); got != tt.want {
				t.Errorf("seed %d: MayRead(member, %s) = %v, want %v", seed, tt.c, got, tt.want)
			}
		}

		r, err := admin.Peer().Cell().Remove(ctx, gone.ID, false)
		if err != nil {
			t.Fatalf("seed %d: Remove: %v", seed, err)
		}
		if admin.Peer().Chain().MayRead(gone.ID, first) {
			t.Errorf("seed %d: right after the removal the admin still serves the chain to the removed node", seed)
		}
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			return stay.Peer().Cell().Roster().Version == r.Version
		}); !ok {
			t.Fatalf("seed %d: after 1 min the member has not heard of the removal", seed)
		}
		if err := gone.Peer().Blocks().Delete(ctx, first); err != nil {
			t.Fatal(err)
		}
		fetchRefused(t, gone, first, admin, stay)
	})
}
