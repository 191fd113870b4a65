package service_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// TestWantsStayInTheCell: a member fetches a private blob from another
// member while a peer outside the cell, speaking bitswap by hand, is
// connected to it; the outsider receives no wantlist entry (no want-have
// broadcast, no want-block, no cancel) for any block of the blob. A
// public blob's fetch by the member, before, does ask it.
func TestWantsStayInTheCell(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 91)
	b := nodetest.Join(t, a, 92, cell.RoleChain, policy(service.PolicyNone))

	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	var mu sync.Mutex
	wanted := make(map[cid.Cid]int)
	h.SetStreamHandler(blocks.ProtocolID, func(s network.Stream) {
		defer s.Close()
		for {
			msg, _, err := bsmsg.FromNet(s)
			if err != nil {
				return
			}
			mu.Lock()
			for _, e := range msg.Wantlist() {
				wanted[e.Cid]++
			}
			mu.Unlock()
		}
	})
	if err := h.Connect(ctx, nodetest.AddrInfo(b)); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 10*time.Second, "b identified the outsider as a bitswap peer", func() bool {
		ps, err := b.Host().Peerstore().SupportsProtocols(h.ID(), blocks.ProtocolID)
		return err == nil && len(ps) > 0
	})
	asked := func(cs []cid.Cid) (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			n += wanted[c]
		}
		return n
	}

	// A public blob first: anyone may be asked, the outsider too, which
	// shows that b's bitswap knows the outsider (and would ask it). No
	// node holds this one, so b's session keeps asking until the
	// outsider has been asked (a blob that a member holds may come
	// before b gets to ask the outsider at all).
	pu, err := blob.Import(ctx, bytes.NewReader(content(10, 1<<20+7)), discard{}, blob.ImportOptions{Public: true})
	if err != nil {
		t.Fatal(err)
	}
	octx, cancel := context.WithCancel(ctx)
	opened := make(chan error, 1)
	go func() {
		_, err := b.Blobs().Open(octx, pu.Cap)
		opened <- err
	}()
	nodetest.Eventually(t, 30*time.Second, "the outsider asked for the public blob", func() bool {
		return asked([]cid.Cid{pu.Cap.Root}) > 0
	})
	cancel()
	if err := <-opened; err == nil {
		t.Fatal("a public blob that no node holds was opened")
	}

	priv := content(9, 3<<20+5)
	pf, err := a.Blobs().AddFileReader(ctx, "private.bin", bytes.NewReader(priv), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	privDAG := dagOf(t, a, pf.Cap.Root)
	start := time.Now()
	checkRange(t, b, pf.Cap, priv, 0, len(priv))
	t.Logf("the member fetched %d blocks in %v", len(privDAG), time.Since(start))
	time.Sleep(200 * time.Millisecond) // anything in flight arrives
	if n := asked(privDAG); n != 0 {
		t.Errorf("the outsider received %d wantlist entries for the private blob's blocks; want none", n)
	}
}

// discard is a blob.BlockPutter that keeps nothing: the blob it imports
// is held by no node.
type discard struct{}

func (discard) PutMany(context.Context, []blockformat.Block) error { return nil }
