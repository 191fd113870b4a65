package simnet

import (
	"bytes"
	"context"
	"testing"
	"testing/synctest"
	"time"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/routing"
)

// TestBlockFoundThroughDHT: node Y, not connected to node X, finds X with
// a DHT lookup, connects to it as `exopeer connect` does, and fetches a
// block that only X has by bitswap.
func TestBlockFoundThroughDHT(t *testing.T) {
	const seed = 11
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		// At 30 nodes kad-dht protects most connections from the connection
		// manager (the peers of its first two buckets), so the network ends
		// up nearly fully connected: X and Y are disconnected by hand below.
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes, err := addTree(ctx, n, 30)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		time.Sleep(2 * time.Minute) // the DHT tables fill

		// X and Y: neither bootstraps from the other, so nothing redials
		// the connection between them once it is closed.
		pick := n.Rand("test block pair")
		var x, y *Node
		for {
			x, y = nodes[pick.IntN(len(nodes))], nodes[pick.IntN(len(nodes))]
			if x != y && !isBootstrapOf(x, y) && !isBootstrapOf(y, x) {
				break
			}
		}
		data := randomBlocks(n.Rand("test block data"), 1, 100<<10)[0]
		if err := x.Peer().Blocks().Put(ctx, data); err != nil {
			t.Fatalf("seed %d: Put: %v", seed, err)
		}
		servePublic(x, data)
		askPublic(y, data)
		if has, _ := y.Peer().Blocks().Has(ctx, data.Cid()); has {
			t.Fatalf("seed %d: node %d has the block before fetching it", seed, y.Index)
		}

		if c := connectedness(y, x); c == network.Connected {
			t.Logf("node %d was connected to node %d: closing the connection", y.Index, x.Index)
			if err := y.Peer().Host().Network().ClosePeer(x.ID); err != nil {
				t.Fatalf("seed %d: ClosePeer: %v", seed, err)
			}
		}
		if c := connectedness(y, x); c == network.Connected {
			t.Fatalf("seed %d: node %d still connected to node %d", seed, y.Index, x.Index)
		}
		// Make Y forget X, so that the lookup has to ask other nodes and
		// the addresses come from their answers.
		if k, ok := y.Peer().DHT().Routing().(*kaddht.IpfsDHT); ok {
			k.RoutingTable().RemovePeer(x.ID)
		} else {
			t.Fatalf("seed %d: DHT routing is a %T", seed, y.Peer().DHT().Routing())
		}
		y.Peer().Host().Peerstore().ClearAddrs(x.ID)
		t.Logf("node %d (%d connections) looks up node %d (%d connections)",
			y.Index, len(y.Peer().Host().Network().Peers()), x.Index, len(x.Peer().Host().Network().Peers()))

		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		// The query events tell which answer named X (countHops); their
		// channel closes when the context given to RegisterForQueryEvents
		// ends.
		qctx, qcancel := context.WithCancel(lctx)
		qctx, events := routing.RegisterForQueryEvents(qctx)
		hops := make(chan int, 1)
		go func() { hops <- countHops(events, x.ID) }()
		start := time.Now()
		ai, err := y.Peer().DHT().FindPeer(qctx, x.ID)
		took := time.Since(start)
		qcancel()
		depth := <-hops
		if err != nil || ai.ID != x.ID || len(ai.Addrs) == 0 {
			t.Fatalf("seed %d: FindPeer(%d → %d) = %v, %v", seed, y.Index, x.Index, ai, err)
		}
		if depth < 1 {
			t.Errorf("seed %d: no DHT answer named node %d (hops %d): the lookup did not find it through other nodes", seed, x.Index, depth)
		}
		t.Logf("FindPeer: %v in %v virtual, named by a peer at depth %d", ai.Addrs, took, depth)

		if err := connectByHand(lctx, y, ai); err != nil {
			t.Fatalf("seed %d: connect %d → %d: %v", seed, y.Index, x.Index, err)
		}
		start = time.Now()
		got, err := y.Peer().Exchange().Get(lctx, data.Cid())
		if err != nil {
			t.Fatalf("seed %d: Get: %v", seed, err)
		}
		t.Logf("block of %d KiB fetched in %v virtual", len(got.RawData())>>10, time.Since(start))
		if !bytes.Equal(got.RawData(), data.RawData()) {
			t.Errorf("seed %d: fetched block differs from the stored one", seed)
		}
		stored, err := y.Peer().Blocks().Get(ctx, data.Cid())
		if err != nil || !bytes.Equal(stored.RawData(), data.RawData()) {
			t.Errorf("seed %d: node %d did not store the fetched block: %v", seed, y.Index, err)
		}
	})
}
