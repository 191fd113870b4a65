package blocks

import (
	"context"
	"errors"
	"testing"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// A stored block that fails verification is deleted and fetched again
// from a peer that holds it, by a session and by Exchange.Get; the store
// then holds the whole block. On an exchange that is not running, the
// corrupt record is reported (ErrCorrupt) and left alone.
func TestCorruptStoredBlockFetchedAgain(t *testing.T) {
	seeder := newNodeOn(t, "disk", Config{}, true)
	fetcher := newNodeOn(t, "disk", Config{}, true)
	idle := newNode(t, Config{}, false)
	connect(t, fetcher, seeder, "")
	blks, cids := makeBlocks(6, 64<<10)
	for _, n := range []*node{seeder, fetcher, idle} {
		if err := n.store.PutMany(t.Context(), blks); err != nil {
			t.Fatal(err)
		}
	}
	rot := func(n *node, c cid.Cid) {
		t.Helper()
		d, key := n.store.where(c)
		if err := d.Put(t.Context(), key, []byte("rotten")); err != nil {
			t.Fatal(err)
		}
		if _, err := n.store.Get(t.Context(), c); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("after rotting %s, Get = %v; want ErrCorrupt", c, err)
		}
	}
	rot(fetcher, cids[1])
	rot(fetcher, cids[4])
	rot(fetcher, cids[5])
	rot(idle, cids[2])

	ctx, cancel := context.WithTimeout(t.Context(), fetchTimeout)
	defer cancel()
	sess := fetcher.ex.NewSession(ctx, SessionOptions{})
	defer sess.Close()
	got, err := sess.GetBlocks(ctx, cids[:5])
	if err != nil {
		t.Fatalf("GetBlocks with corrupt stored blocks: %v", err)
	}
	for i, b := range got {
		checkSame(t, blks[i], b)
	}
	if st := sess.Stats(); st.Blocks != 2 {
		t.Errorf("the session fetched %d blocks, want the 2 corrupt ones", st.Blocks)
	}
	b, err := fetcher.ex.Get(ctx, cids[5])
	if err != nil {
		t.Fatalf("Exchange.Get of a corrupt stored block: %v", err)
	}
	checkSame(t, blks[5], b)
	for _, i := range []int{1, 4, 5} {
		b, err := fetcher.store.Get(t.Context(), cids[i])
		if err != nil {
			t.Fatalf("block %d after the fetch: %v", i, err)
		}
		checkSame(t, blks[i], b)
	}

	// Not running: nothing can be fetched, so the record stays and is
	// reported.
	isess := idle.ex.NewSession(t.Context(), SessionOptions{})
	defer isess.Close()
	if _, err := isess.GetBlocks(t.Context(), cids[:3]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("GetBlocks on an exchange not running = %v; want ErrCorrupt", err)
	}
	if _, err := idle.ex.Get(t.Context(), cids[2]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Get on an exchange not running = %v; want ErrCorrupt", err)
	}
	if has, err := idle.store.Has(t.Context(), cids[2]); !has || err != nil {
		t.Errorf("the idle node's corrupt record: Has = %v, %v; want it left in place", has, err)
	}
}

// A corrupt chain block (dag-cbor) is not repaired by a fetch: the chain's
// replica, whose index names it, owns it; the read reports ErrCorrupt and
// the record stays.
func TestCorruptChainBlockLeftToTheChain(t *testing.T) {
	n := newNodeOn(t, "disk", Config{}, true)
	b, err := blockformat.NewBlockWithCid([]byte{0xa1, 0x61, 0x61, 0x01}, mustCbor(t, []byte{0xa1, 0x61, 0x61, 0x01}))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.store.PutMany(t.Context(), []blockformat.Block{b}); err != nil {
		t.Fatal(err)
	}
	d, key := n.store.where(b.Cid())
	if err := d.Put(t.Context(), key, []byte("rotten")); err != nil {
		t.Fatal(err)
	}
	// Bounded: repaired, the block would be wanted of peers this node has
	// none of.
	ctx, cancel := context.WithTimeout(t.Context(), fetchTimeout)
	defer cancel()
	sess := n.ex.NewSession(ctx, SessionOptions{})
	defer sess.Close()
	if _, err := sess.GetBlocks(ctx, []cid.Cid{b.Cid()}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("GetBlocks of a corrupt chain block = %v; want ErrCorrupt", err)
	}
	if has, err := n.store.Has(t.Context(), b.Cid()); !has || err != nil {
		t.Errorf("the corrupt chain block: Has = %v, %v; want it left in place", has, err)
	}
}

func mustCbor(t *testing.T, data []byte) cid.Cid {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
