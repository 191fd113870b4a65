package simnet

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// settle closes the network, then sleeps a virtual minute so that the
// timers of stragglers fire before the bubble ends.
func settle(t *testing.T, n *Net) {
	t.Helper()
	if err := n.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	time.Sleep(time.Minute)
}

func TestSmallNetworkFindPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: 1})
		defer settle(t, n)
		first, err := n.AddNode(ctx, NodeConfig{})
		if err != nil {
			t.Fatal(err)
		}
		nodes := []*Node{first}
		for range 9 {
			nd, err := n.AddNode(ctx, NodeConfig{Bootstrap: []*Node{first}})
			if err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, nd)
		}
		time.Sleep(30 * time.Second)
		for _, nd := range nodes {
			t.Logf("node %d: table %d peers %d", nd.Index, nd.Peer().DHT().RoutingTableSize(), len(nd.Peer().Discovery().Peers()))
		}
		start := time.Now()
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		ai, err := nodes[9].Peer().DHT().FindPeer(lctx, nodes[3].ID)
		if err != nil || ai.ID != nodes[3].ID {
			t.Fatalf("FindPeer: %v %v", ai, err)
		}
		t.Logf("found in %v virtual", time.Since(start))
	})
}
