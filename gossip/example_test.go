package gossip_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/gossip"
)

// Two devices of one cell find each other: each allows the other, one
// joins the other, and both see two members alive.
func Example() {
	ctx := context.Background()
	var (
		keys  []crypto.PrivKey
		hosts []host.Host
	)
	for range 2 {
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			panic(err)
		}
		h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			panic(err)
		}
		defer h.Close()
		keys, hosts = append(keys, key), append(hosts, h)
	}
	hosts[1].Peerstore().AddAddrs(hosts[0].ID(), hosts[0].Addrs(), time.Hour)

	// The roster and the cell's secrets come from the cell's own code.
	roster := map[peer.ID]bool{hosts[0].ID(): true, hosts[1].ID(): true}
	gossipKey := make([]byte, gossip.GossipKeySize)
	rand.Read(gossipKey)
	var members []*gossip.Membership
	for i, h := range hosts {
		m, err := gossip.New(h, gossip.Config{
			Tag:       [8]byte{'e', 'x', 'a', 'm', 'p', 'l', 'e', 1},
			Key:       keys[i],
			Allow:     func(id peer.ID) bool { return roster[id] },
			AppMeta:   func() []byte { return []byte("roster v1") },
			GossipKey: gossipKey,
		})
		if err != nil {
			panic(err)
		}
		if err := m.Start(ctx); err != nil {
			panic(err)
		}
		defer m.Close()
		members = append(members, m)
	}
	if _, err := members[1].Join(ctx, []peer.ID{hosts[0].ID()}); err != nil {
		panic(err)
	}

	alive := func(m *gossip.Membership) int {
		n := 0
		for _, mb := range m.Members() {
			if mb.State == gossip.StateAlive {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if alive(members[0]) == 2 && alive(members[1]) == 2 {
			break
		}
	}
	fmt.Println(alive(members[0]), "and", alive(members[1]), "members alive")
	// Output: 2 and 2 members alive
}

// A node's riders register under their topics once, in the node's wiring;
// the registry goes to every Membership of the cell (Config.Topics), and
// each rider then sends with Membership.Broadcast(topic, msg).
func ExampleTopics() {
	topics := gossip.NewTopics()
	presence := gossip.HandlerFunc(func(msg []byte) {
		// Called on memberlist's goroutines: quick, never blocking.
	})
	if err := topics.Register("presence", presence, 64); err != nil {
		panic(err)
	}
	err := topics.Register("presence", presence, 64)
	fmt.Println(err)
	err = topics.Register("Presence!", presence, 64)
	fmt.Println(err != nil)
	st := topics.Stats().Topics["presence"]
	fmt.Println("limit", st.Limit, "messages in", st.MessagesIn)
	// Output:
	// gossip: topic already registered: "presence"
	// true
	// limit 64 messages in 0
}
