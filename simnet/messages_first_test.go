package simnet

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/dht"
	messages "github.com/exopeer/exopeer/message/service"
)

// TestMessagesFirstContact: two people, a cell of one device each on a
// DHT of a few other nodes, add each other and the first message is
// sent at once, while the recipient's device is not connected to the
// sender and its prekey bundle is on no DHT node (every DHT stream it
// opens or is asked on is reset, so its stores fail): the message is
// delivered on the first try, the bundle asked of the device itself. On
// even seeds the sender's peerstore has the device's address; on odd
// ones it has none, and the device is found through the DHT's FindPeer.
// Ten seeds.
func TestMessagesFirstContact(t *testing.T) {
	for seed := uint64(1401); seed <= 1410; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { firstContact(t, seed) })
	}
}

func firstContact(t *testing.T, seed uint64) {
	dirs := []string{t.TempDir(), t.TempDir()}
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		r := n.Rand("first contact")
		// The recipient first, with no DHT peer when it starts, and every
		// DHT stream it opens or is asked on reset from then on: its
		// bundle is stored on no DHT node, not even served by itself. The
		// others' DHT works: they bootstrap from it and from each other (a
		// tree of 2 to 4 nodes), and the sender from one of them.
		b := addNode(t, ctx, n, NodeConfig{Dir: dirs[1]})
		n.ResetStreams(StreamMatch{From: b, Protocol: dht.ProtocolID})
		n.ResetStreams(StreamMatch{To: b, Protocol: dht.ProtocolID})
		hubs := []*Node{b}
		for range 2 + r.IntN(3) {
			hubs = append(hubs, addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{hubs[r.IntN(len(hubs))]}}))
		}
		a := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{hubs[1+r.IntN(len(hubs)-1)]}, Dir: dirs[0]})
		time.Sleep(10 * time.Second) // the DHT's routing tables fill as identify runs
		for _, p := range []struct {
			nd   *Node
			name string
		}{{a, "Alice"}, {b, "Bob"}} {
			if _, err := p.nd.Peer().Cell().Create(ctx, p.name, p.name+"-0"); err != nil {
				fail("%s creates a cell: %v", p.name, err)
			}
		}
		cards := map[*Node]string{}
		for _, nd := range []*Node{a, b} {
			if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
				c, err := nd.Peer().Contacts().Card(ctx, "")
				if err == nil && c.Devices.Has(nd.ID) {
					cards[nd] = c.Text()
				}
				return cards[nd] != ""
			}); !ok {
				fail("node %d has no card", nd.Index)
			}
		}
		if _, err := a.Peer().Contacts().Add(ctx, cards[b], "Bob"); err != nil {
			fail("Alice adds Bob: %v", err)
		}
		if _, err := b.Peer().Contacts().Add(ctx, cards[a], "Alice"); err != nil {
			fail("Bob adds Alice: %v", err)
		}
		for _, p := range []struct {
			nd   *Node
			name string
		}{{a, "Bob"}, {b, "Alice"}} {
			if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
				_, err := p.nd.Peer().Contacts().Get(ctx, p.name)
				return err == nil
			}); !ok {
				fail("node %d does not list %s", p.nd.Index, p.name)
			}
		}

		// The sender is not connected to the device; on even seeds it
		// knows its address (met before, or on the LAN), on odd ones not.
		h := a.Peer().Host()
		if err := h.Network().ClosePeer(b.ID); err != nil {
			fail("close: %v", err)
		}
		if seed%2 == 1 {
			h.Peerstore().ClearAddrs(b.ID)
		} else {
			h.Peerstore().AddAddrs(b.ID, b.AddrInfo().Addrs, time.Hour)
		}
		if connectedness(a, b) == network.Connected {
			fail("the sender is still connected to the device")
		}
		if got := dhtBundle(a, b); got != nil {
			fail("the device's bundle (sequence %d) is on the DHT", got.Sequence)
		}
		m, err := a.Peer().Messages().Send(ctx, "Bob", "the first message")
		if err != nil {
			fail("the first message: %v", err)
		}
		if m.State != messages.Delivered {
			fail("the first message is %v, not delivered", m.State)
		}
		if st := a.Peer().Prekeys().Stats(); st.Direct != 1 || st.FromDHT != 0 {
			fail("the sender's fetches: %+v, want one direct", st)
		}
		if got := dhtBundle(a, b); got != nil {
			fail("the device's bundle got on the DHT (sequence %d): the test did not test a missing record", got.Sequence)
		}
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			pg, err := b.Peer().Messages().Conversation(ctx, "Alice", "", 0)
			return err == nil && len(pg.Messages) == 1 && pg.Messages[0].ID == m.ID
		}); !ok {
			fail("the recipient does not hold the message once")
		}
	})
}
